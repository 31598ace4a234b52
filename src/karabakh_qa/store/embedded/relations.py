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

from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ...dedup import EMPTY
from ...relations.versions import (
    MIN_AGREEMENT,
    Sentence,
    article_sentences,
    compare,
    figure_changes,
)
from . import files
from .groups import Node
from .segment import Segment

COLUMNS = ("kind", "a", "b", "shared", "a_sentences", "b_sentences", "figures")
INTS = ("shared", "a_sentences", "b_sentences", "figures")
KINDS = ("duplicate", "version", "corroborates", "differs-on-figure")  # stored as their index
Row = tuple[str, str, str, int, int, int, int]


def empty() -> list[Row]:
    return []


def table(rows: list[Row]) -> np.ndarray:
    """Rows as the stored structured array: the kind as its index in KINDS, names as
    UTF-8 bytes as wide as the longest, counts as int32."""
    encoded = [(KINDS.index(r[0]), r[1].encode(), r[2].encode(), *r[3:]) for r in rows]
    width = max([len(r[1]) for r in encoded] + [len(r[2]) for r in encoded] + [1])
    dtype = np.dtype(
        [("kind", "u1"), ("a", f"S{width}"), ("b", f"S{width}")] + [(c, "<i4") for c in INTS]
    )
    return np.array(encoded, dtype=dtype)


def read(index_dir: Path, name: str | None) -> np.ndarray:
    """The stored table as it is on disk (see :func:`table`); empty without one."""
    if name is None:
        return table([])
    return np.load(index_dir / name, allow_pickle=False)


def decode(stored: np.ndarray) -> list[Row]:
    """Stored rows as (kind, a, b, shared, a_sentences, b_sentences, figures)."""
    return [
        (KINDS[k], a.decode(), b.decode(), int(s), int(na), int(nb), int(f))
        for k, a, b, s, na, nb, f in stored.tolist()
    ]


def load(index_dir: Path, name: str | None) -> list[Row]:
    """The stored table as rows (:func:`decode`)."""
    return decode(read(index_dir, name))


def save(index_dir: Path, name: str, rows: list[Row]) -> str:
    return files.save_generation_array(index_dir, name, table(rows))


def related(rows: Iterable[tuple], name: str) -> list[dict]:
    """The relations of article ``name``, each seen from it: ``{kind, file, shared,
    sentences, other_sentences, figures}``."""
    out = []
    for kind, a, b, shared, na, nb, figs in rows:
        if name not in (a, b):
            continue
        mine, other, n_mine, n_other = (a, b, na, nb) if a == name else (b, a, nb, na)
        out.append(
            {
                "kind": str(kind),
                "file": str(other),
                "shared": int(shared),
                "sentences": int(n_mine),
                "other_sentences": int(n_other),
                "figures": int(figs),
            }
        )
    return sorted(out, key=lambda r: (r["kind"], r["file"]))


def partners(overlay: np.ndarray, name_of: Callable[[Node], str], fresh: set[str]) -> set[tuple]:
    """Pairs (a, b), a < b, of articles sharing a near-duplicate group where one of
    them is ``fresh``."""
    groups: dict[int, set[str]] = defaultdict(set)
    for seg, row, group, _ in overlay.tolist():
        groups[group].add(name_of((seg, row)))
    pairs = set()
    for names in groups.values():
        new = names & fresh
        for n in new:
            pairs.update((min(n, m), max(n, m)) for m in names if m != n)
    return pairs


def update(
    old: list[Row],
    gone: set[str],
    pairs: set[tuple],
    sentences_of: Callable[[str], list[Sentence]],
    linked: set[tuple] | None = None,
    plausible: Callable[[str, str], bool] | None = None,
) -> list[Row]:
    """``old`` without rows naming a ``gone`` article, plus the relations of ``pairs``
    (compared now; the sentences of each article read once); ``linked``: the pairs
    that share a near-duplicate paragraph (they corroborate each other at least;
    None: all of ``pairs`` do); ``plausible(a, b)`` False: a linked pair cannot be
    a version (their signatures say so) and is stored as corroborating without the
    exact comparison (sentence counts 0: not compared)."""
    kept = [r for r in old if r[1] not in gone and r[2] not in gone]
    done = {(r[1], r[2]) for r in kept}
    cache: dict[str, list[Sentence]] = {}

    def sents(name: str) -> list[Sentence]:
        if name not in cache:
            cache[name] = sentences_of(name)
        return cache[name]

    added = []
    for a, b in sorted(pairs - done):
        is_linked = linked is None or (a, b) in linked
        if is_linked and plausible is not None and not plausible(a, b):
            added.append(("corroborates", a, b, 0, 0, 0, 0))
            continue
        cmp = compare(sents(a), sents(b), diff=False)
        kind = cmp.kind(linked=is_linked)
        if kind is None:
            continue
        figs = 0
        if kind != "corroborates":
            figs = len(figure_changes(compare(sents(a), sents(b))))
        added.append((kind, a, b, cmp.shared, cmp.a, cmp.b, figs))
        if figs:
            added.append(("differs-on-figure", a, b, cmp.shared, cmp.a, cmp.b, figs))
    return kept + added


BUCKET_LIMIT = 50  # a band value shared by more articles is boilerplate: no candidates


def lsh_partners(
    new: Segment, others: list[tuple[Segment, np.ndarray | None]], fresh: set[str]
) -> set[tuple]:
    """Pairs (a, b), a < b, of a ``fresh`` article of ``new`` and a live article of
    ``others`` (segments with their live rows, None: all; ``new`` among them) with
    an equal LSH band of their word shingles (relations.versions.article_bands)."""
    mine = np.asarray(new.a["article_bands"])
    names = new.a["article_names"]
    wanted = [i for i in range(len(names)) if str(names[i]) in fresh]
    pairs: set[tuple] = set()
    if not wanted or mine.size == 0:
        return pairs
    mine = mine[wanted]
    my_values = np.asarray(new.a["article_minhash"])[wanted]
    for seg, live in others:
        theirs = np.asarray(seg.a["article_bands"])
        if theirs.size == 0:
            continue
        first_rows = np.asarray(seg.a["article_rows"])[:-1]
        alive = np.ones(len(theirs), bool) if live is None else live[first_rows]
        other_names = seg.a["article_names"]
        for j in range(theirs.shape[1]):
            order = np.argsort(theirs[:, j], kind="stable")
            column = theirs[order, j]
            lo = np.searchsorted(column, mine[:, j], "left")
            hi = np.searchsorted(column, mine[:, j], "right")
            for k in np.flatnonzero((hi > lo) & (hi - lo <= BUCKET_LIMIT)).tolist():
                if mine[k, j] == EMPTY:
                    continue
                a = str(names[wanted[k]])
                found = order[lo[k] : hi[k]]
                agree = (np.asarray(seg.a["article_minhash"])[found] == my_values[k]).sum(axis=1)
                for m in found[agree >= MIN_AGREEMENT].tolist():
                    b = str(other_names[m])
                    if alive[m] and b != a:
                        pairs.add((min(a, b), max(a, b)))
    return pairs


def segment_sentences(seg: Segment, i: int) -> list[Sentence]:
    """The sentences of article ``i`` of ``seg``, with offsets into the article."""
    lo, hi = (int(x) for x in seg.a["article_rows"][i : i + 2])
    meta = seg.article_record(i)
    return article_sentences([seg.passage(r, meta) for r in range(lo, hi)])


def name_at(seg: Segment, row: int) -> str:
    """The file name of the article that owns ``row`` of ``seg``."""
    return str(seg.a["article_names"][int(seg.a["owner"][row])])
