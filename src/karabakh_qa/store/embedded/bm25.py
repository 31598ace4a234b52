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

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np

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
    for i, lo, hi in zip(where.tolist(), starts.tolist(), ends.tolist(), strict=True):
        if deleted is not None and len(deleted) * SEARCH_DELETED_BELOW < hi - lo:
            docs = docs_all[lo:hi]
            at = np.minimum(np.searchsorted(docs, deleted), len(docs) - 1)
            out[i] = (hi - lo) - int((docs[at] == deleted).sum())
        else:
            out[i] = int(live[docs_all[lo:hi]].sum())
    return out


@dataclass(frozen=True)
class Bm25Query:
    terms: list[str]  # distinct, in first-seen order
    counts: np.ndarray
    idf: np.ndarray
    df: np.ndarray  # live document frequency (0: no passage has the term)


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

    def _terms(self, seg: Segment, q: Bm25Query) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """(docs, tf, weight) of each query term ``seg`` holds, in query order."""
        ids, found = seg.term_range(q.terms)
        weight = q.counts * q.idf
        return [
            (*seg.postings(int(ids[i])), float(weight[i]))
            for i in np.flatnonzero(found & (q.idf != 0))
        ]

    def _part(self, tf: np.ndarray, lengths: np.ndarray, weight: float) -> np.ndarray:
        """One term's share of the score: rank-bm25's formula, evaluated in one place
        so that every path adds bit-identical numbers."""
        k1, b = self.params.k1, self.params.b
        tf = tf.astype(np.float64)
        norm = k1 * (1 - b + b * lengths / self.avgdl)
        return weight * (tf * (k1 + 1) / (tf + norm))

    def scores(self, q: Bm25Query) -> np.ndarray:
        """BM25 score of every global row (deleted rows score 0)."""
        total = int(self.bases[-1]) if len(self.bases) else 0
        out = np.zeros(total, dtype=np.float64)
        if not q.terms or self.n == 0:
            return out
        for seg, base, live in zip(self.segments, self.bases[:-1], self.live, strict=True):
            lengths = seg.a["lengths"]
            for docs, tf, weight in self._terms(seg, q):
                out[base + docs] += self._part(tf, lengths[docs], weight)
            if live is not None:
                out[base : base + seg.rows][~live] = 0.0
        return out

    def scores_at(self, q: Bm25Query, rows: np.ndarray) -> np.ndarray:
        """BM25 scores of some global rows, equal to ``scores(q)[rows]`` bit for bit
        (terms added in the same order), by binary search in the postings."""
        rows = np.asarray(rows, np.int64)
        out = np.zeros(len(rows), dtype=np.float64)
        if not q.terms or self.n == 0 or len(rows) == 0:
            return out
        where = np.searchsorted(self.bases, rows, side="right") - 1
        for pos in np.unique(where).tolist():
            sel = np.flatnonzero(where == pos)
            local = rows[sel] - int(self.bases[pos])
            seg, live = self.segments[pos], self.live[pos]
            out[sel] = self._local_scores(seg, self._terms(seg, q), local)
            if live is not None:
                out[sel[~live[local]]] = 0.0
        return out

    def _local_scores(self, seg: Segment, terms: list, local: np.ndarray, acc=None) -> np.ndarray:
        """Scores of ``local`` rows (sorted or not) from ``terms``, added to ``acc``."""
        acc = np.zeros(len(local)) if acc is None else acc
        lengths = seg.a["lengths"]
        for docs, tf, weight in terms:
            at = np.minimum(np.searchsorted(docs, local), len(docs) - 1)
            hit = np.flatnonzero(docs[at] == local)
            acc[hit] += self._part(tf[at[hit]], lengths[local[hit]], weight)
        return acc

    def candidates(self, q: Bm25Query, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """Global rows that include the ``depth`` best positive scores (ties kept), and
        their scores as ``scores(q)`` gives them, without scoring every row.

        MaxScore (Turtle & Flood 1995; Lucene's MaxScoreBulkScorer): each term's share
        has an upper bound; once ``theta``, a score that ``depth`` passages reach, is
        above the summed bounds of the weakest terms, a passage holding only those
        terms cannot enter the top, so only passages holding a stronger ("essential")
        term are scored, and the weak terms are looked up for those that still can."""
        found: list[np.ndarray] = []
        pooled = np.zeros(0)
        for seg, base, live in zip(self.segments, self.bases[:-1], self.live, strict=True):
            terms = self._terms(seg, q)
            if not terms:
                continue
            theta = -np.partition(-pooled, depth - 1)[depth - 1] if len(pooled) >= depth else 0.0
            local, scores = self._segment_candidates(seg, live, terms, depth, float(theta))
            found.append(local + int(base))
            pooled = np.concatenate([pooled, scores])
        if not found:
            return np.zeros(0, np.int64), np.zeros(0)
        rows = np.concatenate(found)
        scores = self.scores_at(q, rows)  # the canonical sums, bit-identical to scores()
        keep = scores > 0
        return rows[keep], scores[keep]

    def _segment_candidates(
        self, seg: Segment, live: np.ndarray | None, terms: list, depth: int, theta: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Local rows of ``seg`` that can still reach the top, with their scores."""
        k1, b = self.params.k1, self.params.b
        weight = np.array([w for _, _, w in terms])
        tf_max = np.array([float(tf.max()) for _, tf, _ in terms])
        shortest = max(seg.shortest, 1)
        bound = weight * tf_max * (k1 + 1) / (tf_max + k1 * (1 - b + b * shortest / self.avgdl))
        theta = max(theta, self._first_threshold(seg, live, terms, bound, depth))
        slack = theta * (1 - 1e-9)  # pruning tolerates the rounding of the sums
        order = np.argsort(bound, kind="stable")
        prefix = np.cumsum(bound[order])
        weak = int(np.searchsorted(prefix, slack, side="left"))  # prefix[:weak] < theta
        acc = np.zeros(seg.rows)
        lengths = seg.a["lengths"]
        for i in order[weak:].tolist():
            docs, tf, w = terms[i]
            acc[docs] += self._part(tf, lengths[docs], w)
        cand = np.flatnonzero(acc)
        if live is not None:
            cand = cand[live[cand]]
        if weak:
            cand = cand[acc[cand] + prefix[weak - 1] >= slack]
        full = self._local_scores(seg, [terms[i] for i in order[:weak]], cand, acc[cand])
        if len(cand) > depth:  # this segment's own top (ties kept) holds its share
            kth = np.partition(full, len(full) - depth)[len(full) - depth]
            keep = full >= kth * (1 - 1e-9)
            cand, full = cand[keep], full[keep]
        return cand, full

    def _first_threshold(
        self, seg: Segment, live: np.ndarray | None, terms: list, bound: np.ndarray, depth: int
    ) -> float:
        """A score at least ``depth`` live passages reach (0: none known): the depth-th
        best full score among the passages of the strongest terms."""
        picked: list[np.ndarray] = []
        count = 0
        for i in np.argsort(-bound, kind="stable").tolist():
            picked.append(terms[i][0])
            count += len(terms[i][0])
            if count >= depth:
                break
        local = np.unique(np.concatenate(picked))
        if live is not None:
            local = local[live[local]]
        if len(local) < depth:
            return 0.0
        full = self._local_scores(seg, terms, local)
        return float(np.partition(full, len(full) - depth)[len(full) - depth])


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
