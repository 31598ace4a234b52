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


def shingles(normalised: str, size: int = 3) -> frozenset[str]:
    """Word ``size``-grams of an already normalised text."""
    words = normalised.split()
    if len(words) < size:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + size]) for i in range(len(words) - size + 1))


def similar_pairs(sets: list[frozenset[str]], threshold: float) -> list[tuple[int, int]]:
    """Pairs (i < j) whose shingle sets have Jaccard >= ``threshold``.

    Candidates share at least one shingle that is not too common and have
    compatible sizes (Jaccard <= min/max size); their exact intersections come
    from one sparse row-wise product, so no Python loop runs over pairs.
    """
    n = len(sets)
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, s in enumerate(sets):
        for sh in s:
            rows.append(i)
            cols.append(vocab.setdefault(sh, len(vocab)))
    if not rows:
        return []
    m = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(vocab)))
    df = np.asarray(m.sum(axis=0)).ravel()
    rare = m[:, np.flatnonzero(df <= MAX_POSTINGS)]
    pairs = sparse.triu(rare @ rare.T, k=1).tocoo()
    i, j = pairs.row.astype(np.int64), pairs.col.astype(np.int64)
    size = np.asarray(m.sum(axis=1)).ravel()
    ok = np.minimum(size[i], size[j]) >= threshold * np.maximum(size[i], size[j])
    i, j = i[ok], j[ok]
    out: list[tuple[int, int]] = []
    for lo in range(0, len(i), 200_000):
        a, b = i[lo : lo + 200_000], j[lo : lo + 200_000]
        inter = np.asarray(m[a].multiply(m[b]).sum(axis=1)).ravel()
        jac = inter / np.maximum(size[a] + size[b] - inter, 1)
        keep = jac >= threshold
        out.extend(zip(a[keep].tolist(), b[keep].tolist(), strict=True))
    return out


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
    keys = [normalise(p.text) for p in passages]
    sets = [shingles(key, size) for key in keys]
    by_key: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in by_key:
            parent[_find(parent, i)] = _find(parent, by_key[key])
        else:
            by_key[key] = i
    for i, j in similar_pairs(sets, threshold):
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
