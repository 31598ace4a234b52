"""The search service: the one library object the CLI, HTML page and JSON API call.

It owns the embedder and the loaded index generation, switches to a newer
generation when ``CURRENT`` changes (requests already running keep the one
they started with), validates every query parameter, and turns a question
into ranked, de-duplicated, cited hits.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .chunk import normalise
from .config import Settings
from .dense import set_dense_threads
from .embed import Embedder, load_embedder
from .errors import BadRequest, IndexUnavailable, NotFound
from .fuse import fuse, ranks_of
from .index import (
    BuildReport,
    LoadedIndex,
    build_index,
    current_generation_path,
    load_index,
    stale_sources,
)
from .ingest import iso_date
from .records import Hit, Passage
from .sparse import tokenize, tokenize_spans

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Query:
    """A validated query."""

    question: str
    k: int
    sources: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None


@dataclass(frozen=True)
class SearchResult:
    query: Query
    answer_found: bool
    hits: list[Hit]
    took_ms: float
    index: dict

    def to_dict(self) -> dict:
        return {
            "ok": True,
            "question": self.query.question,
            "answer_found": self.answer_found,
            "took_ms": round(self.took_ms, 2),
            "index": self.index,
            "results": [h.to_dict() for h in self.hits],
        }


@dataclass(frozen=True)
class Candidates:
    """The union of both retrievers' top lists (plus their groups' representatives),
    with every candidate's exact features."""

    rows: np.ndarray
    features: np.ndarray  # (len(FEATURES), candidates): bm25, dense, sentence, coverage
    bm25_rank: np.ndarray  # 1-based rank in BM25's top list, 0 if absent
    dense_rank: np.ndarray
    best_sentence: np.ndarray  # per candidate: index of the sentence to mark

    def fused(self, method: str, weights: tuple[float, ...], rrf_k: int = 60) -> np.ndarray:
        return fuse(self.features, weights, method, [self.bm25_rank, self.dense_rank], rrf_k)

    def explain(self, i: int) -> dict:
        """Why candidate ``i`` ranked: each feature, and its rank in each retriever."""
        bm25, dense, sentence, coverage = (round(float(x), 6) for x in self.features[:, i])
        return {
            "bm25_score": bm25,
            "bm25_rank": int(self.bm25_rank[i]) or None,
            "dense_score": dense,
            "dense_rank": int(self.dense_rank[i]) or None,
            "sentence_score": sentence,
            "term_coverage": coverage,
        }


def retrieve(
    index: LoadedIndex,
    terms: list[str],
    qvec: np.ndarray,
    depth: int,
    allowed: np.ndarray | None = None,
) -> Candidates:
    """Top ``depth`` of BM25 and of FAISS (within ``allowed`` rows), scored exactly by all."""
    n = len(index.passages)
    qcols, qcounts = index.bm25.query_vector(terms)
    bm_all = index.bm25.scores_of(qcols, qcounts)
    if allowed is None:
        sparse_top = _top(bm_all, np.arange(n), depth, positive=True)
    else:
        sparse_top = _top(bm_all[allowed], allowed, depth, positive=True)
    _, dense_top = index.dense.search(qvec, depth, allowed)
    rows = np.union1d(sparse_top, dense_top)
    reps = [index.row_of[index.passages[r].group] for r in rows.tolist()]
    if allowed is not None:
        reps = np.intersect1d(reps, allowed)
    rows = np.union1d(rows, reps).astype(np.int64)
    qidf = np.maximum(index.bm25.idf[qcols], 0.0) if len(qcols) else np.zeros(0)
    unseen = len(set(terms)) - len(qcols)  # terms no passage has: as rare as can be
    total = float(qidf.sum()) + unseen * float(np.log((n + 0.5) / 0.5))
    sentence, coverage, best = index.sentences.features(rows, qvec, qcols, qidf, total)
    features = np.stack([bm_all[rows], index.dense.scores_for(qvec, rows), sentence, coverage])
    return Candidates(
        rows=rows,
        features=features,
        bm25_rank=ranks_of(rows, sparse_top),
        dense_rank=ranks_of(rows, dense_top),
        best_sentence=best,
    )


def _top(scores: np.ndarray, rows: np.ndarray, depth: int, positive: bool) -> np.ndarray:
    """Rows of the ``depth`` best ``scores`` (aligned with ``rows``), best first."""
    if positive:
        keep = scores > 0
        scores, rows = scores[keep], rows[keep]
    if len(rows) > depth:
        part = np.argpartition(-scores, depth - 1)[:depth]
        scores, rows = scores[part], rows[part]
    order = np.lexsort((rows, -scores))
    return rows[order]


