"""The near-duplicate group overlay: which live passages are copies of each other.

Groups are kept beside the segments, not inside them, because a new article
can join passages of old segments into one group. The overlay is one small
array per generation, a row per passage that has at least one copy:
``(segment number, row, group, is representative)``; a passage absent from it
is alone. A build updates it incrementally (:func:`update_overlay`): only
groups that lost a member are re-checked, and only the new passages' LSH
candidates are compared, never the whole corpus. A merge renumbers rows
(:func:`remap_overlay`); the groups themselves never change in a merge.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...dedup import (
    Signature,
    minhash_signatures,
    pairs_across,
    pairs_within,
    plausible,
    representative_key,
    same,
    shingles,
    signature,
)
from . import files
from .manifest import DedupParams
from .segment import Segment, unpack

Node = tuple[int, int]  # (segment number, row)


def segment_number(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


def empty_overlay() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.int64)


def load_overlay(path: Path | None) -> np.ndarray:
    if path is None:
        return empty_overlay()
    overlay: np.ndarray = files.load_npy(path).astype(np.int64).reshape(-1, 4)
    return overlay


def overlay_groups(overlay: np.ndarray) -> list[list[Node]]:
    members: dict[int, list[Node]] = defaultdict(list)
    for seg, row, group, _ in overlay.tolist():
        members[group].append((seg, row))
    return list(members.values())


@dataclass
class Part:
    """One segment as the update sees it."""

    number: int
    segment: Segment
    live: np.ndarray | None  # live rows before this build (None: all)
    normalised: list[str] | None = None  # rows' normalised texts, when the build has them


SIGNATURES_KEPT = 20_000  # per segment (~5 KB each): an upload server reuses them


class _Texts:
    """Passage signatures, computed once per segment and row and kept on the
    segment (immutable, so they never go stale)."""

    def __init__(self, parts: dict[int, Part], params: DedupParams) -> None:
        self.parts = parts
        self.size = params.shingle
        self.params = params

    def signature(self, node: Node) -> Signature:
        part = self.parts[node[0]]
        seg = part.segment
        cache: dict[int, Signature] = seg.memo.setdefault(("signature", self.size), {})
        found = cache.get(node[1])
        if found is None:
            if part.normalised is not None:
                key = part.normalised[node[1]]
                found = key, shingles(key, self.size)
            else:
                found = signature(unpack(seg.passage_blob(node[1]))["text"], self.size)
            if len(cache) >= SIGNATURES_KEPT:
                cache.clear()
            cache[node[1]] = found
        return found

    def bands(self, node: Node) -> np.ndarray:
        """A row's LSH bands: from the segment if it has rebuilt them, else recomputed
        from the row's text (a binary search per band would cost a pass per band)."""
        seg = self.parts[node[0]].segment
        if "bands" in seg.__dict__:
            stored: np.ndarray = seg.bands[node[1]]
            return stored
        p = self.params
        key = self.signature(node)[0]
        computed: np.ndarray = minhash_signatures([key], p.shingle, p.bands, p.rows_per_band)[0][0]
        return computed

    def key(self, node: Node) -> tuple[int, str, int, str, int]:
        return representative_key(self.parts[node[0]].segment.passage(node[1]))


