"""Stage 1 of an answer: retrieve. The candidates of both retrievers, each scored
exactly by every feature.

BM25 and the dense index each give their top ``depth`` rows (within the rows the
filters allow); their union, plus each candidate's near-duplicate group
representative, is scored by every feature (BM25, passage cosine, best-sentence
cosine and term coverage), so that a passage only one retriever found is not
punished by a missing value when the features are fused (:mod:`.fuse`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..store.embedded.bm25 import Bm25Query
from ..store.embedded.search import DenseSearch, best_positive
from ..store.protocol import StoreView
from .fuse import fuse, ranks_of
from .query import Query
from .spans import Span

PARALLEL_MIN_ROWS = 50_000  # from here a query runs dense search beside BM25


def allowed_rows(index: StoreView, q: Query) -> np.ndarray | None:
    """Rows the filters allow (None: every row); with a date filter, undated rows
    too (collapse counts them as hidden, or shows them with ``include_undated``)."""
    if not (q.sources or q.since or q.until):
        return None
    return index.rows_where(q.sources, q.since, q.until, undated=True)


@dataclass(frozen=True)
class Candidates:
    """The union of both retrievers' top lists (plus their groups' representatives),
    ordered by passage id, with every candidate's exact features."""

    rows: np.ndarray
    reps: np.ndarray  # the global row of each candidate's group representative
    ids: np.ndarray  # passage ids (S16), the tie-break of every ordering
    features: np.ndarray  # (len(FEATURES), candidates): bm25, dense, sentence, coverage
    bm25_rank: np.ndarray  # 1-based rank in BM25's top list, 0 if absent
    dense_rank: np.ndarray
    best_sentence: np.ndarray  # per candidate: index of the sentence to mark
    sentence_scores: tuple[np.ndarray, ...] = ()  # per candidate: each sentence's
    # cosine + coverage (the answer's sentence may be another of its best few)

    def fused(self, method: str, weights: tuple[float, ...], rrf_k: int = 60) -> np.ndarray:
        return fuse(self.features, weights, method, [self.bm25_rank, self.dense_rank], rrf_k)

    def order(self, fused: np.ndarray) -> np.ndarray:
        """Candidate positions, best first; equal scores by passage id."""
        return np.lexsort((self.ids, -fused))

    def explain(self, i: int, span: Span | None = None) -> dict[str, Any]:
        """Why candidate ``i`` ranked: each feature, and its rank in each retriever; and
        on one 0-1 scale ("parts"), with its answer ``span``'s fit (1: the wanted type
        beside the question's words)."""
        bm25, dense, sentence, coverage = (round(float(x), 6) for x in self.features[:, i])
        top_bm25 = float(self.features[0].max()) if self.features.shape[1] else 0.0
        return {
            "bm25_score": bm25,
            "bm25_rank": int(self.bm25_rank[i]) or None,
            "dense_score": dense,
            "dense_rank": int(self.dense_rank[i]) or None,
            "sentence_score": sentence,
            "term_coverage": coverage,
            # the same evidence on one 0-1 scale, for people (the page's "why")
            "parts": {
                "lexical": round(bm25 / top_bm25, 4) if top_bm25 > 0 else 0.0,
                "semantic": round(min(1.0, max(0.0, dense)), 4),
                "sentence": round(min(1.0, max(0.0, sentence)), 4),
                "terms": round(min(1.0, max(0.0, coverage)), 4),
                "answer": round(min(1.0, span.score / 2), 4) if span else 0.0,
            },
        }


def retrieve(
    index: StoreView,
    terms: list[str],
    qvec: np.ndarray | Callable[[], np.ndarray],
    depth: int,
    allowed: np.ndarray | None = None,
    dense: str = "exact",
    helpers: Executor | None = None,
    threads: int = 1,
    bm25_query: Bm25Query | None = None,
) -> Candidates:
    """Top ``depth`` of BM25 and of the dense index (within ``allowed`` rows; ``dense``:
    exact, ann or auto), scored exactly by all features.

    ``qvec`` is the question's vector, or a function that embeds it. With
    ``helpers``, a helper thread embeds the question and starts the dense search
    while this one ranks BM25 (which needs no vector), then both finish the dense
    search (:class:`DenseSearch`; ONNX Runtime, FAISS and the compiled loops
    release the GIL). At 1M passages with the real question model that overlaps
    the encode (~4-6 ms) with BM25 instead of running it first."""
    given = qvec
    vector: Callable[[], np.ndarray] = given if callable(given) else (lambda: given)
    started: Future[tuple[np.ndarray, DenseSearch]] = (
        Future()
    )  # the helper's (vector, dense search), once it has them

    def embed_and_search() -> None:
        try:
            found = vector()
            search = index.dense_search(found, depth, allowed, dense, threads)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the query's thread)
            started.set_exception(exc)
            return
        started.set_result((found, search))
        search.work()

    pending = helpers.submit(embed_and_search) if helpers is not None else None
    q = bm25_query if bm25_query is not None else index.bm25.query(terms)
    bm_all = index.bm25.scores(q)
    sparse_top = best_positive(bm_all, depth, index.ids, allowed)
    if pending is None:
        embed_and_search()
    found, search = started.result()
    search.work()  # joins the helper on what is left of the dense search
    if pending is not None:
        pending.result()
    dense_top = search.result()
    rows = np.union1d(sparse_top, dense_top)
    reps = index.groups.reps_of(rows)
    if allowed is not None:
        reps = np.intersect1d(reps, allowed)
    rows = np.union1d(rows, reps).astype(np.int64)
    ids = index.ids(rows)
    by_id = np.argsort(ids, kind="stable")
    rows, ids = rows[by_id], ids[by_id]
    known = q.df > 0
    qidf = np.maximum(q.idf[known], 0.0)
    unseen = int((~known).sum())  # terms no passage has: as rare as can be
    n = index.bm25.n
    total = float(qidf.sum()) + unseen * float(np.log((n + 0.5) / 0.5))
    known_terms = [t for t, k in zip(q.terms, known.tolist(), strict=True) if k]
    sent = index.sentence_features(rows, found, known_terms, qidf, total)
    features = np.stack([bm_all[rows], index.dense_scores(found, rows), sent.cosine, sent.coverage])
    return Candidates(
        rows=rows,
        reps=index.groups.reps_of(rows),
        ids=ids,
        features=features,
        bm25_rank=ranks_of(rows, sparse_top),
        dense_rank=ranks_of(rows, dense_top),
        best_sentence=sent.best,
        sentence_scores=tuple(sent.each),
    )
