"""Near-duplicate passages: the rule, and persistent MinHash signatures to find them.

Rule: two passages are copies when their normalised texts (case, punctuation,
whitespace and thousands separators folded; see :func:`chunk.normalise`) are
equal, or when the Jaccard similarity of their word 3-shingle sets is at least
``threshold`` (0.6, see README "Near-duplicates"). Groups are the connected
components of that relation.

Finding the pairs without comparing every passage with every other: each
passage keeps a MinHash signature cut into LSH bands (``bands`` x
``rows_per_band`` 32-bit hashes, stored with its segment). Two passages are
*candidates* when one band is equal; every candidate pair is then checked
with the exact rule above, so a group never rests on an approximation. With
16 bands of 2 rows a pair at Jaccard 0.6 is a candidate with probability
0.9992, at 0.8 with 0.99999999; equal texts always are.

The representative of a group is the copy a citation should point to first:
the best-dated one (metadata, then header, then a date found in the text),
then the earliest date, then the longest text, then the source name.
"""

from __future__ import annotations

import zlib
from collections import defaultdict

import numpy as np

from .chunk import normalise
from .records import Passage

DATE_RANK = {"metadata": 0, "header": 1, "text": 2, None: 3}
PRIME = np.uint64((1 << 61) - 1)
EMPTY = np.uint32(0xFFFFFFFF)


def shingles(normalised: str, size: int = 3) -> frozenset[str]:
    """Word ``size``-grams of an already normalised text."""
    words = normalised.split()
    if len(words) < size:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + size]) for i in range(len(words) - size + 1))


def _permutations(count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20201011)  # fixed: signatures must never change
    a = rng.integers(1, 1 << 31, size=count, dtype=np.uint64)
    b = rng.integers(0, 1 << 31, size=count, dtype=np.uint64)
    return a, b


def band_hashes(texts: list[str], size: int, bands: int, rows_per_band: int) -> np.ndarray:
    """(len(texts), bands) uint32 LSH band hashes of the texts' shingle sets."""
    a, b = _permutations(bands * rows_per_band)
    out = np.full((len(texts), bands), EMPTY, dtype=np.uint32)
    for i, text in enumerate(texts):
        sh = shingles(normalise(text), size)
        if not sh:
            continue
        h = np.fromiter((zlib.crc32(s.encode()) for s in sh), np.uint64, len(sh))
        mins = ((np.outer(a, h) + b[:, None]) % PRIME).min(axis=1) & np.uint64(0xFFFFFFFF)
        per_band = mins.astype(np.uint32).reshape(bands, rows_per_band)
        out[i] = [zlib.crc32(row.tobytes()) for row in per_band]
    return out


def is_copy(a: str, b: str, size: int, threshold: float) -> bool:
    """The exact rule on two passage texts."""
    na, nb = normalise(a), normalise(b)
    if na == nb:
        return True
    sa, sb = shingles(na, size), shingles(nb, size)
    if not sa or not sb:
        return False
    return len(sa & sb) >= threshold * len(sa | sb)


def pairs_within(bands: np.ndarray) -> set[tuple[int, int]]:
    """Candidate pairs (i < j) of rows of ``bands`` sharing at least one band."""
    out: set[tuple[int, int]] = set()
    for j in range(bands.shape[1]):
        buckets: dict[int, list[int]] = defaultdict(list)
        for i, h in enumerate(bands[:, j].tolist()):
            buckets[h].append(i)
        for rows in buckets.values():
            if len(rows) > 1:
                out.update((x, y) for k, x in enumerate(rows) for y in rows[k + 1 :])
    return out


def pairs_across(old: np.ndarray, new: np.ndarray) -> set[tuple[int, int]]:
    """Candidate pairs (old row, new row) sharing a band in the same position."""
    out: set[tuple[int, int]] = set()
    if len(old) == 0 or len(new) == 0:
        return out
    for j in range(new.shape[1]):
        col = np.asarray(old[:, j])
        wanted = new[:, j]
        hits = np.flatnonzero(np.isin(col, wanted))
        if len(hits) == 0:
            continue
        where: dict[int, list[int]] = defaultdict(list)
        for i, h in enumerate(wanted.tolist()):
            where[h].append(i)
        for r, h in zip(hits.tolist(), col[hits].tolist(), strict=True):
            out.update((r, i) for i in where[h])
    return out


def representative_key(p: Passage) -> tuple:
    return (DATE_RANK.get(p.date_source, 3), p.date or "9999", -len(p.text), p.source, p.paragraph)
