"""BM25 over segments: raw postings per segment, global statistics at query time.

Segments store raw term frequencies and lengths, never idf. The statistics of
rank-bm25's ``BM25Okapi`` are those of the *live* passages of the whole
generation: N and the total length are kept in the manifest, a term's document
frequency is counted from its postings minus deleted rows when a query needs
it, and the epsilon floor's average idf (a mean over the whole vocabulary)
comes from a histogram of document frequencies that every build updates for
the terms it touches. Scores therefore equal ``BM25Okapi.get_scores`` over the
live passages (tests/store/test_bm25.py, across segments and deletions).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ...dedup import range_positions
from ...pacing import no_pause
from . import kernels
from .manifest import Bm25Params
from .segment import Segment


def postings(docs: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sorted terms, term pointers, rows, term frequencies) of tokenised ``docs``."""
    n = len(docs)
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(t, len(vocab)) for d in docs for t in d), np.int64)
    if not vocab:
        return np.zeros(0, "U1"), np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0)
    terms = np.array(list(vocab))
    order = np.argsort(terms, kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    rows = np.repeat(np.arange(n, dtype=np.int64), [len(d) for d in docs])
    keys, tf = np.unique(rank[ids] * n + rows, return_counts=True)
    term_of = keys // n
    ptr = np.searchsorted(term_of, np.arange(len(terms) + 1)).astype(np.int64)
    return terms[order], ptr, (keys % n).astype(np.int32), np.minimum(tf, 65535).astype(np.uint16)


def idf_of(n: int, df: np.ndarray) -> np.ndarray:
    """rank-bm25's raw idf, log(N - df + 0.5) - log(df + 0.5), before the floor."""
    df = np.asarray(df, dtype=np.float64)
    return np.log(n - df + 0.5) - np.log(df + 0.5)


def average_idf(n: int, hist: np.ndarray) -> float:
    """Mean raw idf over the vocabulary, from a (df, number of terms) histogram."""
    if len(hist) == 0 or n == 0:
        return 0.0
    df, count = hist[:, 0], hist[:, 1].astype(np.float64)
    return float((idf_of(n, df) * count).sum() / count.sum())


def update_histogram(hist: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """The histogram after some terms' document frequencies moved from ``old`` to ``new``."""
    old, new = np.asarray(old, np.int64), np.asarray(new, np.int64)
    old, new = old[old > 0], new[new > 0]
    df = np.concatenate([hist[:, 0], old, new])
    delta = np.concatenate([hist[:, 1], -np.ones(len(old), np.int64), np.ones(len(new), np.int64)])
    values, where = np.unique(df, return_inverse=True)
    counts = np.bincount(where, weights=delta, minlength=len(values)).round().astype(np.int64)
    keep = counts > 0
    return np.stack([values[keep], counts[keep]], axis=1).astype(np.int64).reshape(-1, 2)


SEARCH_DELETED_BELOW = 8  # deleted rows per postings entry below which they are looked up


def segment_df(
    seg: Segment, live: np.ndarray | None, terms: list[str], deleted: np.ndarray | None = None
) -> np.ndarray:
    """Live document frequency of ``terms`` in one segment (``live`` None: all rows).

    With ``deleted`` (the sorted deleted rows) a term's postings are searched for
    the deleted rows when those are few, so that the cost follows the deletions,
    not the length of a common term's postings list."""
    ids, found = seg.term_range(terms)
    out = np.zeros(len(terms), dtype=np.int64)
    ptr = seg.a["postings_ptr"]
    where = np.flatnonzero(found)
    starts, ends = ptr[ids[where]], ptr[ids[where] + 1]
    out[where] = ends - starts
    if live is None:
        return out
    docs_all = seg.a["postings_docs"]
    gone = np.zeros(0, np.int64) if deleted is None else deleted
    searched = (len(gone) * SEARCH_DELETED_BELOW < ends - starts) & (deleted is not None)
    counted = ~searched
    out[where[counted]] = _live_counts(docs_all, live, starts[counted], ends[counted])
    lo, hi = starts[searched], ends[searched]
    out[where[searched]] = (hi - lo) - _found_in_ranges(docs_all, lo, hi, gone)
    return out


SEARCH_PAIRS = 1 << 20  # (range, value) pairs one vectorised binary search takes at most


def _found_in_ranges(
    docs: np.ndarray, starts: np.ndarray, ends: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """For each sorted range ``docs[starts[i]:ends[i]]``: how many of ``values`` it
    holds. One binary search per (range, value) pair, all pairs a step at a time in
    numpy (a Python loop of np.searchsorted, a range at a time, cost a 1M build ~35 ms)."""
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    out = np.zeros(len(starts), np.int64)
    if not len(values) or not len(docs):
        return out
    per = max(1, SEARCH_PAIRS // len(values))  # ranges a pass
    for first in range(0, len(starts), per):
        end = np.repeat(ends[first : first + per], len(values))
        lo = np.repeat(starts[first : first + per], len(values))
        hi = end.copy()
        v = np.tile(np.asarray(values, docs.dtype), len(lo) // len(values))
        while (active := lo < hi).any():  # lo: the first place whose doc is >= v
            mid = (lo + hi) // 2
            right = active & (docs[np.minimum(mid, len(docs) - 1)] < v)
            lo = np.where(right, mid + 1, lo)
            hi = np.where(active & ~right, mid, hi)
        hit = (lo < end) & (docs[np.minimum(lo, len(docs) - 1)] == v)
        out[first : first + per] = hit.reshape(-1, len(values)).sum(axis=1)
    return out


GATHER_POSTINGS = 1 << 22  # postings whose live bits one numpy pass gathers at most


def _live_counts(
    docs: np.ndarray, live: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """For each postings range ``starts[i]:ends[i]`` of ``docs``: how many of its rows
    are live, in a few numpy passes instead of one Python step a term (a build's
    new article asks for ~150 terms in each segment)."""
    out = np.zeros(len(starts), np.int64)
    sizes = np.asarray(ends, np.int64) - starts
    done = np.cumsum(sizes)  # postings up to and with each range
    first = 0
    while first < len(starts):
        before = int(done[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(done, before + GATHER_POSTINGS)))
        n = sizes[first:last]
        alive = live[docs[range_positions(starts[first:last], n)]]
        owner = np.repeat(np.arange(len(n)), n)
        out[first:last] = np.bincount(owner, weights=alive, minlength=len(n)).astype(np.int64)
        first = last
    return out


@dataclass(frozen=True)
class Bm25Query:
    terms: list[str]  # distinct, in first-seen order
    counts: np.ndarray
    idf: np.ndarray
    df: np.ndarray  # live document frequency (0: no passage has the term)


SATURATION_CACHE_MIN = 10_000  # postings from which a term's saturation is kept
SATURATION_CACHE_BYTES = 128 << 20  # per generation view, least recently used first out
WARM_BYTES = 32 << 20  # of it recomputed for a new generation before it serves (Bm25View.warm)


@dataclass
class Bm25View:
    """The BM25 statistics of one generation, and scoring over its segments."""

    params: Bm25Params
    segments: list[Segment]
    bases: np.ndarray  # global row of each segment's first row
    live: list[np.ndarray | None]  # per segment: live-row mask, None when nothing is deleted
    n: int  # live passages
    total_length: int
    hist: np.ndarray  # (k, 2) df -> number of terms
    _cache: OrderedDict[tuple[int, int], np.ndarray] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _cached_bytes: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def avgdl(self) -> float:
        return self.total_length / self.n if self.n else 0.0

    @cached_property
    def deleted(self) -> list[np.ndarray | None]:
        """Per segment: its deleted rows, sorted (None when it has none)."""
        return [None if live is None else np.flatnonzero(~live) for live in self.live]

    def df(self, terms: list[str]) -> np.ndarray:
        """Live document frequency of each term over the generation."""
        out = np.zeros(len(terms), dtype=np.int64)
        for seg, live, gone in zip(self.segments, self.live, self.deleted, strict=True):
            out += segment_df(seg, live, terms, gone)
        return out

    def idf(self, terms: list[str], df: np.ndarray | None = None) -> np.ndarray:
        """rank-bm25's idf of each term (0 for a term no live passage has)."""
        df = self.df(terms) if df is None else df
        raw = idf_of(self.n, df)
        if (raw < 0).any():
            eps = self.params.epsilon * average_idf(self.n, self.hist)
            raw = np.where(raw < 0, eps, raw)
        return np.where(df > 0, raw, 0.0)

    def query(self, terms: list[str]) -> Bm25Query:
        """Distinct query terms (first-seen order), their counts, idf and document frequency."""
        counts = Counter(terms)
        distinct = list(counts)
        df = self.df(distinct)
        return Bm25Query(
            distinct,
            np.array([counts[t] for t in distinct], np.float64),
            self.idf(distinct, df),
            df,
        )

    def scores(self, q: Bm25Query) -> np.ndarray:
        """BM25 score of every global row (deleted rows score 0)."""
        distinct, counts, idf = q.terms, q.counts, q.idf
        total = int(self.bases[-1]) if len(self.bases) else 0
        out = np.zeros(total, dtype=np.float64)
        if not distinct or self.n == 0:
            return out
        for pos, (seg, base, live) in enumerate(
            zip(self.segments, self.bases[:-1], self.live, strict=True)
        ):
            ids, found = seg.term_range(distinct)
            mine = out[base : base + seg.rows]  # a view: local rows index it
            for i in np.flatnonzero(found & (idf != 0)):
                self._add(pos, int(ids[i]), mine, float(counts[i] * idf[i]))
            if live is not None:
                mine[~live] = 0.0
        return out

    def _add(self, pos: int, term_id: int, out: np.ndarray, weight: float) -> None:
        """``out[docs] += weight * saturation`` for one term's postings in segment ``pos``
        (:mod:`.kernels`). Long lists keep their saturation (LRU,
        ``SATURATION_CACHE_BYTES``): their terms come back in query after query, and
        a sequential read of it beats gathering every posting's length again."""
        seg = self.segments[pos]
        docs, tf = seg.postings(term_id)
        if len(docs) < SATURATION_CACHE_MIN:
            k1, b = self.params.k1, self.params.b
            kernels.add_saturated(out, docs, tf, seg.a["lengths"], k1, b, self.avgdl, weight)
        else:
            kernels.add_scores(out, docs, self._saturation(pos, term_id), weight)

    def _saturation(self, pos: int, term_id: int) -> np.ndarray:
        """A long postings list's tf saturation in segment ``pos``, kept as long as
        this generation's view (it depends on avgdl), least recently used first out."""
        key = (pos, term_id)
        with self._lock:
            sat = self._cache.get(key)
            if sat is not None:
                self._cache.move_to_end(key)
                return sat
        seg = self.segments[pos]
        docs, tf = seg.postings(term_id)
        k1, b = self.params.k1, self.params.b
        sat = kernels.saturation(docs, tf, seg.a["lengths"], k1, b, self.avgdl)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = sat
                self._cached_bytes += sat.nbytes
            while self._cached_bytes > SATURATION_CACHE_BYTES:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= old.nbytes
        return sat

    def warm(self, previous: Bm25View, pause: Callable[[], None] = no_pause) -> None:
        """Fill the saturation cache with the lists ``previous`` used most recently (up to
        ``WARM_BYTES``), computed anew for this generation's avgdl (as a searcher warmer does in
        Lucene): the refresher calls it before the switch, so the first queries on a
        new generation do not recompute them (at 1M: 25-31 ms for that first query
        against a 13.5 ms median)."""
        where = {id(seg): pos for pos, seg in enumerate(self.segments)}
        with previous._lock:
            kept = [(key, sat.nbytes) for key, sat in reversed(previous._cache.items())]
        budget = WARM_BYTES  # the most recently used first
        for (old_pos, term_id), nbytes in kept:
            pos = where.get(id(previous.segments[old_pos]))
            if pos is None or nbytes > budget:
                continue
            budget -= nbytes
            self._saturation(pos, term_id)
            pause()

    def retire(self, pause: Callable[[], None] = no_pause) -> None:
        """Free the saturation cache an array at a time, letting other threads run in
        between: dropped at once, 128 MB of arrays hold the GIL for 3-6 ms (in whichever
        query thread let go of the view last). Queries still on this view recompute."""
        while True:
            with self._lock:
                if not self._cache:
                    return
                _, sat = self._cache.popitem(last=False)
                self._cached_bytes -= sat.nbytes
            del sat
            time.sleep(0)
            pause()


def full_statistics(
    params: Bm25Params, segments: list[Segment], live: list[np.ndarray | None]
) -> tuple[int, int, np.ndarray]:
    """(N, total length, df histogram) computed from scratch (repair, checks)."""
    n = total = 0
    dfs: Counter[str] = Counter()
    for seg, mask in zip(segments, live, strict=True):
        lengths = np.asarray(seg.a["lengths"])
        keep = np.ones(seg.rows, bool) if mask is None else mask
        n += int(keep.sum())
        total += int(lengths[keep].sum())
        terms = seg.vocabulary()
        for term, df in zip(terms, segment_df(seg, mask, terms).tolist(), strict=True):
            if df:
                dfs[term] += df
    hist = Counter(dfs.values())
    return n, total, np.array(sorted(hist.items()), dtype=np.int64).reshape(-1, 2)
