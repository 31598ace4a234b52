"""Near-duplicate grouping of passages across articles.

Rule: two passages are copies when their normalised texts (case, punctuation,
whitespace and thousands separators folded; see :func:`chunk.normalise`) are
equal, or when the Jaccard similarity of their word 3-shingles is at least
``threshold`` (0.8 by default: one changed word in a 30-word paragraph still
groups, a different sentence does not). Groups are the connected components.

The representative of a group is the copy a citation should point to first:
the best-dated one (metadata, then header, then a date found in the text),
then the earliest date, then the longest text, then the source name.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import numpy as np
from scipy import sparse

from .chunk import normalise
from .records import Passage

DATE_RANK = {"metadata": 0, "header": 1, "text": 2, None: 3}
MAX_POSTINGS = 64  # shingles shared by more passages than this are too common to seed pairs


def shingles(text: str, size: int = 3) -> frozenset[str]:
    words = normalise(text).split()
    if len(words) < size:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + size]) for i in range(len(words) - size + 1))


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def representative_key(p: Passage) -> tuple:
    return (DATE_RANK.get(p.date_source, 3), p.date or "9999", -len(p.text), p.source, p.paragraph)


def group_passages(passages: list[Passage], size: int = 3, threshold: float = 0.8) -> list[Passage]:
    """The passages with ``group`` set to their group's representative id."""
    n = len(passages)
    parent = list(range(n))
    sets = [shingles(p.text, size) for p in passages]
    by_key: dict[str, int] = {}
    for i, p in enumerate(passages):
        key = normalise(p.text)
        if key in by_key:
            parent[_find(parent, i)] = _find(parent, by_key[key])
        else:
            by_key[key] = i
    # Candidate pairs share at least one not-too-common shingle.
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, s in enumerate(sets):
        for sh in s:
            rows.append(i)
            cols.append(vocab.setdefault(sh, len(vocab)))
    if rows:
        m = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(vocab)))
        df = np.asarray(m.sum(axis=0)).ravel()
        m = m[:, np.flatnonzero(df <= MAX_POSTINGS)]
        pairs = sparse.triu(m @ m.T, k=1).tocoo()
        for i, j in zip(pairs.row.tolist(), pairs.col.tolist(), strict=True):
            a, b = sets[i], sets[j]
            if a and b and len(a & b) / len(a | b) >= threshold:
                parent[_find(parent, i)] = _find(parent, j)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        members[_find(parent, i)].append(i)
    group_of: dict[int, str] = {}
    for idx in members.values():
        rep = min(idx, key=lambda i: representative_key(passages[i]))
        for i in idx:
            group_of[i] = passages[rep].id
    return [replace(p, group=group_of[i]) for i, p in enumerate(passages)]
