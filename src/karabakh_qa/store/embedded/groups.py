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

from ...dedup import Signature, pairs_across, pairs_within, representative_key, same, signature
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
    return np.load(path, allow_pickle=False).astype(np.int64).reshape(-1, 4)


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


class _Texts:
    """Passage signatures and records, read and computed once per build."""

    def __init__(self, parts: dict[int, Segment], size: int) -> None:
        self.parts = parts
        self.size = size
        self.cache: dict[Node, Signature] = {}

    def signature(self, node: Node) -> Signature:
        if node not in self.cache:
            text = unpack(self.parts[node[0]].passage_blob(node[1]))["text"]
            self.cache[node] = signature(text, self.size)
        return self.cache[node]

    def key(self, node: Node) -> tuple:
        return representative_key(self.parts[node[0]].passage(node[1]))


def update_overlay(
    overlay: np.ndarray,
    old: list[Part],
    deleted: set[Node],
    new: Part | None,
    params: DedupParams,
) -> np.ndarray:
    """The overlay after deleting ``deleted`` and adding the rows of ``new``."""
    texts = _Texts({p.number: p.segment for p in [*old, *([new] if new else [])]}, params.shingle)
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

    def link(a: Node, b: Node) -> None:
        if find(a) != find(b) and same(texts.signature(a), texts.signature(b), params.jaccard):
            union(a, b)

    old_groups = overlay_groups(overlay)
    rep_of = {(s, r): bool(is_rep) for s, r, _, is_rep in overlay.tolist()}
    touched: set[Node] = set()
    by_number = {p.number: p for p in old}
    for members in old_groups:
        kept = [m for m in members if m not in deleted]
        if len(kept) == len(members):
            for m in members[1:]:
                union(members[0], m)
            continue
        touched.update(kept)  # a member left: re-check who still links to whom
        for i, a in enumerate(kept):
            for b in kept[i + 1 :]:
                bands_a = by_number[a[0]].segment.a["bands"][a[1]]
                if (bands_a == by_number[b[0]].segment.a["bands"][b[1]]).any():
                    link(a, b)
    if new is not None and new.segment.rows:
        bands = np.asarray(new.segment.a["bands"])
        touched.update((new.number, r) for r in range(new.segment.rows))
        for i, j in sorted(pairs_within(bands)):
            link((new.number, i), (new.number, j))
        for part in old:
            for r, i in sorted(pairs_across(part.segment.a["bands"], bands)):
                node = (part.number, r)
                alive = part.live is None or bool(part.live[r])
                if alive and node not in deleted:
                    link(node, (new.number, i))
    components: dict[Node, list[Node]] = defaultdict(list)
    for node in list(parent):
        components[find(node)].append(node)
    rows = []
    for number, members in enumerate(sorted(sorted(c) for c in components.values())):
        if len(members) < 2:
            continue
        if touched.isdisjoint(members):
            rep = next(m for m in members if rep_of.get(m))
        else:
            rep = min(members, key=texts.key)
        rows.extend((s, r, number, int((s, r) == rep)) for s, r in members)
    out = np.array(sorted(rows), dtype=np.int64).reshape(-1, 4)
    return out


def remap_overlay(overlay: np.ndarray, mapping: dict[Node, Node]) -> np.ndarray:
    """Rows of merged segments renamed to their place in the merged segment."""
    rows = [(*mapping.get((s, r), (s, r)), g, rep) for s, r, g, rep in overlay.tolist()]
    return np.array(sorted(rows), dtype=np.int64).reshape(-1, 4)


class GroupView:
    """Overlay lookups in a generation's global row numbers."""

    def __init__(self, overlay: np.ndarray, base_of: dict[int, int]) -> None:
        if len(overlay):
            glob = np.array([base_of[s] for s in overlay[:, 0].tolist()], np.int64) + overlay[:, 1]
        else:
            glob = np.zeros(0, np.int64)
        order = np.argsort(glob)
        self.rows = glob[order]
        self.group = overlay[order, 2] if len(overlay) else np.zeros(0, np.int64)
        is_rep = overlay[order, 3].astype(bool) if len(overlay) else np.zeros(0, bool)
        self.rep = dict(zip(self.group[is_rep].tolist(), self.rows[is_rep].tolist(), strict=True))
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
        g = self._group(row)
        return row if g is None else self.rep[g]

    def reps_of(self, rows: np.ndarray) -> np.ndarray:
        """:meth:`rep_of` for many rows at once."""
        out = rows.astype(np.int64).copy()
        if len(self.rows) == 0 or len(rows) == 0:
            return out
        at = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
        hit = self.rows[at] == rows
        out[hit] = [self.rep[g] for g in self.group[at[hit]].tolist()]
        return out

    def members(self, row: int) -> list[int]:
        """Every global row of ``row``'s group, itself included."""
        g = self._group(row)
        if g is None:
            return [row]
        lo, hi = np.searchsorted(self.groups_sorted, [g, g + 1])
        return sorted(self.members_sorted[lo:hi].tolist())
