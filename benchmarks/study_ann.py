"""Recall of the sign-bit ANN against exact search, on real embeddings (issue 11).

For each corpus the passages are chunked as the index chunks them, embedded with
the real model (all-MiniLM-L6-v2, cached under ``.cache/embeddings``), coded as
the index codes them (8 bits) and written as one segment's vector file; then
every query's top 100 by exact search is compared with the ANN's
(``SegmentVectors.search(mode="ann")``) for several rescoring depths.

* SciFact (BEIR test split): its 300 queries.
* SQuAD v1.1 dev, every paragraph a document: 1,000 of its questions.
* BBC News (2,225 articles, research use only, read from ../shared): no
  questions come with it, so the queries are 300 article titles (headlines).
* pooled: every vector the evaluation cache and this study hold (passages and
  sentences of all three, ~10x SciFact's passages), queried with SciFact's and
  BBC's queries: how recall holds as a segment grows.

Run: .venv/bin/python benchmarks/study_ann.py [--depths 250,500,1000,2000]
Prints one JSON object; figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "benchmarks"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def corpus(name: str) -> tuple[list, list[str]]:
    """(articles, queries) of one corpus."""
    from karabakh_qa.evaluate import load_beir, load_squad
    from karabakh_qa.ingest import read_articles

    if name == "scifact":
        c = load_beir(SHARED / "scifact", "test")
        return c.docs, list(c.queries.values())
    if name == "squad":
        c = load_squad(SHARED / "squad" / "dev-v1.1.json", "all")
        queries = list(c.queries.values())
        rng = np.random.default_rng(0)
        return c.docs, [queries[i] for i in rng.choice(len(queries), 1000, replace=False)]
    articles, _ = read_articles(SHARED / "bbc-news")
    rng = np.random.default_rng(0)
    titles = [a.text.strip().splitlines()[0] for a in articles]
    return articles, [titles[i] for i in rng.choice(len(titles), 300, replace=False)]


def passages_of(articles: list, embedder, settings) -> list[str]:
    """The texts the index embeds for the passages of ``articles``."""
    from karabakh_qa.chunk import chunk_article
    from karabakh_qa.store.embedded.rows import embed_text

    out = []
    for a in articles:
        _, parts = chunk_article(a, embedder.token_counter, settings.model_max_tokens)
        out.extend(embed_text(p, settings.embed_context) for p in parts)
    return out


def vectors_of(texts: list[str], embedder, known: dict) -> np.ndarray:
    from karabakh_qa.store.embedded.rows import embed_key

    keys = [embed_key(embedder.name, t) for t in texts]
    todo = [i for i, k in enumerate(keys) if k not in known]
    for lo in range(0, len(todo), 512):
        part = todo[lo : lo + 512]
        for i, v in zip(part, embedder.encode([texts[i] for i in part], 32), strict=True):
            known[keys[i]] = v.astype(np.float16)
        print(f"  embedded {lo + len(part)}/{len(todo)}", file=sys.stderr, flush=True)
    return np.stack([known[k] for k in keys]).astype(np.float32)


def study(name: str, depths: list[int], embedder, settings, known: dict) -> dict:
    from karabakh_qa.store.embedded import ann, vectors

    if name == "pooled":
        x = np.stack(list(known.values())).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        queries = corpus("scifact")[1] + corpus("bbc")[1]
    else:
        articles, queries = corpus(name)
        x = vectors_of(passages_of(articles, embedder, settings), embedder, known)
    q = embedder.encode(queries, 32).astype(np.float32)
    codes = vectors.encode(x, vectors.DEFAULT_CODEC)
    out: dict = {"passages": len(x), "queries": len(queries)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.faiss"
        vectors.write_index(path, codes, codes.shape[1], vectors.DEFAULT_CODEC)
        seg = vectors.SegmentVectors(path, len(codes), codes.shape[1], vectors.DEFAULT_CODEC)
        t = time.perf_counter()
        seg.signs.ready(wait=True)
        out["sign_bits_build_s"] = round(time.perf_counter() - t, 3)
        exact, ms = [], []
        for v in q:
            t = time.perf_counter()
            exact.append(set(seg.search(v, 100, mode="exact")[1].tolist()))
            ms.append((time.perf_counter() - t) * 1000)
        out["exact_ms_p50"] = round(statistics.median(ms), 3)
        for depth in depths:
            ann.RESCORE_MIN, ann.RESCORE_PER_K, ann.RESCORE_SHARE = depth, 0, 0.0
            recall, ms = [], []
            for v, want in zip(q, exact, strict=True):
                t = time.perf_counter()
                got = seg.search(v, 100, mode="ann")[1]
                ms.append((time.perf_counter() - t) * 1000)
                recall.append(len(want & set(got.tolist())) / max(1, len(want)))
            out[f"rescore_{depth}"] = {
                "recall@100": round(float(np.mean(recall)), 4),
                "recall@100_min": round(float(np.min(recall)), 3),
                "ms_p50": round(statistics.median(ms), 3),
            }
            print(f"{name} rescore {depth}: {out[f'rescore_{depth}']}", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="250,500,1000,2000")
    parser.add_argument("--corpora", default="scifact,squad,bbc,pooled")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from karabakh_qa.config import DEFAULT_MODEL, Settings
    from karabakh_qa.embed import load_embedder
    from karabakh_qa.evaluate import EmbeddingCache
    from karabakh_qa.store.embedded.vectors import set_dense_threads

    settings = Settings()
    embedder = load_embedder(DEFAULT_MODEL, os.cpu_count() or 1)
    set_dense_threads(1)
    cache = EmbeddingCache(ROOT / ".cache" / "embeddings-study", embedder.name)
    base = EmbeddingCache(ROOT / ".cache" / "embeddings", embedder.name).load()
    known = {**base, **cache.load()}
    depths = [int(d) for d in args.depths.split(",")]
    result = {}
    for name in args.corpora.split(","):
        before = len(known)
        result[name] = study(name, depths, embedder, settings, known)
        if len(known) > before:  # the study's own cache: the evaluation's stays untouched
            cache.save({k: v for k, v in known.items() if k not in base})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
