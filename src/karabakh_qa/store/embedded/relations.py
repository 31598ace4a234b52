"""The relation table: typed relations between live articles, kept per generation.

Which articles are copies of each other, versions of one story, or corroborate
each other (share a sentence), and which versions differ on a figure, is
decided at build time (``relations.versions``) and stored beside the group
overlay as one small array per generation, ``relations-G.npy``, a row per
relation: ``(kind, a, b, shared, a_sentences, b_sentences, figures)``, articles
by file name (names survive merges, so a merge keeps the table as it is).

A build updates it incrementally, as the group overlay is (:func:`update`):
rows of changed or removed articles go, and only the new articles are compared,
each with the articles it shares a near-duplicate passage group with (the
overlay names them: no pass over the archive). A query reads the rows of the
articles it shows; the sentence diff itself is recomputed from the verbatim
texts when shown.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ...dedup import pairs_across, pairs_within
from ...relations.versions import (
    MIN_AGREEMENT,
    Named,
    Sentence,
    article_sentences,
    compare,
    differing_figures,
    named_amounts,
    shingle_set,
)
from . import files
from .groups import Node
from .segment import Segment

COLUMNS = ("kind", "a", "b", "shared", "a_sentences", "b_sentences", "figures")
INTS = ("shared", "a_sentences", "b_sentences", "figures")
KINDS = ("duplicate", "version", "corroborates", "differs-on-figure")  # stored as their index
Row = tuple[str, str, str, int, int, int, int]
Pair = tuple[str, str]  # two article names, the smaller first


def empty() -> np.ndarray:
    return table([])


def _dtype(width: int) -> np.dtype:
    return np.dtype(
        [("kind", "u1"), ("a", f"S{width}"), ("b", f"S{width}")] + [(c, "<i4") for c in INTS]
    )


def table(rows: list[Row]) -> np.ndarray:
    """Rows as stored: each relation twice, once from each article (a, b and b, a,
    their counts swapped), sorted by ``a`` then ``b``, so that an article's
    relations are a binary search away; the kind as its index in KINDS, names as
    UTF-8 bytes as wide as the longest, counts as int32."""
    both = []
    for kind, a, b, shared, na, nb, figs in rows:
        k, ea, eb = KINDS.index(kind), a.encode(), b.encode()
        both += [(k, ea, eb, shared, na, nb, figs), (k, eb, ea, shared, nb, na, figs)]
    width = max([len(r[1]) for r in both] + [1])
    return _sorted(np.array(both, dtype=_dtype(width)))


def _sorted(stored: np.ndarray) -> np.ndarray:
    return stored[np.lexsort((stored["kind"], stored["b"], stored["a"]))]


def read(index_dir: Path, name: str | None) -> np.ndarray:
    """The stored table (:func:`table`); empty without one."""
    if name is None:
        return empty()
    stored: np.ndarray = files.load_npy(index_dir / name)
    return stored


def decode(stored: np.ndarray) -> list[Row]:
    """Each relation once (a < b) as (kind, a, b, shared, a_sentences, b_sentences,
    figures)."""
    once = stored[stored["a"] < stored["b"]]
    return [
        (KINDS[k], a.decode(), b.decode(), int(s), int(na), int(nb), int(f))
        for k, a, b, s, na, nb, f in once.tolist()
    ]


def save(index_dir: Path, name: str, stored: np.ndarray) -> str:
    return files.save_generation_array(index_dir, name, stored)


def naming(stored: np.ndarray, names: set[str]) -> np.ndarray:
    """Which stored rows name one of ``names`` (either side)."""
    if not names or not len(stored):
        return np.zeros(len(stored), bool)
    wanted = np.array(sorted(n.encode() for n in names))
    return np.isin(stored["a"], wanted) | np.isin(stored["b"], wanted)


def related(stored: np.ndarray, name: str) -> list[dict[str, Any]]:
    """The relations of article ``name``, each seen from it: ``{kind, file, shared,
    sentences, other_sentences, figures}`` (two binary searches and its rows)."""
    key = name.encode()
    column = stored["a"]
    lo, hi = np.searchsorted(column, key, "left"), np.searchsorted(column, key, "right")
    out = []
    for k, _a, b, shared, na, nb, figs in stored[lo:hi].tolist():
        out.append(
            {
                "kind": KINDS[k],
                "file": b.decode(),
                "shared": int(shared),
                "sentences": int(na),
                "other_sentences": int(nb),
                "figures": int(figs),
            }
        )
    return sorted(out, key=lambda r: (r["kind"], r["file"]))


def partners(
    overlay: np.ndarray, name_of: Callable[[Node], str], fresh: set[str], new: int | None
) -> set[Pair]:
    """Pairs (a, b), a < b, of articles sharing a near-duplicate group where one of
    them is ``fresh`` (in segment number ``new``): only the groups that hold a row of
    the new segment are read (an add at 1M reads a few, not 235k overlay rows)."""
    if new is None or not len(overlay):
        return set()
    touched = np.unique(overlay[overlay[:, 0] == new, 2])
    groups: dict[int, set[str]] = defaultdict(set)
    for seg, row, group, _ in overlay[np.isin(overlay[:, 2], touched)].tolist():
        groups[group].add(name_of((seg, row)))
    pairs: set[Pair] = set()
    for names in groups.values():
        for n in names & fresh:
            pairs.update((min(n, m), max(n, m)) for m in names if m != n)
    return pairs


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a short loop that makes many small,
    acyclic objects (each article's sentences): in a build that holds the whole
    archive's rows, every collection it triggers scans them all (on BBC News the
    comparisons took 190-260 ms with it, 187 without). Refcounting still frees
    everything; a collection of the youngest objects follows."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
            gc.collect(0)


def update(
    old: np.ndarray,
    gone: set[str],
    pairs: set[Pair],
    sentences_of: Callable[[str], list[Sentence]],
    linked: set[Pair] | None = None,
    plausible: Callable[[str, str], bool] | None = None,
    headline_of: Callable[[str], str] | None = None,
) -> np.ndarray:
    """``old`` (stored) without rows naming a ``gone`` article, plus the relations of
    ``pairs`` (compared now; the sentences of each article read once); ``linked``:
    the pairs that share a near-duplicate paragraph (they corroborate each other at
    least; None: all of ``pairs`` do); ``plausible(a, b)`` False: a linked pair cannot
    be a version (their signatures say so) and is stored as corroborating without the
    exact comparison (sentence counts 0: not compared); ``headline_of``: an article's
    headline, for how alike two open (relations.versions.Comparison.continuity)."""
    kept = old[~naming(old, gone)]
    fresh = {n for pair in pairs for n in pair}
    known = kept[naming(kept, fresh)]  # only rows that could repeat a pair are decoded
    done = {
        (a.decode(), b.decode())
        for a, b in zip(known["a"].tolist(), known["b"].tolist(), strict=True)
    }
    cache: dict[str, tuple[list[Sentence], set[int], str]] = {}
    named: dict[str, list[Named]] = {}

    def read(name: str) -> tuple[list[Sentence], set[int], str]:
        """An article's sentences, shingles and headline, read once per update."""
        if name not in cache:
            found = sentences_of(name)
            cache[name] = found, shingle_set(found), headline_of(name) if headline_of else ""
        return cache[name]

    def named_of(name: str) -> list[Named]:
        if name not in named:
            named[name] = named_amounts(read(name)[0])
        return named[name]

    added: list[Row] = []
    with collector_paused():
        for a, b in sorted(pairs - done):
            is_linked = linked is None or (a, b) in linked
            if is_linked and plausible is not None and not plausible(a, b):
                added.append(("corroborates", a, b, 0, 0, 0, 0))
                continue
            (sa, ha, ta), (sb, hb, tb) = read(a), read(b)
            heads = (ta, tb) if headline_of else None
            cmp = compare(sa, sb, diff=False, headlines=heads, shingles=(ha, hb))
            kind = cmp.kind(linked=is_linked)
            if kind is None:
                continue
            if kind != "corroborates":  # which sentences changed: versions and copies only
                cmp = compare(sa, sb, shingles=(ha, hb))
            figs = len(differing_figures(cmp, (named_of(a), named_of(b))))
            added.append((kind, a, b, cmp.shared, cmp.a, cmp.b, figs))
            if figs:
                added.append(("differs-on-figure", a, b, cmp.shared, cmp.a, cmp.b, figs))
    new = table(added)
    width = max(kept.dtype["a"].itemsize, new.dtype["a"].itemsize, 1)
    return merge_sorted(kept.astype(_dtype(width)), new.astype(_dtype(width)))


