"""Search over one generation: its segments seen as one row space.

A :class:`Snapshot` is a generation opened for reading. Global row numbers
run over the segments in manifest order (deleted rows keep their number and
are never returned). Segments are opened once per process and shared by every
snapshot that lists them (:class:`SegmentCache`), so opening a new generation
costs its new segments only: after an incremental build, one small segment
and a few deletion bitmaps.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import numpy as np

from ...pacing import no_pause
from ...records import Passage
from ...relations.versions import Sentence
from ..protocol import Memo
from . import files, kernels, relations, vectors
from .bm25 import Bm25View
from .groups import GroupView, load_overlay, segment_number
from .manifest import IndexCorrupt, Manifest, VectorCodec
from .segment import Segment

log = logging.getLogger(__name__)


ARRAYS_KEPT = 16  # generation files (relations, groups, statistics, deletions) kept loaded


class SegmentCache:
    """Open segments by folder, shared across generations (segments never change),
    and the generation files they last read (a build opens the same generation up to
    five times: its table of relations alone is 6.4 MB at 1M)."""

    def __init__(self) -> None:
        self._open: dict[Path, Segment] = {}
        self._arrays: OrderedDict[tuple[Path, int, int, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def array(self, path: Path, load: Callable[[Path], np.ndarray]) -> np.ndarray:
        """``load(path)``, read-only, loaded once while the file is the same one (a
        generation file is written once under its name; the stat tells a file that a
        full rebuild wrote again under an old name)."""
        st = path.stat()
        key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            found = self._arrays.get(key)
            if found is not None:
                self._arrays.move_to_end(key)
                return found
        array = load(path)
        array.flags.writeable = False
        with self._lock:
            self._arrays[key] = array
            while len(self._arrays) > ARRAYS_KEPT:
                self._arrays.popitem(last=False)
        return array

    def get(self, folder: Path, manifest: Manifest) -> Segment:
        with self._lock:
            seg = self._open.get(folder)
            if seg is None:
                seg = Segment(folder, manifest.vectors, manifest.sentences)
                self._open[folder] = seg
            return seg

    def keep_only(self, folders: set[Path]) -> None:
        with self._lock:
            for folder in [f for f in self._open if f not in folders]:
                del self._open[folder]


def load_live(path: Path, rows: int) -> np.ndarray:
    """The live-row mask stored in a deletion file (packed bits of deleted rows)."""
    try:
        packed = files.load_npy(path)
        deleted = np.unpackbits(packed, count=rows, bitorder="little").astype(bool)
    except files.UNREADABLE as exc:
        raise IndexCorrupt(
            f"deletion file {path} is unreadable ({exc}): run `karabakh-qa index --repair`"
        ) from None
    return ~deleted


@dataclass
class SentenceFeatures:
    cosine: np.ndarray  # best sentence cosine per row
    coverage: np.ndarray  # best share of the question's idf mass per row
    best: np.ndarray  # index within the passage of the sentence to mark
    each: list[np.ndarray]  # per row: cosine + coverage of each of its sentences


PASSAGE_CACHE = 4096  # decoded passages a generation keeps


class Snapshot(Memo):
    """One generation, opened: segments, deletions, statistics and groups."""

    def __init__(self, index_dir: Path, manifest: Manifest, cache: SegmentCache) -> None:
        self.index_dir = index_dir
        self.manifest = manifest
        self.path = index_dir / manifest.file_name
        self.segments = [cache.get(index_dir / s.name, manifest) for s in manifest.segments]
        self.live: list[np.ndarray | None] = []
        for ref, seg in zip(manifest.segments, self.segments, strict=True):
            if seg.rows != ref.rows:
                raise IndexCorrupt(
                    f"segment {seg.folder} has {seg.rows} rows, the manifest says {ref.rows}: "
                    "run `karabakh-qa index --repair`"
                )
            self.live.append(
                cache.array(index_dir / ref.deletes, functools.partial(load_live, rows=seg.rows))
                if ref.deletes
                else None
            )
        self.bases = np.zeros(len(self.segments) + 1, dtype=np.int64)
        np.cumsum([s.rows for s in self.segments], out=self.bases[1:])
        self.numbers = [segment_number(s.name) for s in self.segments]
        stats = np.zeros((0, 2), np.int64)
        try:
            overlay = (
                cache.array(index_dir / manifest.groups, load_overlay)
                if manifest.groups
                else load_overlay(None)
            )
            self._relations = (
                cache.array(index_dir / manifest.relations, files.load_npy)
                if manifest.relations
                else relations.empty()
            )
            if manifest.stats:
                stats = cache.array(index_dir / manifest.stats, files.load_npy).reshape(-1, 2)
        except files.UNREADABLE as exc:
            raise IndexCorrupt(
                f"index file of {self.path} is unreadable ({exc}): run `karabakh-qa index --repair`"
            ) from None
        self.overlay = overlay
        self._passages: dict[int, Passage] = {}  # the latest decoded: see passage()
        self.bm25 = Bm25View(
            manifest.bm25,
            self.segments,
            self.bases,
            self.live,
            manifest.live_passages,
            manifest.total_length,
            stats,
        )

    @property
    def base_of(self) -> dict[int, int]:
        """Segment number -> global row of its first row."""
        return dict(zip(self.numbers, self.bases[:-1].tolist(), strict=True))

    @cached_property
    def groups(self) -> GroupView:
        """The overlay in global rows; built on first use (a build rarely needs it)."""
        return GroupView(self.overlay, self.base_of)

    def inherit(self, previous: Snapshot | None) -> None:
        """Take ``previous``'s group view when it still holds: the same overlay file, and
        every segment of ``previous`` still first row where it was (an add appends a
        segment; a merge moves rows). Opening a 1M generation after an add then costs
        ~2 ms instead of ~8 (its sorts held up the queries in flight)."""
        if previous is None:
            return
        if "groups" not in previous.__dict__ or previous.manifest.groups != self.manifest.groups:
            return
        mine = self.base_of
        if all(mine.get(n) == b for n, b in previous.base_of.items()):
            self.__dict__["groups"] = previous.groups

    def release(self, pause: Callable[[], None] = no_pause) -> None:
        """Unmap every page the queries read so far (a server does it now and then:
        the index stays in the page cache, and the process's RSS stays its own)."""
        for seg in self.segments:
            seg.release()
            pause()

    # --- row space -------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self.manifest.generation

    @property
    def total_rows(self) -> int:
        return int(self.bases[-1])

    def locate(self, row: int) -> tuple[Segment, int]:
        pos = int(np.searchsorted(self.bases, row, side="right")) - 1
        return self.segments[pos], row - int(self.bases[pos])

    @cached_property
    def deletions(self) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
        """Per segment: its deleted rows and the packed bits of its live rows."""
        out: list[tuple[np.ndarray | None, np.ndarray | None]] = []
        for live in self.live:
            if live is None:
                out.append((None, None))
            else:
                out.append((np.flatnonzero(~live), np.packbits(live, bitorder="little")))
        return out

    @cached_property
    def live_mask(self) -> np.ndarray:
        parts = [
            np.ones(s.rows, bool) if m is None else m
            for s, m in zip(self.segments, self.live, strict=True)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, bool)

    def article_of(self, row: int) -> dict[str, Any]:
        """The metadata record of the article global ``row`` belongs to."""
        seg, local = self.locate(row)
        return seg.article_record(int(seg.a["owner"][local]))

    def passage(self, row: int) -> Passage:
        """The passage at global ``row``, its ``group`` set to the representative's id.
        The latest PASSAGE_CACHE decoded are kept (a question's top ten are read by the
        second phase, then by the decoration; popular passages come back across
        questions): at 1M, ~0.6 ms of a 15 ms question."""
        found = self._passages.get(row)
        if found is not None:
            return found
        seg, local = self.locate(row)
        p = seg.passage(local)
        rep = self.groups.rep_of(row)
        if rep != row:
            rseg, rlocal = self.locate(rep)
            p = replace(p, group=rseg.a["ids"][rlocal].decode())
        if len(self._passages) >= PASSAGE_CACHE:
            self._passages.clear()  # (threads may race here: a passage decoded twice)
        self._passages[row] = p
        return p

    def previous_passage(self, row: int) -> Passage | None:
        """The passage before global ``row`` in its article (an article's rows are
        consecutive in its segment), or None for an article's first."""
        seg, local = self.locate(row)
        if local == 0 or seg.a["owner"][local - 1] != seg.a["owner"][local]:
            return None
        return self.passage(row - 1)

    def by_segment(self, rows: np.ndarray) -> Iterator[tuple[Segment, np.ndarray, np.ndarray]]:
        """Global ``rows`` split by segment: (segment, positions in ``rows``, local rows)."""
        pos = np.searchsorted(self.bases, rows, side="right") - 1
        for p in np.unique(pos).tolist():
            sel = np.flatnonzero(pos == p)
            yield self.segments[p], sel, rows[sel] - self.bases[p]

    def ids(self, rows: np.ndarray) -> np.ndarray:
        """Passage ids of global ``rows`` (S16), for deterministic tie-breaks."""
        out = np.empty(len(rows), dtype="S16")
        for seg, sel, local in self.by_segment(rows):
            out[sel] = seg.a["ids"][local]
        return out

    # --- articles ------------------------------------------------------------------

    @cached_property
    def article_locations(self) -> dict[str, tuple[int, int]]:
        """Live article name -> (segment position, article index)."""
        out = {}
        for pos, (seg, live) in enumerate(zip(self.segments, self.live, strict=True)):
            starts = np.asarray(seg.a["article_rows"][:-1])
            alive = np.ones(len(starts), bool) if live is None else live[starts]
            names = seg.a["article_names"]
            for i in np.flatnonzero(alive).tolist():
                out[str(names[i])] = (pos, i)
        return out

    @cached_property
    def article_metas(self) -> dict[str, dict[str, Any]]:
        """Every live article's metadata record, by name, in name order."""
        out = {}
        for name in self.article_names():
            pos, i = self.article_locations[name]
            out[name] = self.segments[pos].article_record(i)
        return out

    def article_names(self) -> list[str]:
        return sorted(self.article_locations)

    def locate_article(self, name: str) -> tuple[int, int] | None:
        """(segment position, article index) of a live article, through each
        segment's own name index (built once per process and segment)."""
        if "article_locations" in self.__dict__:
            return self.article_locations.get(name)
        for pos in range(len(self.segments) - 1, -1, -1):
            seg, live = self.segments[pos], self.live[pos]
            i = seg.find_article(name)
            if i is not None and (live is None or live[int(seg.a["article_rows"][i])]):
                return pos, i
        return None

    def article_sentences(self, name: str) -> list[Sentence]:
        """A live article's sentences with offsets into it (relations.versions)."""
        pos, i = self.locate_article(name) or (None, None)
        if pos is None or i is None:
            return []
        return relations.segment_sentences(self.segments[pos], i)

    @property
    def relation_table(self) -> np.ndarray:
        """The stored relation table (relations.table), read-only."""
        return self._relations

    @property
    def relation_rows(self) -> list[relations.Row]:
        """Every row of the relation table (store/embedded/relations.py)."""
        return relations.decode(self._relations)

    def relations_of(self, name: str) -> list[dict[str, Any]]:
        """Article ``name``'s relations to other live articles (store/embedded/relations.py)."""
        return relations.related(self._relations, name)

    def article(self, name: str) -> tuple[dict[str, Any], list[int]] | None:
        """An article's metadata and its global rows, or None."""
        where = self.locate_article(name)
        if where is None:
            return None
        pos, i = where
        seg = self.segments[pos]
        meta = seg.article_record(i)
        lo, hi = (int(x) for x in seg.a["article_rows"][i : i + 2])
        base = int(self.bases[pos])
        return meta, list(range(base + lo, base + hi))

    def row_of_id(self, pid: str) -> int | None:
        """The live global row of passage ``pid`` (a scan of the ids column: a citation
        lookup, not a query path), or None."""
        try:
            wanted = np.array(pid.encode("ascii"), dtype="S16")
        except UnicodeEncodeError:
            return None
        for pos, seg in enumerate(self.segments):
            for local in np.flatnonzero(seg.a["ids"] == wanted).tolist():
                live = self.live[pos]
                if live is None or live[local]:
                    return int(self.bases[pos]) + local
        return None

    def dates_of(self, rows: np.ndarray) -> np.ndarray:
        """The date of each global row ("" unknown)."""
        out = np.full(len(rows), "", dtype="U10")
        for seg, sel, local in self.by_segment(np.asarray(rows, np.int64)):
            out[sel] = seg.dates[local]
        return out

    def rows_where(
        self,
        sources: tuple[str, ...],
        since: str | None,
        until: str | None,
        undated: bool = False,
    ) -> np.ndarray:
        """Live rows from ``sources`` (all if empty) dated within [since, until]; a date
        bound leaves out passages whose date is unknown unless ``undated``."""
        if sources:
            found = [self.article(s) for s in sources]
            picked = [np.asarray(f[1], np.int64) for f in found if f]
            rows = np.unique(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
        else:
            rows = np.flatnonzero(self.live_mask).astype(np.int64)
        if not (since or until):
            return rows
        dates = np.concatenate([s.dates for s in self.segments])[rows]
        keep = dates != ""
        if since:
            keep &= dates >= since
        if until:
            keep &= dates <= until
        if undated:
            keep |= dates == ""
        kept: np.ndarray = rows[keep]
        return kept

    # --- dense -------------------------------------------------------------------

    def dense_top(
        self,
        qvec: np.ndarray,
        depth: int,
        allowed: np.ndarray | None = None,
        mode: str = "exact",
    ) -> np.ndarray:
        """Global rows of the ``depth`` best cosines among live (and allowed) rows;
        ``mode`` (exact, ann, auto) chooses exact or approximate search per segment."""
        search = self.dense_search(qvec, depth, allowed, mode)
        search.work()
        return search.result()

    def dense_search(
        self,
        qvec: np.ndarray,
        depth: int,
        allowed: np.ndarray | None = None,
        mode: str = "exact",
        threads: int = 1,
    ) -> DenseSearch:
        """:meth:`dense_top` as work that several threads can share (:class:`DenseSearch`)."""
        return DenseSearch(self, qvec, depth, allowed, mode, threads)

    def dense_scores(self, qvec: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = np.zeros(len(rows), dtype=np.float64)
        for seg, sel, local in self.by_segment(rows):
            out[sel] = seg.vectors.scores_for(qvec, local)
        return out

    # --- sentences ---------------------------------------------------------------

    def sentence_features(
        self, rows: np.ndarray, qvec: np.ndarray, terms: list[str], qidf: np.ndarray, total: float
    ) -> SentenceFeatures:
        """For each row: best sentence cosine, best idf coverage (of ``total``, the
        question's whole idf mass), and the sentence a reader should see first."""
        n = len(rows)
        out = SentenceFeatures(np.full(n, -1.0), np.zeros(n), np.zeros(n, np.int64), [])
        out.each = [np.zeros(0)] * n
        for seg, sel, local in self.by_segment(rows):
            part = _segment_sentences(seg, local, qvec, terms, qidf, total)
            out.cosine[sel], out.coverage[sel], out.best[sel] = (
                part.cosine,
                part.coverage,
                part.best,
            )
            for k, scores in zip(sel.tolist(), part.each, strict=True):
                out.each[k] = scores
        return out

    def sentence_span(self, row: int, which: int) -> list[int]:
        seg, local = self.locate(row)
        s, e = seg.a["sent_spans"][int(seg.a["sent_bounds"][local]) + which]
        return [int(s), int(e)]


def _segment_sentences(
    seg: Segment,
    local: np.ndarray,
    qvec: np.ndarray,
    terms: list[str],
    qidf: np.ndarray,
    total: float,
) -> SentenceFeatures:
    ids, found = seg.term_range(terms)
    sent = seg.sentences_of(np.asarray(local, np.int64))  # read for these rows alone
    return best_sentences(
        sent.bounds,
        np.arange(len(local), dtype=np.int64),
        sent.codes,
        seg.sentence_codec,
        qvec,
        (sent.term_ptr, sent.term_ids),
        ids[found].astype(np.int64),
        np.asarray(qidf, np.float64)[found],
        total,
    )


def best_sentences(
    bounds: np.ndarray,
    rows: np.ndarray,
    codes: np.ndarray,
    codec: VectorCodec,
    qvec: np.ndarray,
    sentence_terms: tuple[np.ndarray, np.ndarray],
    keys: np.ndarray,
    weights: np.ndarray,
    total: float,
) -> SentenceFeatures:
    """Per passage ``rows``: best sentence cosine, best idf coverage, the sentence to
    mark, and the sum of the two for each sentence (kernels.sentence_best), over
    packed 6-bit sentence ``codes`` whose sentences hold the term ids
    ``sentence_terms`` (pointers, ids); ``keys``: the question's term ids there,
    ``weights`` their idf."""
    if codec.bits != 6:
        raise IndexCorrupt(f"sentence codes of {codec.bits} bits")
    q = np.ascontiguousarray(qvec, dtype=np.float32)
    step = (codec.high - codec.low) / ((1 << codec.bits) - 1)
    offset = (codec.low + 0.5 * step) * float(q.sum())
    cos, cover, best, flat = kernels.sentence_best(
        bounds,
        rows,
        codes,
        q,
        step,
        offset,
        sentence_terms[0],
        sentence_terms[1],
        keys,
        weights,
        float(total) if len(keys) else 0.0,
    )
    ends = np.cumsum(bounds[rows + 1] - bounds[rows]).tolist()  # the kernel's order
    starts = [0, *ends[:-1]]
    return SentenceFeatures(
        cos, cover, best, [flat[a:b] for a, b in zip(starts, ends, strict=True)]
    )


class DenseSearch:
    """One question's dense search, split into a task per segment (largest first) that
    any thread calling :meth:`work` takes the next of. A query starts it in a helper
    thread, runs BM25 in its own, then joins in: at 1M passages the dense half is
    ~13 ms of sign-bit scans and rescoring against BM25's ~4, so finishing it
    together halves the wait. FAISS and the rescoring kernel release the GIL. The
    answer does not depend on who ran what: each segment's top is merged in order."""

    def __init__(
        self,
        snap: Snapshot,
        qvec: np.ndarray,
        depth: int,
        allowed: np.ndarray | None,
        mode: str,
        threads: int = 1,
    ) -> None:
        self.snap, self.qvec, self.depth = snap, qvec, depth
        self.allowed, self.mode, self.threads = allowed, mode, threads
        self.order = sorted(range(len(snap.segments)), key=lambda p: -snap.segments[p].rows)
        self.found: list[np.ndarray | None] = [None] * len(self.order)
        self._next = itertools.count()  # next() on it is atomic: each task is taken once
        self._error: BaseException | None = None

    def work(self) -> None:
        """Run tasks until none is left (a failure is kept for :meth:`result`)."""
        vectors.set_dense_threads(self.threads)  # FAISS's pool size is per calling thread
        while (i := next(self._next)) < len(self.order):
            try:
                self.found[i] = self._segment(self.order[i])
            except BaseException as exc:  # noqa: BLE001 (re-raised by result)
                self._error = exc

    def _segment(self, pos: int) -> np.ndarray:
        snap, seg = self.snap, self.snap.segments[pos]
        base = int(snap.bases[pos])
        if self.allowed is not None:
            lo, hi = np.searchsorted(self.allowed, [base, base + seg.rows])
            local = self.allowed[lo:hi] - base
            if len(local) == 0:
                return np.zeros(0, np.int64)
            _, rows = seg.vectors.search(self.qvec, self.depth, local)
        else:
            deleted, bits = snap.deletions[pos]
            _, rows = seg.vectors.search(self.qvec, self.depth, None, deleted, bits, self.mode)
        return rows + base

    def result(self) -> np.ndarray:
        """The global top rows; call once every :meth:`work` has returned."""
        if self._error is not None:
            raise self._error
        if any(f is None for f in self.found):
            raise RuntimeError("DenseSearch.result() before its work was done")
        if not self.found:
            return np.zeros(0, np.int64)
        found = cast(list[np.ndarray], self.found)  # none is None: checked above
        rows = np.concatenate(found)  # rescored exactly: FAISS's order within each only
        return top_rows(self.snap.dense_scores(self.qvec, rows), rows, self.depth, self.snap.ids)


def top_rows(
    scores: np.ndarray, rows: np.ndarray, depth: int, ids_of: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Rows of the ``depth`` best ``scores``, best first; ties broken by passage id,
    so that the answer never depends on how rows are laid out in segments."""
    if len(rows) > depth:
        kth = np.partition(-scores, depth - 1)[depth - 1]
        keep = -scores <= kth
        scores, rows = scores[keep], rows[keep]
    order = np.lexsort((ids_of(rows), -scores))[:depth]
    return rows[order]


SAMPLE_STRIDE = 32  # best_positive's sample: every 32nd row


def best_positive(
    scores: np.ndarray,
    depth: int,
    ids_of: Callable[[np.ndarray], np.ndarray],
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`top_rows` of the rows (``allowed`` ones, or all) whose score is positive.

    Over every row (1M passages: ~480k positive), a sample's ``depth``-th best score
    is a floor the true ``depth``-th best cannot be under, so only the few rows at or
    above it are ranked: two cheap vectorised passes instead of selecting among all
    the positive rows (3 ms there)."""
    if allowed is not None:
        pool = allowed[scores[allowed] > 0]
        return top_rows(scores[pool], pool, depth, ids_of)
    floor = 0.0
    sample = scores[::SAMPLE_STRIDE]
    if depth > 0 and len(sample) > depth:
        floor = float(np.partition(sample, len(sample) - depth)[len(sample) - depth])
    pool = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
    return top_rows(scores[pool], pool, depth, ids_of)
