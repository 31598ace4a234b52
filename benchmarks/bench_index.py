"""Indexing throughput on a fixed 300-article BBC News subset: passages per second of
a whole build (chunking, embedding passages and sentences, BM25, relations, writing)
for each backend (passage vectors from their sentences, the default, and for
openvino also passages embedded whole), the build of a baseline commit (before the
issue "Indexing throughput"), and the raw throughput of the model in the same run.

    .venv/bin/python benchmarks/bench_index.py [--baseline d27bd73] [--json out.json]

The subset: the first 60 files of each of the five sections, in name order, read
from ../shared/benchmarks/bbc-news (research use only: read there, never copied;
the script links them into a temporary folder). Each build starts from an empty
index and an empty vector cache; the model is loaded (and an int8 graph built)
before the clock starts. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import emit, percentiles, time_calls  # noqa: E402

BBC = ROOT.parent / "shared" / "benchmarks" / "bbc-news"
SECTIONS = ("business", "entertainment", "politics", "sport", "tech")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT = "openvino"  # the default backend of a new index
QUESTIONS = [
    "How many people were killed in the attack?",
    "Who won the best actor award at the ceremony?",
    "When will the new console be released?",
    "Why did the company's shares fall?",
    "What did the chancellor say about interest rates?",
    "Where will the tournament be held next year?",
    "How much did the film take at the box office?",
    "Which party leads in the latest opinion poll?",
]

BUILD = """
import sys, time, json
from pathlib import Path
from karabakh_qa.config import Settings
from karabakh_qa.service import SearchService
articles, index = Path(sys.argv[1]), Path(sys.argv[2])
backend, _, passage_vectors = sys.argv[3].partition(":")  # "openvino:model"
extra = {"backend": backend} if backend else {}
if passage_vectors:
    extra["passage_vectors"] = passage_vectors
settings = Settings(articles_dir=articles, index_dir=index, cache_dir=Path(sys.argv[4]),
                    torch_threads=2, **extra)
t = time.perf_counter()
if len(sys.argv) > 6:  # through a local Ray cluster: its start and model loads are counted
    from karabakh_qa.cli import ray_embedder
    embedder = ray_embedder(settings, "local", int(sys.argv[6]))
    service = SearchService(settings, embedder)
else:
    service = SearchService(settings)
    service.embedder  # loaded (and exported) before the clock starts
    t = time.perf_counter()
report = service.build()
seconds = time.perf_counter() - t
snap = service.index()
passages = sum(s.rows for s in snap.segments)
import numpy as np
np.savez(sys.argv[5], ids=np.concatenate([s.a["ids"] for s in snap.segments]),
         codes=np.concatenate([s.vectors.codes for s in snap.segments]),
         sent=np.concatenate([s.a["sent_codes"] for s in snap.segments]))
print(json.dumps({"seconds": seconds, "passages": passages,
                  "embedded": report.embedded,
                  "embedded_sentences": getattr(report, "embedded_sentences", None)}))
"""


def subset(folder: Path) -> Path:
    """Link the 300 fixed files into ``folder`` (section/name kept)."""
    for section in SECTIONS:
        (folder / section).mkdir(parents=True)
        for path in sorted((BBC / section).glob("*.txt"))[:60]:
            (folder / section / path.name).symlink_to(path)
    return folder


def build(
    src: Path, articles: Path, backend: str, cache: Path, columns: Path, ray: int = 0
) -> dict:
    """One build from scratch in a fresh process running the code under ``src``; its
    ids and codes are saved in ``columns`` (.npz)."""
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(src / "src"), "KARABAKH_QA_CACHE": str(cache),
               "RAY_AUTH_MODE": "disabled"}  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-c", BUILD, str(articles), str(Path(tmp) / "index"), backend,
             str(cache), str(columns), *([str(ray)] if ray else [])],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        import json

        return json.loads(out.stdout.strip().splitlines()[-1])


def same_index(a: Path, b: Path) -> dict:
    """How far two builds' passage ids and codes are apart."""
    import numpy as np

    x, y = np.load(a), np.load(b)
    return {
        "same_ids": bool(np.array_equal(x["ids"], y["ids"])),
        "passage_codes_differing": int((x["codes"] != y["codes"]).any(axis=1).sum()),
        "max_code_step": int(np.abs(x["codes"].astype(int) - y["codes"].astype(int)).max()),
        "sentence_codes_differing": int((x["sent"] != y["sent"]).any(axis=1).sum()),
        "sentences": int(len(x["sent"])),
    }