def merge_sorted(kept: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Two stored tables (each sorted as :func:`table` sorts) as one, sorted the
    same way, ``kept``'s rows first among equals: ``new``'s few rows inserted where
    they belong (a full sort of the 72,000 rows of a 1M index took 42 ms a build)."""
    if not len(new) or not len(kept):
        return new if not len(kept) else kept
    where = []
    for a, b, kind in zip(new["a"].tolist(), new["b"].tolist(), new["kind"].tolist(), strict=True):
        lo, hi = _equal_range(kept["a"], a, 0, len(kept))
        lo, hi = _equal_range(kept["b"], b, lo, hi)
        where.append(lo + int(np.searchsorted(kept["kind"][lo:hi], kind, "right")))
    merged: np.ndarray = np.insert(kept, where, new)
    return merged


def _equal_range(column: np.ndarray, key: bytes, lo: int, hi: int) -> tuple[int, int]:
    """The rows of sorted ``column[lo:hi]`` equal to ``key``, as absolute bounds."""
    part = column[lo:hi]
    return lo + int(np.searchsorted(part, key, "left")), lo + int(
        np.searchsorted(part, key, "right")
    )


def lsh_partners(
    new: Segment, others: list[tuple[Segment, np.ndarray | None]], fresh: set[str]
) -> set[Pair]:
    """Pairs (a, b), a < b, of a ``fresh`` article of ``new`` and a live article of
    ``others`` (segments with their live rows, None: all; ``new`` among them) with an
    equal LSH band of their word shingles and at least MIN_AGREEMENT equal MinHash
    values (relations.versions.article_signatures). Each segment stores its bands as
    an inverted index (dedup.band_index): binary searches, no pass over the archive."""
    names = new.a["article_names"]
    wanted = np.array([i for i in range(len(names)) if str(names[i]) in fresh], np.int64)
    pairs: set[Pair] = set()
    if not len(wanted):
        return pairs
    mine = new.article_bands[wanted]
    my_values = np.asarray(new.a["article_minhash"])[wanted]
    for seg, live in others:
        if int(seg.meta["articles"]) == 0:
            continue
        values, rows = seg.a["article_band_values"], seg.a["article_band_rows"]
        if seg is new:  # (i, j) within the new segment, i < j
            found = pairs_within(values, rows)
            found = found[np.isin(found[:, 0], wanted) | np.isin(found[:, 1], wanted)]
            theirs, ours = found[:, 0], found[:, 1]
            agree = (seg.a["article_minhash"][theirs] == seg.a["article_minhash"][ours]).sum(1)
            ours_names = names[ours]
        else:  # (old article, position in ``wanted``)
            found = pairs_across(values, rows, mine)
            theirs, k = found[:, 0], found[:, 1]
            agree = (np.asarray(seg.a["article_minhash"])[theirs] == my_values[k]).sum(1)
            ours_names = names[wanted[k]]
        first_rows = np.asarray(seg.a["article_rows"])[:-1]
        alive = np.ones(len(first_rows), bool) if live is None else live[first_rows]
        keep = (agree >= MIN_AGREEMENT) & alive[theirs]
        their_names = seg.a["article_names"][theirs[keep]]
        for x, y in zip(their_names.tolist(), ours_names[keep].tolist(), strict=True):
            if x != y:
                pairs.add((min(x, y), max(x, y)))
    return pairs


def segment_sentences(seg: Segment, i: int) -> list[Sentence]:
    """The sentences of article ``i`` of ``seg``, with offsets into the article."""
    lo, hi = (int(x) for x in seg.a["article_rows"][i : i + 2])
    meta = seg.article_record(i)
    return article_sentences([seg.passage(r, meta) for r in range(lo, hi)])


def name_at(seg: Segment, row: int) -> str:
    """The file name of the article that owns ``row`` of ``seg``."""
    return str(seg.a["article_names"][int(seg.a["owner"][row])])
