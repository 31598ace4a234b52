"""What the relation table costs a build (issue 15): the BBC News corpus indexed with
the hash embedder, with and without comparing articles (the shingle bands of each
article are computed either way), alternating, three times each.

Run: .venv/bin/python benchmarks/bench_relations.py [--folder ../shared/benchmarks/bbc-news]
Prints the seconds of each build and the medians; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from karabakh_qa.config import Settings
from karabakh_qa.embed import HashEmbedder
from karabakh_qa.ingest import read_articles
from karabakh_qa.store.embedded import relations
from karabakh_qa.store.embedded.build import build_from_articles

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, default=ROOT.parent / "shared/benchmarks/bbc-news")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    articles, _ = read_articles(args.folder)
    embedder = HashEmbedder(384)
    partners, lsh = relations.partners, relations.lsh_partners
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for on in (False, True):
            relations.partners = partners if on else (lambda *a, **k: set())
            relations.lsh_partners = lsh if on else (lambda *a, **k: set())
            with tempfile.TemporaryDirectory() as tmp:
                s = Settings(index_dir=Path(tmp), model_name=embedder.name)
                t = time.perf_counter()
                build_from_articles(s, embedder, articles, {})
                seconds[on].append(time.perf_counter() - t)
    off, on = statistics.median(seconds[False]), statistics.median(seconds[True])
    n = len(articles)
    print(f"{n} articles, hash embedder: without relations {off:.2f} s, with {on:.2f} s")
    print(f"relations add {on - off:.2f} s ({(on / off - 1) * 100:+.0f} %)")
    print({"without": seconds[False], "with": seconds[True]})


if __name__ == "__main__":
    main()
