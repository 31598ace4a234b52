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

from .chunk import normalise, sentences
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
    """The union of both retrievers' top lists, with every candidate's exact scores."""

    rows: np.ndarray
    bm25: np.ndarray  # exact BM25 score of each candidate
    dense: np.ndarray  # exact cosine of each candidate
    bm25_top: np.ndarray  # scores of BM25's own top list (normalisation reference)
    dense_top: np.ndarray
    bm25_rank: np.ndarray  # 1-based rank in BM25's top list, 0 if absent
    dense_rank: np.ndarray
    bm25_all: np.ndarray  # BM25 score of every passage

    def fused(self, method: str, dense_weight: float, rrf_k: int = 60) -> np.ndarray:
        return fuse(
            self.rows,
            self.bm25,
            self.dense,
            self.bm25_top,
            self.dense_top,
            self.bm25_rank,
            self.dense_rank,
            method,
            dense_weight,
            rrf_k,
        )

    def explain(self, i: int | None, row: int, index: LoadedIndex, qvec: np.ndarray) -> dict:
        """Per-retriever score and rank of passage ``row`` (candidate ``i`` if it is one)."""
        dense = self.dense[i] if i is not None else index.dense.scores_for(qvec, np.array([row]))[0]
        return {
            "bm25_score": round(float(self.bm25_all[row]), 6),
            "bm25_rank": int(self.bm25_rank[i]) if i is not None and self.bm25_rank[i] else None,
            "dense_score": round(float(dense), 6),
            "dense_rank": int(self.dense_rank[i]) if i is not None and self.dense_rank[i] else None,
        }


def retrieve(
    index: LoadedIndex,
    terms: list[str],
    qvec: np.ndarray,
    depth: int,
    allowed: np.ndarray | None = None,
) -> Candidates:
    """Top ``depth`` of BM25 and of FAISS (within ``allowed`` rows), scored exactly by both."""
    n = len(index.passages)
    bm_all = index.bm25.scores(terms)
    if allowed is None:
        sparse_top = _top(bm_all, np.arange(n), depth, positive=True)
        _, d_rows = index.dense.search(qvec, depth)
        dense_top = d_rows[d_rows >= 0].astype(np.int64)
    else:
        sparse_top = _top(bm_all[allowed], allowed, depth, positive=True)
        dense_top = _top(index.dense.scores_for(qvec, allowed), allowed, depth, False)
    rows = np.union1d(sparse_top, dense_top)
    dense = index.dense.scores_for(qvec, rows)
    position = {int(r): i for i, r in enumerate(rows)}
    return Candidates(
        rows=rows,
        bm25=bm_all[rows],
        dense=dense,
        bm25_top=bm_all[sparse_top],
        dense_top=dense[[position[int(r)] for r in dense_top]],
        bm25_rank=ranks_of(rows, sparse_top),
        dense_rank=ranks_of(rows, dense_top),
        bm25_all=bm_all,
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
        if loaded is not None and current == loaded.path:
            return loaded
        with self._lock:
            if self._index is None or self._index.path != current_generation_path(
                self.settings.index_dir
            ):
                try:
                    fresh = load_index(self.settings)
                except IndexUnavailable:
                    if self._index is None:
                        raise
                    log.exception("new generation unusable; still serving %s", self._index.path)
                    return self._index
                self._check_model(fresh)
                if self._index is not None:
                    log.info("switched to generation %d", fresh.generation)
                self._index = fresh
            return self._index

    def _check_model(self, index: LoadedIndex) -> None:
        built = index.manifest["model"]
        if self._embedder is not None and built["name"] != self._embedder.name:
            raise IndexUnavailable(
                f"index was built with model {built['name']!r}, the service runs "
                f"{self._embedder.name!r}: run `karabakh-qa index --full`"
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
        rows = []
        wanted = set(q.sources)
        for i, p in enumerate(index.passages):
            if wanted and p.source not in wanted:
                continue
            if (q.since or q.until) and p.date is None:
                continue
            if q.since and p.date < q.since:
                continue
            if q.until and p.date > q.until:
                continue
            rows.append(i)
        return np.asarray(rows, dtype=np.int64)

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
        fused = cands.fused(s.fusion, s.dense_weight, s.rrf_k)
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
            passage = index.passages[shown]
            hits.append(
                Hit(
                    rank=len(hits) + 1,
                    score=float(fused[i]),
                    passage=passage,
                    also_in=self._copies(index, group, shown),
                    highlights=highlight(passage.text, query_terms, index),
                    explain=cands.explain(pos.get(shown), shown, index, qvec),
                )
            )
            if len(hits) == q.k:
                break
        return hits, self._answer_found(hits, query_terms, index)

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

    def _answer_found(self, hits: list[Hit], terms: set[str], index: LoadedIndex) -> bool:
        """Convincing when the best passage is semantically close, or close enough
        and covers most of the question's (idf-weighted) terms. Thresholds are
        calibrated on tests/data/seed_dev.json (README, "No answer")."""
        if not hits:
            return False
        best_dense = max(h.explain["dense_score"] for h in hits[:3])
        cover = max(term_coverage(h.passage.text, terms, index) for h in hits[:3])
        s = self.settings
        return best_dense >= s.min_dense_score or (
            cover >= s.min_term_coverage and best_dense >= s.min_dense_with_terms
        )

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

    @property
    def articles_dir(self) -> Path:
        return self.settings.articles_dir


def term_coverage(text: str, terms: set[str], index: LoadedIndex) -> float:
    """Share of the query's idf mass that ``text`` contains."""
    if not terms:
        return 0.0
    present = {t for t, _, _ in tokenize_spans(text)} & terms
    total = sum(max(index.bm25.term_idf(t), 0.0) for t in terms) or 1.0
    return sum(max(index.bm25.term_idf(t), 0.0) for t in present) / total


def highlight(text: str, terms: set[str], index: LoadedIndex) -> dict:
    """Offsets within ``text`` of the best-matching sentence and the query terms."""
    spans = tokenize_spans(text)
    matched = [[s, e] for t, s, e in spans if t in terms]
    best, best_score = None, 0.0
    for s, e in sentences(text):
        inside = {t for t, ts, te in spans if ts >= s and te <= e and t in terms}
        score = sum(index.bm25.term_idf(t) for t in inside)
        if score > best_score:
            best, best_score = [s, e], score
    if best is None:
        first = sentences(text)
        best = list(first[0]) if first else [0, len(text)]
    return {"sentence": best, "terms": matched}
