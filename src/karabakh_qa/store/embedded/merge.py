"""Merges: a log-structured policy, and the merge of segments into one.

Policy (as Lucene's LogMergePolicy and tantivy's): a segment's *level* is
``floor(log_F(live rows / FLOOR))``; when a level holds ``F`` segments they are
merged into one of the next level, so the number of segments stays below
``(F - 1)`` per level, a handful at a million passages. A segment of at least
``FLOOR`` rows whose deleted share passes ``EXPUNGE`` is rewritten alone,
reclaiming the space; a segment whose rows are all deleted is dropped.
Whatever the levels, an index holds at most ``MAX_SEGMENTS``: past that, the
smallest segments are merged (as Lucene's tiered policy keeps a segment
budget), so that a large build's flushed segments plus the small ones of
later adds stay few.

A merge copies bytes: passage and article records, 8-bit vector codes, LSH
bands and MinHash values; postings are concatenated under the merged vocabulary with rows
renumbered and deleted rows dropped. Nothing is re-embedded or re-quantised,
so a merged index answers exactly like a fresh build of the same folder.
Queries keep running on the old generation until the merged one is switched in.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from ...dedup import ESTIMATE_VALUES
from ...relations.versions import ARTICLE_BANDS
from . import files
from .files import next_number, save_generation_array
from .groups import remap_overlay, segment_number
from .manifest import Manifest, SegmentRef
from .search import Snapshot
from .segment import SegmentColumns, write_segment

MERGE_FACTOR = 8
FLOOR = 1000
EXPUNGE = 0.3
MAX_SEGMENTS = 10


def level(rows: int) -> int:
    return int(math.log(max(rows, FLOOR) / FLOOR, MERGE_FACTOR))


def plan_merges(snap: Snapshot) -> list[list[int]]:
    """Positions of segments to merge together (one list per merge)."""
    live = [
        seg.rows if mask is None else int(mask.sum())
        for seg, mask in zip(snap.segments, snap.live, strict=True)
    ]
    empty = [pos for pos, rows in enumerate(live) if rows == 0]
    if empty:  # fully deleted segments go first, whatever their level
        return [empty]
    by_level: dict[int, list[int]] = {}
    for pos, rows in enumerate(live):
        by_level.setdefault(level(rows), []).append(pos)
    plans = [positions for positions in by_level.values() if len(positions) >= MERGE_FACTOR]
    planned = {p for plan in plans for p in plan}
    for pos, (seg, rows) in enumerate(zip(snap.segments, live, strict=True)):
        if pos not in planned and seg.rows >= FLOOR and 1 - rows / seg.rows > EXPUNGE:
            plans.append([pos])
    if not plans and len(live) > MAX_SEGMENTS:
        smallest = sorted(range(len(live)), key=lambda p: (live[p], p))
        plans.append(sorted(smallest[: len(live) - MAX_SEGMENTS + 1]))
    return plans[:1]  # one merge per build; the next build looks again


def merge_columns(snap: Snapshot, plan: list[int]) -> tuple[SegmentColumns, dict[int, np.ndarray]]:
    """Live rows of the planned segments as one segment's columns, and the row map:
    per merged segment number, each old row's row in the merged one (-1: dropped)."""
    names, size, mtime, art_rows, art_blobs = [], [], [], [0], []
    art_bands: list[np.ndarray] = []
    art_minhash: list[np.ndarray] = []
    blobs: list[bytes] = []
    ids, lengths, codes, bands, s_bounds, s_spans, s_codes = [], [], [], [], [0], [], []
    minhash: list[np.ndarray] = []
    s_term_lists, post_terms, post_docs, post_tf = [], [], [], []
    mapping: dict[int, np.ndarray] = {}
    vocab = np.unique(np.concatenate([np.asarray(snap.segments[p].a["terms"]) for p in plan]))
    row = 0
    for pos in plan:
        seg, live = snap.segments[pos], snap.live[pos]
        a = seg.a
        keep = np.ones(seg.rows, bool) if live is None else live
        new_row = np.full(seg.rows, -1, np.int64)
        new_row[keep] = np.arange(row, row + int(keep.sum()))
        mapping[segment_number(seg.name)] = new_row
        to_merged = np.searchsorted(vocab, np.asarray(a["terms"])) if len(a["terms"]) else None
        bounds = np.asarray(a["article_rows"])
        for i in range(len(bounds) - 1):
            lo, hi = int(bounds[i]), int(bounds[i + 1])
            if hi == lo or not keep[lo]:
                continue
            names.append(str(a["article_names"][i]))
            size.append(int(a["article_size"][i]))
            mtime.append(int(a["article_mtime"][i]))
            art_bands.append(seg.article_bands[i])
            art_minhash.append(a["article_minhash"][i])
            art_blobs.append(seg.article_blob(i))
            art_rows.append(art_rows[-1] + hi - lo)
        kept_rows = np.flatnonzero(keep)
        blobs.extend(seg.passage_blob(r) for r in kept_rows.tolist())
        ids.append(np.asarray(a["ids"])[kept_rows])
        lengths.append(np.asarray(a["lengths"])[kept_rows])
        codes.append(np.asarray(seg.vectors.codes[kept_rows]))
        bands.append(seg.bands[kept_rows])
        minhash.append(np.asarray(a["minhash"])[kept_rows])
        sb = np.asarray(a["sent_bounds"])
        tp = np.asarray(a["sent_term_ptr"])
        for r in kept_rows.tolist():
            lo, hi = int(sb[r]), int(sb[r + 1])
            s_bounds.append(s_bounds[-1] + hi - lo)
            s_spans.append(np.asarray(a["sent_spans"][lo:hi]))
            s_codes.append(np.asarray(a["sent_codes"][lo:hi]))
            for s in range(lo, hi):
                local = np.asarray(a["sent_term_ids"][tp[s] : tp[s + 1]])
                s_term_lists.append(to_merged[local] if to_merged is not None else local)
        ptr = np.asarray(a["postings_ptr"])
        term_of = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
        docs = np.asarray(a["postings_docs"])
        alive = keep[docs]
        if to_merged is not None:
            post_terms.append(to_merged[term_of[alive]])
            post_docs.append(new_row[docs[alive]])
            post_tf.append(np.asarray(a["postings_tf"])[alive])
        row += int(keep.sum())
    terms_all = np.concatenate(post_terms) if post_terms else np.zeros(0, np.int64)
    docs_all = np.concatenate(post_docs) if post_docs else np.zeros(0, np.int64)
    tf_all = np.concatenate(post_tf) if post_tf else np.zeros(0, np.uint16)
    order = np.lexsort((docs_all, terms_all))
    dim = snap.segments[plan[0]].dim
    s_ptr = np.zeros(len(s_term_lists) + 1, np.int64)
    np.cumsum([len(x) for x in s_term_lists], out=s_ptr[1:])
    cols = SegmentColumns(
        article_names=np.array(names, dtype=str),
        article_size=np.array(size, np.int64),
        article_mtime=np.array(mtime, np.int64),
        article_rows=np.array(art_rows, np.int64),
        article_blobs=art_blobs,
        passage_blobs=blobs,
        ids=np.concatenate(ids) if ids else np.zeros(0, "S16"),
        lengths=np.concatenate(lengths) if lengths else np.zeros(0, np.int32),
        terms=vocab,
        postings_ptr=np.searchsorted(terms_all[order], np.arange(len(vocab) + 1)).astype(np.int64),
        postings_docs=docs_all[order],
        postings_tf=tf_all[order],
        codes=np.concatenate(codes) if codes else np.zeros((0, dim), np.uint8),
        sent_bounds=np.array(s_bounds, np.int64),
        sent_spans=np.concatenate(s_spans) if s_spans else np.zeros((0, 2), np.int64),
        sent_codes=np.concatenate(s_codes) if s_codes else np.zeros((0, 0), np.uint8),
        sent_term_ptr=s_ptr,
        sent_term_ids=np.concatenate(s_term_lists) if s_term_lists else np.zeros(0, np.int32),
        bands=np.concatenate(bands) if bands else np.zeros((0, 16), np.uint32),
        minhash=np.concatenate(minhash) if minhash else np.zeros((0, 64), np.uint8),
        article_bands=np.array(art_bands, np.uint32).reshape(len(names), ARTICLE_BANDS),
        article_minhash=np.array(art_minhash, np.uint8).reshape(len(names), ESTIMATE_VALUES),
    )
    return cols, mapping


def merge_segments(snap: Snapshot, plan: list[int], generation: int, index_dir: Path) -> Manifest:
    """Write the merged segment and the overlay; the manifest is returned, not published."""
    cols, mapping = merge_columns(snap, plan)
    m = snap.manifest
    if cols.rows == 0:  # every row deleted: the segments are dropped, nothing is written
        kept = tuple(ref for pos, ref in enumerate(m.segments) if pos not in plan)
        return replace(m, generation=generation, segments=kept)
    name = f"seg-{next_number(index_dir, 'seg'):06d}"
    number = segment_number(name)
    tmp = files.tmp_name(index_dir, name)
    write_segment(tmp, name, cols, snap.manifest.vectors)
    files.publish_folder(tmp, index_dir / name)
    refs = [ref for pos, ref in enumerate(m.segments) if pos not in plan]
    refs.insert(min(plan), SegmentRef(name, cols.rows))
    groups = m.groups
    if len(snap.overlay):
        overlay = remap_overlay(snap.overlay, mapping, number)
        groups = save_generation_array(index_dir, f"groups-{generation:06d}.npy", overlay)
    return replace(m, generation=generation, segments=tuple(refs), groups=groups)
