"""Query latency (seeds and a generated 100k-passage index) and indexing throughput.

Run: .venv/bin/python benchmarks/bench_query.py (latency at scale: bench_scale.py)
Serving uses 1 torch thread (the default); the question's embedding is included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import percentiles, time_calls  # noqa: E402

from karabakh_qa.config import PROJECT_ROOT, Settings  # noqa: E402
from karabakh_qa.sentences import (  # noqa: E402
    passage_sentences,
    sentence_embed_text,
)
from karabakh_qa.service import SearchService  # noqa: E402
from karabakh_qa.store.embedded.rows import embed_text  # noqa: E402
from karabakh_qa.store.embedded.vectors import set_dense_threads  # noqa: E402

DEV = json.loads((PROJECT_ROOT / "tests" / "data" / "seed_dev.json").read_text())
QUESTIONS = [q["q"] for q in DEV["questions"]] + DEV["off_topic"]
CORPUS = PROJECT_ROOT.parent / "shared" / "benchmarks" / "scifact" / "corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4, help="passes over the questions")
    parser.add_argument("--articles", type=int, default=300, help="SciFact abstracts to index")
    parser.add_argument(
        "--spans", type=Path, action="append", default=[],
        help="another answer-span model file to time beside the default (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    queries = QUESTIONS * args.rounds

    with tempfile.TemporaryDirectory() as tmp:
        # Indexing throughput: the real build (all cores) over SciFact abstracts written
        # as articles when the shared benchmarks are there, else the seeds...
        settings = Settings(index_dir=Path(tmp) / "index", torch_threads=cores)
        builder = SearchService(settings)
        builder.embedder  # load the model before timing  # noqa: B018
        if CORPUS.exists():
            folder = Path(tmp) / "articles"
            folder.mkdir()
            with CORPUS.open() as fh:
                for _, line in zip(range(args.articles), fh, strict=False):
                    doc = json.loads(line)
                    (folder / f"{doc['_id']}.txt").write_text(doc["text"] + "\n")
            build_settings = settings.replace(articles_dir=folder, index_dir=Path(tmp) / "big")
        else:
            build_settings = settings
        t = time.perf_counter()
        report = SearchService(build_settings, builder.embedder).build(full=True)
        build_s = time.perf_counter() - t
        # ...beside the model's raw encode throughput on exactly the texts it embedded.
        built = SearchService(build_settings, builder.embedder).index()
        passages = [built.passage(int(r)) for r in np.flatnonzero(built.live_mask)]
        texts = [embed_text(p, True) for p in passages]
        texts += [
            sentence_embed_text(p, span, True) for p in passages for span in passage_sentences(p)
        ]
        t = time.perf_counter()
        builder.embedder.encode(texts)
        encode_s = time.perf_counter() - t
        print(
            f"indexing {report.articles} articles: {report.passages} passages "
            f"(+{len(texts) - report.passages} sentences) in {build_s:.1f}s = "
            f"{report.passages / build_s:.1f} passages/s end to end; raw model encode of the "
            f"same {len(texts)} texts {encode_s:.1f}s ({len(texts) / encode_s:.1f} texts/s), "
            f"so embedding is {100 * encode_s / build_s:.0f}% of the build; {cores} threads"
        )
        seeds = builder.build(full=True)  # the seed index the latency figures use

        # Warm query latency on the seeds, 1 torch thread.
        import torch

        torch.set_num_threads(1)
        set_dense_threads(1)
        # What `serve` does before it prints "serving on": a fresh service, warmed.
        fresh = SearchService(settings.replace(torch_threads=1))
        t = time.perf_counter()
        fresh.warm()
        warm_s = time.perf_counter() - t
        first_ms = time_calls(lambda q: fresh.search(q, 5), queries[:1], warmup=0)[0]
        later = percentiles(time_calls(lambda q: fresh.search(q, 5), queries[1:], warmup=0))[0]
        print(
            f"first question after warm-up ({warm_s:.1f} s): {first_ms:.2f} ms, later p50 "
            f"{later:.2f} ms: {first_ms / later:.2f}x"
        )
        one = settings.replace(torch_threads=1)
        serving = SearchService(one, builder.embedder)  # the defaults: learned order and spans
        variants = {
            "fixed order, rules' spans": one.replace(ranker="fixed", span_model_path=None),
            "learned order, rules' spans": one.replace(span_model_path=None),
            "learned order, learned spans (default)": one,
            **{f"learned order, spans of {p}": one.replace(span_model_path=p) for p in args.spans},
        }
        services = {name: SearchService(s, builder.embedder) for name, s in variants.items()}
        # the variants in alternating passes (each order in turn), so that all see the
        # same machine
        seed_ms: dict[str, list[float]] = {name: [] for name in services}
        for turn in range(4):
            names = list(services) if turn % 2 == 0 else list(services)[::-1]
            for name in names:
                svc = services[name]
                seed_ms[name] += time_calls(lambda q, svc=svc: svc.search(q, 10), queries)
        for name, ms in seed_ms.items():
            p50, p95 = percentiles(ms)
            print(
                f"seeds ({seeds.passages} passages), {name}: p50 {p50:.2f} ms, "
                f"p95 {p95:.2f} ms over {len(ms)} queries (k 10), 1 torch thread"
            )
        enc_ms = time_calls(lambda q: serving.embedder.encode([q]), queries)
        print(f"  of which question embedding alone: p50 {percentiles(enc_ms)[0]:.2f} ms")


if __name__ == "__main__":
    main()