def raw_throughput(articles: Path) -> dict:
    """The model alone, fp32 torch through sentence-transformers (which sorts by
    length), over the subset's passage texts and then its sentence texts."""
    from karabakh_qa.chunk import chunk_article
    from karabakh_qa.embed import SentenceTransformerEmbedder
    from karabakh_qa.ingest import read_articles
    from karabakh_qa.sentences import passage_sentences, sentence_embed_text
    from karabakh_qa.store.embedded.rows import embed_text

    model = SentenceTransformerEmbedder(MODEL, threads=2)
    docs, _ = read_articles(articles)
    passages, sentences = [], []
    for article in docs:
        _, parts = chunk_article(article, model.count_tokens, 256)
        for p in parts:
            passages.append(embed_text(p, True))
            sentences += [sentence_embed_text(p, s, True) for s in passage_sentences(p)]
    model.model.encode(passages[:64], batch_size=32)  # warm up
    out = {"passages": len(passages), "sentences": len(sentences)}
    for name, texts in (("passages", passages), ("sentences", sentences)):
        t = time.perf_counter()
        model.model.encode(texts, batch_size=32, normalize_embeddings=True)
        out[f"{name}_per_s"] = round(len(texts) / (time.perf_counter() - t), 1)
    return out


def query_encode(cache: Path) -> dict:
    """Median and p95 ms to embed one question, per backend (as a served question is)."""
    from karabakh_qa.embed import load_embedder

    out = {}
    for backend in ("torch", "onnx", "openvino"):
        embedder = load_embedder(MODEL, 1, "onnx", cache, backend)
        p50, p95 = percentiles(time_calls(lambda q, e=embedder: e.encode([q]), QUESTIONS * 25))
        out[backend] = {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="d27bd73", help="commit before the issue")
    parser.add_argument(
        "--backends",
        default="torch,onnx,openvino,openvino:model",
        help="builds to time: a backend, with :model for passages embedded whole "
        "(Settings.passage_vectors; the default is the mean of their sentences)",
    )
    parser.add_argument("--ray", type=int, default=2, help="actors of a local Ray build (0: none)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cache = ROOT / ".cache"
    result: dict = {"subset": "bbc-news, first 60 files of each section (300)"}
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        articles = subset(Path(tmp) / "articles")
        base = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline],
            check=True, capture_output=True,
        )  # fmt: skip
        cols = Path(tmp)
        try:
            runs = {
                f"baseline {args.baseline} (torch)": build(
                    base, articles, "", cache, cols / "baseline.npz"
                )
            }
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)])
        for backend in args.backends.split(","):
            runs[backend] = build(ROOT, articles, backend, cache, cols / f"{backend}.npz")
        if args.ray:
            name = f"{DEFAULT} --ray (local, {args.ray} actors, start and loads included)"
            runs[name] = build(ROOT, articles, DEFAULT, cache, cols / "ray.npz", args.ray)
            result["ray_vs_local"] = same_index(cols / f"{DEFAULT}.npz", cols / "ray.npz")
        result["raw_model_fp32"] = raw = raw_throughput(articles)
    first = next(iter(runs.values()))
    table = ["| build | seconds | passages/s | × baseline | × raw fp32 passages/s |"]
    table.append("|---|---|---|---|---|")
    for name, run in runs.items():
        run["passages_per_s"] = rate = round(run["passages"] / run["seconds"], 1)
        base_rate = first["passages"] / first["seconds"]
        run["vs_baseline"] = round(rate / base_rate, 2)
        run["vs_raw"] = round(rate / raw["passages_per_s"], 2)
        table.append(
            f"| {name} | {run['seconds']:.1f} | {rate} | {run['vs_baseline']} | {run['vs_raw']} |"
        )
    result["builds"] = runs
    result["query_encode"] = query_encode(cache)
    result["table"] = "\n".join(table)
    emit(result, args.json)
    print(result["table"])


if __name__ == "__main__":
    main()
