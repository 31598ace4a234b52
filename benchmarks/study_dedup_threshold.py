"""The near-duplicate threshold, from data: cross-article passage pairs of the BBC
News corpus (read from ../shared/benchmarks, research use only, nothing copied)
counted by Jaccard band, with a few examples of the bands around the threshold.

Run: .venv/bin/python benchmarks/study_dedup_threshold.py
"""

from __future__ import annotations

import collections
from pathlib import Path

from karabakh_qa.chunk import chunk_article, normalise
from karabakh_qa.dedup import (
    Signature,
    band_index,
    minhash_signatures,
    pairs_within,
    signature,
)
from karabakh_qa.errors import ArticleError
from karabakh_qa.ingest import parse_article

ROOT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "bbc-news"
BANDS = ((0.8, "0.8+"), (0.6, "0.6-0.8"), (0.5, "0.5-0.6"), (0.3, "0.3-0.5"), (0.0, "<0.3"))


def band(jaccard: float) -> str:
    return next(name for low, name in BANDS if jaccard >= low)


def main() -> None:
    passages = []
    for f in sorted(ROOT.rglob("*.txt")):
        try:
            passages.extend(
                chunk_article(parse_article(str(f.relative_to(ROOT)), f.read_bytes()))[1]
            )
        except ArticleError:
            continue
    print("passages", len(passages))
    bands, _ = minhash_signatures([normalise(p.text) for p in passages], 3, 16, 2)
    sigs: dict[int, Signature] = {}
    counts: collections.Counter[str] = collections.Counter()
    examples: dict[str, list] = collections.defaultdict(list)
    for i, j in pairs_within(*band_index(bands)).tolist():
        if passages[i].source == passages[j].source:
            continue
        a = sigs.setdefault(i, signature(passages[i].text, 3))
        b = sigs.setdefault(j, signature(passages[j].text, 3))
        if a[0] == b[0]:
            counts["equal"] += 1
            continue
        inter = len(a[1] & b[1])
        jaccard = inter / max(1, len(a[1] | b[1]))
        counts[band(jaccard)] += 1
        if band(jaccard) in ("0.6-0.8", "0.5-0.6") and len(examples[band(jaccard)]) < 4:
            examples[band(jaccard)].append(
                (
                    round(jaccard, 2),
                    passages[i].source,
                    passages[i].text[:160],
                    passages[j].source,
                    passages[j].text[:160],
                )
            )
    print(dict(counts))
    for name, rows in examples.items():
        print("==", name)
        for row in rows:
            print(row)


if __name__ == "__main__":
    main()