class SearchService:
    """Question in, cited passages out. Thread-safe; one per process."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        static_index: LoadedIndex | None = None,
    ) -> None:
        self.settings = settings
        # Threads must fit the free cores: FAISS's OpenMP pool like torch's.
        set_dense_threads(settings.torch_threads)
        self._embedder = embedder
        self._index: LoadedIndex | None = static_index
        self._static = static_index is not None  # an in-memory index: never reloaded
        self._rejected: Path | None = None  # a generation that failed to load: not retried
        self._lock = threading.Lock()

    # --- resources -------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = load_embedder(
                        self.settings.model_name, self.settings.torch_threads
                    )
        return self._embedder

    def index(self) -> LoadedIndex:
        """The newest generation; reloaded when ``CURRENT`` points elsewhere."""
        if self._static:
            return self._index
        current = current_generation_path(self.settings.index_dir)
        loaded = self._index
        if loaded is not None and current in (loaded.path, self._rejected):
            return loaded
        with self._lock:
            current = current_generation_path(self.settings.index_dir)
            if self._index is not None and current in (self._index.path, self._rejected):
                return self._index
            try:
                fresh = load_index(self.settings)
                self._check_model(fresh)
            except IndexUnavailable as exc:
                if self._index is None:
                    raise
                self._rejected = current
                log.error(
                    "generation %s unusable (%s); still serving %s",
                    current,
                    exc.message,
                    self._index.path,
                )
                return self._index
            if self._index is not None:
                log.info("switched to generation %d", fresh.generation)
            self._index = fresh
            return self._index

    def _check_model(self, index: LoadedIndex) -> None:
        """The index must have been built by the model this service embeds with."""
        built = index.manifest["model"]
        if self._embedder is None:
            return
        if (built["name"], built["weights_sha256"]) != (
            self._embedder.name,
            self._embedder.weights_sha256,
        ):
            raise IndexUnavailable(
                f"index was built with model {built['name']!r} (weights "
                f"{built['weights_sha256'][:12]}), the service runs {self._embedder.name!r} "
                f"(weights {self._embedder.weights_sha256[:12]}): run `karabakh-qa index --full`"
            )

    def build(self, full: bool = False, wait: bool = False, progress=None) -> BuildReport:
        """Build a new generation from the articles folder (incremental unless ``full``)."""
        return build_index(self.settings, self.embedder, full=full, wait=wait, progress=progress)

    def ensure_index(self) -> BuildReport | None:
        """Build the index if there is none; used by ``serve``."""
        if current_generation_path(self.settings.index_dir) is None:
            return self.build(wait=True)
        return None

    def stale(self) -> list[str]:
        return stale_sources(self.index(), self.settings.articles_dir)

    def index_info(self, index: LoadedIndex | None = None) -> dict:
        index = index or self.index()
        m = index.manifest
        return {
            "generation": index.generation,
            "articles": m["counts"]["articles"],
            "passages": m["counts"]["passages"],
            "model": m["model"]["name"],
            "built_at": m["built_at"],
        }

    # --- validation --------------------------------------------------------------

    def validate(
        self,
        question: object,
        k: object = None,
        sources: object = None,
        since: object = None,
        until: object = None,
        index: LoadedIndex | None = None,
    ) -> Query:
        """Check every parameter; raise :class:`BadRequest` saying what is allowed."""
        s = self.settings
        if not isinstance(question, str) or not question.strip():
            raise BadRequest("question is required: give 1 to 1000 characters of text")
        question = question.strip()
        if len(question) > s.max_question_chars:
            raise BadRequest(
                f"question is {len(question)} characters; at most {s.max_question_chars} allowed"
            )
        if k is None or k == "":
            k = s.default_k
        if isinstance(k, str) and k.strip().lstrip("-").isdigit():
            k = int(k)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= s.max_k:
            raise BadRequest(f"k must be a whole number from 1 to {s.max_k}, got {k!r}")
        if sources is None or sources == "":
            sources = ()
        if isinstance(sources, str):
            sources = (sources,)
        if not isinstance(sources, list | tuple) or not all(isinstance(x, str) for x in sources):
            raise BadRequest("sources must be a list of article file names")
        sources = tuple(x for x in sources if x)
        known = (index or self.index()).articles
        unknown = [x for x in sources if x not in known]
        if unknown:
            names = ", ".join(sorted(known)[:20]) + (" …" if len(known) > 20 else "")
            raise BadRequest(f"unknown source {unknown[0]!r}; indexed sources are: {names}")
        dates = []
        for name, value in (("since", since), ("until", until)):
            if value is None or value == "":
                dates.append(None)
                continue
            parsed = iso_date(value) if isinstance(value, str) else None
            if parsed is None or parsed != value.strip():
                raise BadRequest(f"{name} must be a date as YYYY-MM-DD, got {value!r}")
            dates.append(parsed)
        if dates[0] and dates[1] and dates[0] > dates[1]:
            raise BadRequest(f"since ({dates[0]}) is after until ({dates[1]})")
        return Query(question, k, sources, dates[0], dates[1])

    # --- search ------------------------------------------------------------------

    def _allowed(self, index: LoadedIndex, q: Query) -> np.ndarray | None:
        if not (q.sources or q.since or q.until):
            return None
        return index.rows_where(q.sources, q.since, q.until)

    def search(
        self,
        question: object,
        k: object = None,
        sources: object = None,
        since: object = None,
        until: object = None,
    ) -> SearchResult:
        """Ranked, de-duplicated, cited hits for ``question`` (see README "Search")."""
        started = time.perf_counter()
        index = self.index()
        q = self.validate(question, k, sources, since, until, index)
        hits, found = self._rank(index, q)
        took = (time.perf_counter() - started) * 1000
        return SearchResult(q, found, hits, took, self.index_info(index))

    def _rank(self, index: LoadedIndex, q: Query) -> tuple[list[Hit], bool]:
        s = self.settings
        allowed = self._allowed(index, q)
        if not index.passages or (allowed is not None and len(allowed) == 0):
            return [], False
        terms = tokenize(q.question)
        qvec = self.embedder.encode([q.question])[0]
        cands = retrieve(index, terms, qvec, s.depth, allowed)
        fused = cands.fused(s.fusion, s.fusion_weights, s.rrf_k)
        order = np.lexsort((cands.rows, -fused))
        allowed_set = None if allowed is None else set(allowed.tolist())
        pos = {int(c): i for i, c in enumerate(cands.rows)}
        hits: list[Hit] = []
        seen: set[str] = set()
        query_terms = set(terms)
        for i in order:
            row = int(cands.rows[i])
            group = index.passages[row].group
            if group in seen:
                continue
            seen.add(group)
            rep = index.row_of.get(group, row)
            shown = rep if allowed_set is None or rep in allowed_set else row
            j = pos[shown]
            passage = index.passages[shown]
            hits.append(
                Hit(
                    rank=len(hits) + 1,
                    score=float(fused[i]),
                    passage=passage,
                    also_in=self._copies(index, group, shown),
                    highlights={
                        "sentence": index.sentences.span(shown, int(cands.best_sentence[j])),
                        "terms": matched_terms(passage.text, query_terms),
                    },
                    explain=cands.explain(j),
                )
            )
            if len(hits) == q.k:
                break
        return hits, self._answer_found(hits)

    def _copies(self, index: LoadedIndex, group: str, shown: int) -> tuple[dict, ...]:
        key = normalise(index.passages[shown].text)
        out = []
        for row in index.groups[group]:
            if row == shown:
                continue
            p = index.passages[row]
            out.append(
                {
                    "id": p.id,
                    "source": p.source,
                    "paragraph": p.paragraph,
                    "date": p.date,
                    "date_source": p.date_source,
                    "start": p.start,
                    "end": p.end,
                    "identical": normalise(p.text) == key,
                }
            )
        return tuple(sorted(out, key=lambda c: (c["source"], c["paragraph"])))

    def _answer_found(self, hits: list[Hit]) -> bool:
        """Convincing when a top-3 passage is semantically close, or close enough and
        has a sentence covering most of the question's (idf-weighted) terms.
        Thresholds are calibrated on tests/data/seed_dev.json (README, "No answer")."""
        s = self.settings
        for h in hits[:3]:
            dense, cover = h.explain["dense_score"], h.explain["term_coverage"]
            if dense >= s.min_dense_score or (
                dense >= s.min_dense_with_terms and cover >= s.min_term_coverage
            ):
                return True
        return False

    # --- articles and health -------------------------------------------------------

    def article(self, source: str) -> tuple[dict, list[Passage]]:
        """An indexed article's metadata and cleaned passages, or NotFound."""
        index = self.index()
        meta = index.articles.get(source)
        if meta is None:
            raise NotFound(f"no indexed article called {source!r}")
        return meta, [index.passages[i] for i in index.by_source[source]]

    def health(self) -> dict:
        index = self.index()
        return {"ok": True, **self.index_info(index), "skipped": len(index.manifest["skipped"])}


def matched_terms(text: str, terms: set[str]) -> list[list[int]]:
    """Offsets within ``text`` of every token whose term is in the query."""
    return [[s, e] for t, s, e in tokenize_spans(text) if t in terms]