def update_overlay(
    overlay: np.ndarray,
    old: list[Part],
    deleted: set[Node],
    new: Part | None,
    params: DedupParams,
) -> np.ndarray:
    """The overlay after deleting ``deleted`` and adding the rows of ``new``.

    Only groups that lose a member or gain a link to a new passage are
    recomputed; every other row of the overlay is carried over as it is."""
    texts = _Texts({p.number: p for p in [*old, *([new] if new else [])]}, params)

    segs = {p.number: p.segment for p in [*old, *([new] if new else [])]}

    def copies(a: Node, b: Node) -> bool:
        mh_a, mh_b = segs[a[0]].a["minhash"][a[1]], segs[b[0]].a["minhash"][b[1]]
        if not plausible(mh_a, mh_b, params.jaccard)[0]:
            return False
        return same(texts.signature(a), texts.signature(b), params.jaccard)

    def verified(pairs: np.ndarray, left: Part, right: Part) -> list[tuple[Node, Node]]:
        """The candidate pairs (left row, right row) that are copies: MinHash
        estimates screen them all at once, the exact rule decides."""
        if not len(pairs):
            return []
        a, b = pairs.T
        ok = plausible(left.segment.a["minhash"][a], right.segment.a["minhash"][b], params.jaccard)
        out = []
        for x, y in zip(a[ok].tolist(), b[ok].tolist(), strict=True):
            nx, ny = (left.number, x), (right.number, y)
            if same(texts.signature(nx), texts.signature(ny), params.jaccard):
                out.append((nx, ny))
        return out

    edges: list[tuple[Node, Node]] = []
    if new is not None and new.segment.rows:
        a = new.segment.a
        bands = new.segment.bands
        edges.extend(verified(pairs_within(a["band_values"], a["band_rows"]), new, new))
        for part in old:
            live = part.live
            old_a = part.segment.a
            pairs = pairs_across(old_a["band_values"], old_a["band_rows"], bands)
            if live is not None:
                pairs = pairs[live[pairs[:, 0]]]
            gone = [r for s, r in deleted if s == part.number]
            if gone:
                pairs = pairs[~np.isin(pairs[:, 0], gone)]
            edges.extend(verified(pairs, part, new))
    # Groups touched by this build: a member deleted, or a member linked to a new row.
    keys = overlay[:, 0] << 32 | overlay[:, 1] if len(overlay) else np.zeros(0, np.int64)
    probe = [n for n in deleted] + [a for a, _ in edges if a[0] != (new.number if new else -1)]
    probe_keys = np.array([s << 32 | r for s, r in probe], dtype=np.int64)
    hit = np.isin(keys, probe_keys)
    affected = np.isin(overlay[:, 2], overlay[hit, 2]) if len(overlay) else hit
    carried, redo = overlay[~affected], overlay[affected]

    parent: dict[Node, Node] = {}

    def find(x: Node) -> Node:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: Node, b: Node) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for members in overlay_groups(redo):
        kept = [m for m in members if m not in deleted]
        if len(kept) == len(members):  # still connected as it was
            for m in members[1:]:
                union(members[0], m)
            continue
        for i, x in enumerate(kept):  # a member left: re-check who still links to whom
            bands_x = texts.bands(x)
            for y in kept[i + 1 :]:
                shared = (bands_x == texts.bands(y)).any()
                if find(x) != find(y) and shared and copies(x, y):
                    union(x, y)
        for m in kept:
            find(m)
    for x, y in edges:
        union(x, y)
    components: dict[Node, list[Node]] = defaultdict(list)
    for node in list(parent):
        components[find(node)].append(node)
    number = int(overlay[:, 2].max()) + 1 if len(overlay) else 0
    rows: list[tuple[int, int, int, int]] = []
    for members in sorted(sorted(c) for c in components.values()):
        if len(members) < 2:
            continue
        rep = min(members, key=texts.key)
        rows.extend((s, r, number, int((s, r) == rep)) for s, r in members)
        number += 1
    out = np.concatenate([carried, np.array(rows, dtype=np.int64).reshape(-1, 4)])
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def remap_overlay(overlay: np.ndarray, moves: dict[int, np.ndarray], merged: int) -> np.ndarray:
    """Rows of merged segments renamed to their place in segment ``merged``
    (``moves``: per merged segment number, each old row's new row, -1 if dropped),
    in numpy: a merge costs the overlay's length in C, not in Python."""
    out = overlay.astype(np.int64, copy=True).reshape(-1, 4)
    for number, new_row in moves.items():
        at = np.flatnonzero(out[:, 0] == number)
        target = new_row[out[at, 1]]
        moved = at[target >= 0]  # a dropped row keeps its old name, as it always has
        out[moved, 0], out[moved, 1] = merged, target[target >= 0]
    return out[np.lexsort(out.T[::-1])]


class GroupView:
    """Overlay lookups in a generation's global row numbers (numpy only: opening a
    generation with tens of thousands of grouped rows costs a few sorts)."""

    def __init__(self, overlay: np.ndarray, base_of: dict[int, int]) -> None:
        if len(overlay):
            bases = np.zeros(max(max(base_of), int(overlay[:, 0].max())) + 1, np.int64)
            bases[list(base_of)] = list(base_of.values())
            glob = bases[overlay[:, 0]] + overlay[:, 1]
        else:
            glob = np.zeros(0, np.int64)
        order = np.argsort(glob)
        self.rows = glob[order]
        self.group = overlay[order, 2] if len(overlay) else np.zeros(0, np.int64)
        is_rep = overlay[order, 3].astype(bool) if len(overlay) else np.zeros(0, bool)
        by_rep = np.argsort(self.group[is_rep])
        self.rep_groups = self.group[is_rep][by_rep]  # sorted: one representative per group
        self.rep_rows = self.rows[is_rep][by_rep]
        by_group = np.argsort(self.group, kind="stable")
        self.members_sorted = self.rows[by_group]
        self.groups_sorted = self.group[by_group]

    def _group(self, row: int) -> int | None:
        i = int(np.searchsorted(self.rows, row))
        if i < len(self.rows) and self.rows[i] == row:
            return int(self.group[i])
        return None

    def rep_of(self, row: int) -> int:
        """The representative's global row (the row itself when it has no copy)."""
        return int(self.reps_of(np.array([row], np.int64))[0])

    def reps_of(self, rows: np.ndarray) -> np.ndarray:
        """:meth:`rep_of` for many rows at once."""
        out = rows.astype(np.int64).copy()
        if len(self.rows) == 0 or len(rows) == 0:
            return out
        at = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
        hit = self.rows[at] == rows
        out[hit] = self.rep_rows[np.searchsorted(self.rep_groups, self.group[at[hit]])]
        return out

    def members(self, row: int) -> list[int]:
        """Every global row of ``row``'s group, itself included."""
        g = self._group(row)
        if g is None:
            return [row]
        lo, hi = np.searchsorted(self.groups_sorted, [g, g + 1])
        return sorted(self.members_sorted[lo:hi].tolist())
