"""Embedding on Ray (RayEmbedder, issue 16 item 4) against the local model.

Run: RAY_AUTH_MODE=disabled .venv/bin/python benchmarks/bench_ray.py [--passages 300]
Passages: BBC News articles read in place from ../shared/benchmarks/bbc-news
(research use only: never copied here), chunked as an index build does. Printed:
local Ray cluster start time, time to the first batch (a fresh actor pool loading
the model: Ray Data starts one per encode() call), passages/s of Ray with N actors
(1 torch thread each) and of the local model (N threads), max |vector difference|.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import emit  # noqa: E402

from karabakh_qa.chunk import chunk_article  # noqa: E402
from karabakh_qa.config import PROJECT_ROOT  # noqa: E402
from karabakh_qa.embed import load_embedder  # noqa: E402
from karabakh_qa.embed.distributed import RayEmbedder  # noqa: E402
from karabakh_qa.ingest import parse_article  # noqa: E402

BBC = PROJECT_ROOT.parent / "shared" / "benchmarks" / "bbc-news"
MODEL = "all-MiniLM-L6-v2"


def bbc_passages(limit: int, count_tokens: Callable[[str], int]) -> list[str]:
    """The first ``limit`` passages of the BBC articles, one article per section in turn,
    chunked as a build does (Settings.model_max_tokens = 256)."""
    files = [sorted(s.glob("*.txt")) for s in sorted(BBC.iterdir()) if s.is_dir()]
    out: list[str] = []
    for round_ in range(max(len(f) for f in files)):
        for section in files:
            if round_ < len(section) and len(out) < limit:
                path = section[round_]
                article, parts = chunk_article(
                    parse_article(path.name, path.read_bytes()), count_tokens, 256
                )
                out.extend(article.text[p.start : p.end] for p in parts)
    return out[:limit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--actors", type=int, default=2, help="Ray actors = local threads")
    parser.add_argument("--address", default=None, help="a Ray cluster (default: a local one)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    logging.basicConfig(level=logging.WARNING)

    started = time.perf_counter()
    local = load_embedder(MODEL, threads=args.actors)
    load_s = time.perf_counter() - started
    texts = bbc_passages(args.passages, local.count_tokens)
    local.encode(texts[:8])  # warm-up
    started = time.perf_counter()
    expected = local.encode(texts)
    local_s = time.perf_counter() - started

    started = time.perf_counter()
    with RayEmbedder(local, args.address, actors=args.actors) as remote:
        start_s = time.perf_counter() - started
        remote.encode(texts[:2])  # a pool for two texts: start + model load + one tiny batch
        tiny = dict(remote.last_timing)
        vectors = remote.encode(texts)
        big = dict(remote.last_timing)
    emit(
        {
            "passages": len(texts),
            "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
            "actors_or_threads": args.actors,
            "local_model_load_s": round(load_s, 2),
            "local_passages_per_s": round(len(texts) / local_s, 1),
            "ray_cluster_start_s": round(start_s, 2),
            "ray_first_batch_s_two_texts": round(tiny["first_batch_s"], 2),
            "ray_first_batch_s": round(big["first_batch_s"], 2),
            "ray_call_s": round(big["total_s"], 2),
            "ray_passages_per_s_per_call": round(len(texts) / big["total_s"], 1),
            "ray_passages_per_s_after_model_load": round(
                len(texts) / max(big["total_s"] - tiny["total_s"], 1e-9), 1
            ),
            "max_abs_diff": float(np.abs(vectors - expected).max()),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
