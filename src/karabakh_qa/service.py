"""The search service: the one library object the CLI, HTML page and JSON API call.

It owns the embedder and the loaded index generation, switches to a newer
generation when ``CURRENT`` changes (requests already running keep the one
they started with), validates every query parameter, and turns a question
into ranked, de-duplicated, cited hits.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shlex
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from .answer.judge import KeyTerm, coverage, key_terms, missing, numbers_held
from .answer.rank import Ranker, reorder
from .answer.spans import Span, answer_type, best_span
from .chunk import normalise
from .cite import Quote
from .config import DEFAULT_MODEL, Settings
from .corroborate import corroboration
from .embed import Embedder, load_embedder
from .errors import (
    ArticleError,
    BadRequest,
    IndexUnavailable,
    NotFound,
    valid_unicode,
    whole_number,
)
from .figures import across, asked_measure
from .fuse import fuse, ranks_of
from .ingest import decode_article, iso_date
from .pacing import Pacer
from .records import Hit, Passage, outlet_of, safe_url
from .sparse import term_spans, tokenize
from .store.embedded import files, kernels
from .store.embedded.ann import uses_ann
from .store.embedded.bm25 import Bm25Query
from .store.embedded.build import BuildReport, build_index
from .store.embedded.diff import stale_sources
from .store.embedded.journal import sync as sync_journal
from .store.embedded.manifest import IndexCorrupt, IndexOutdated, current_name, read_manifest
from .store.embedded.search import SegmentCache, Snapshot, best_positive
from .store.embedded.vectors import set_dense_threads

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Query:
    """A validated query."""

    question: str
    k: int
    sources: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    offset: int = 0  # hits skipped (pagination: offset, k)
    sort: str = "relevance"  # or "date" (newest first), "first_seen" (a story's earliest copy)
    include_undated: bool = False  # a date filter keeps passages of unknown date too
    facets: bool = False  # count the results by outlet, year and month


@dataclass(frozen=True)
class SearchResult:
    query: Query
    answer_found: bool
    hits: list[Hit]
    took_ms: float
    index: dict
    missing_terms: tuple[str, ...] = ()  # key terms of the question no passage holds
    answer_type: str = "description"
    total: int = 0  # distinct results (groups of copies count once) the retrieval found
    hidden_undated: int = 0  # of those, left out by a date filter for want of a date
    facets: dict | None = None  # counts by outlet, year and month, when asked for
    figures: list | None = None  # the asked measure's differing values across sources

    def to_dict(self) -> dict:
        q = self.query
        out = {
            "ok": True,
            "question": q.question,
            "answer_found": self.answer_found,
            "answer_type": self.answer_type,
            "missing_terms": list(self.missing_terms),
            "took_ms": round(self.took_ms, 2),
            "index": self.index,
            "total": self.total,
            "offset": q.offset,
            "k": q.k,
            "sort": q.sort,
            "hidden_undated": self.hidden_undated,
            "results": [h.to_dict() for h in self.hits],
        }
        if self.facets is not None:
            out["facets"] = self.facets
        out["figures"] = self.figures or []
        return out


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

    def fused(self, method: str, weights: tuple[float, ...], rrf_k: int = 60) -> np.ndarray:
        return fuse(self.features, weights, method, [self.bm25_rank, self.dense_rank], rrf_k)

    def order(self, fused: np.ndarray) -> np.ndarray:
        """Candidate positions, best first; equal scores by passage id."""
        return np.lexsort((self.ids, -fused))

    def explain(self, i: int, span: Span | None = None) -> dict:
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


REFRESH_INTERVAL_S = 0.05  # how often a server looks for a new generation
RELEASE_EVERY_S = 1.0  # how often it unmaps the index pages queries read (Snapshot.release)
RELEASE_ABOVE_BYTES = 1800 << 20  # ... and sooner once the process's RSS passes this
PARALLEL_MIN_ROWS = 50_000  # from here a query runs dense search beside BM25
HELPER_THREADS = 4  # the helpers' pool, shared by a server's concurrent queries


def retrieve(
    index: Snapshot,
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
    vector = qvec if callable(qvec) else (lambda: qvec)
    started: Future = Future()  # the helper's (vector, dense search), once it has them

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
    qvec, search = started.result()
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
    sent = index.sentence_features(rows, qvec, known_terms, qidf, total)
    features = np.stack([bm_all[rows], index.dense_scores(qvec, rows), sent.cosine, sent.coverage])
    return Candidates(
        rows=rows,
        reps=index.groups.reps_of(rows),
        ids=ids,
        features=features,
        bm25_rank=ranks_of(rows, sparse_top),
        dense_rank=ranks_of(rows, dense_top),
        best_sentence=sent.best,
    )


REFRESHER_NICENESS = 19


def lower_thread_priority() -> None:
    """Lower the calling thread's niceness (Linux schedules threads one by one; a
    thread that holds the GIL is never starved, unlike SCHED_IDLE's)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), REFRESHER_NICENESS)


@dataclass(frozen=True)
class Switch:
    """A generation this process opened, and when (``time.perf_counter``), so that
    what a switch costs the queries around it can be measured."""

    generation: int
    started: float
    finished: float


class SearchService:
    """Question in, cited passages out. Thread-safe; one per process."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        static_index: Snapshot | None = None,
    ) -> None:
        self.settings = settings
        # Threads must fit the free cores: FAISS's OpenMP pool like torch's.
        set_dense_threads(settings.torch_threads)
        self._embedder = embedder
        self._index: Snapshot | None = static_index
        self._static = static_index is not None  # an evaluation index: never reloaded
        self._rejected: str | None = None  # a generation that failed to load: not retried
        self.degraded: str | None = None  # why an older generation serves, if one does
        self._segments = SegmentCache()  # shared by the generations this process opens
        self._lock = threading.Lock()
        self._helper_pool: ThreadPoolExecutor | None = None
        self._ranker_model: Ranker | None = None
        self._refresher: threading.Thread | None = None
        self.switches: deque[Switch] = deque(maxlen=32)  # the latest generations opened
        # the refresher's other work, for the same measurement: ("prepare" | "release",
        # started, finished)
        self.chores: deque[tuple[str, float, float]] = deque(maxlen=256)
        self._stop_refresher = threading.Event()
        self._pacer = Pacer()  # the refresher's chores give way to queries

    # --- resources -------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    s = self.settings
                    name = s.query_model or self.model_name()
                    self._embedder = load_embedder(
                        name, s.torch_threads, s.query_runtime, s.cache_dir
                    )
        return self._embedder

    def _ranker(self) -> Ranker | None:
        """The second-phase model when ``Settings.ranker`` is "learned" (loaded once)."""
        s = self.settings
        if s.ranker != "learned" or s.ranker_path is None:
            return None
        if self._ranker_model is None:
            self._ranker_model = Ranker.load(s.ranker_path)
        return self._ranker_model

    def _helpers(self) -> ThreadPoolExecutor:
        """Threads that run a large index's dense search beside its BM25 (made once)."""
        if self._helper_pool is None:
            with self._lock:
                if self._helper_pool is None:
                    self._helper_pool = ThreadPoolExecutor(HELPER_THREADS, "karabakh-dense")
        return self._helper_pool

    def model_name(self) -> str:
        """The model to embed with: the settings', or else the one the index was built with."""
        if self.settings.model_name:
            return self.settings.model_name
        name = current_name(self.settings.index_dir)
        if name is None:
            return DEFAULT_MODEL
        try:
            return read_manifest(self.settings.index_dir, name).model.name
        except (FileNotFoundError, IndexUnavailable):
            return DEFAULT_MODEL

    def index(self) -> Snapshot:
        """The newest generation; reopened when ``CURRENT`` names another manifest.
        Only segments this process has not opened yet are read. With a refresher
        running (a server), a query never opens one: it gets the generation the
        refresher last installed."""
        if self._static or (self._refresher is not None and self._index is not None):
            return self._index
        return self._reload()

    def start_refresher(self, interval: float = REFRESH_INTERVAL_S) -> None:
        """Open new generations in a background thread, every ``interval`` seconds,
        as Lucene's SearcherManager refresh and Elasticsearch's refresh interval do:
        the query that first meets a new generation no longer pays for opening it
        (at 300k passages that query took 21 ms against a 13 ms median). Builds made
        through this service install their generation before they return. The same
        thread unmaps the pages queries read every ``RELEASE_EVERY_S``, or sooner once
        the RSS passes ``RELEASE_ABOVE_BYTES`` (faster queries touch more pages a second;
        releasing sooner costs every query its page faults again)."""
        if self._refresher is not None:
            return
        self._reload()
        kernels.load()  # the queries' compiled loops, before the first query needs them
        stop = self._stop_refresher

        def loop() -> None:
            lower_thread_priority()  # its opening and warming yield the cores to queries
            released, failing = time.monotonic(), ""
            while not stop.wait(interval):
                try:
                    before = self._index
                    prepared = self._chore("prepare", self._prepare)
                    switched = self._reload(prepared, background=True) is not before
                    if switched:  # its caches freed here, a little at a time
                        self._chore("retire", before.bm25.retire, self._pacer.pause)
                    due = time.monotonic() - released >= RELEASE_EVERY_S and not switched
                    if due or files.resident_bytes() > RELEASE_ABOVE_BYTES:
                        self._chore("release", self._index.release, self._pacer.pause)
                        released = time.monotonic()
                    failing = ""
                except Exception as exc:  # logged once per cause; the loaded one serves on
                    if repr(exc) != failing:
                        log.exception("refreshing the index failed")
                    failing = repr(exc)

        self._refresher = threading.Thread(target=loop, name="karabakh-refresh", daemon=True)
        self._refresher.start()

    def stop_refresher(self) -> None:
        if self._refresher is not None:
            self._stop_refresher.set()
            self._refresher.join()
            self._refresher = None
            self._stop_refresher = threading.Event()

    def _chore(self, kind: str, work: Callable[..., T], *args: object) -> T:
        """Run a refresher chore, giving way to queries (:mod:`..pacing`), and record
        when it ran (``chores``: what a chore costs the queries beside it)."""
        self._pacer.start()
        started = time.perf_counter()
        out = work(*args)
        if out is not None or kind != "prepare":  # a tick with nothing new is no chore
            self.chores.append((kind, started, time.perf_counter()))
        return out

    def _prepare(self) -> Snapshot | None:
        """The refresher opens a new generation before installing it, outside the
        lock while the old one serves: its segments, group view and deletions, and
        the ANN bits of its new large segments (a merge's), so that the switch is a
        pointer swap and its first queries need no exact-search fallback (at 1M the
        first query after a merge took 39 ms against a 21 ms median)."""
        name = current_name(self.settings.index_dir)
        if name is None or self._settled(name):
            return None
        try:
            return self._open(name, ready=True)
        except IndexUnavailable:
            return None  # _reload reports what is wrong with it

    def _settled(self, name: str | None) -> bool:
        """Whether generation ``name`` is the one serving, or one already refused."""
        loaded = self._index
        return loaded is not None and name in (loaded.manifest.file_name, self._rejected)

    def _reload(self, prepared: Snapshot | None = None, background: bool = False) -> Snapshot:
        """Open the generation ``CURRENT`` names if it is not the loaded one.

        ``background`` (the refresher) installs only the ``prepared`` generation: when a
        build has published another since (an add, then its merge), the next tick
        prepares that one, rather than opening it here, cold, in front of the queries."""
        if self._settled(current_name(self.settings.index_dir)):
            return self._index
        with self._lock:
            current = current_name(self.settings.index_dir)
            if self._settled(current):
                return self._index
            started = time.perf_counter()
            try:
                if prepared is not None and prepared.manifest.file_name == current:
                    fresh = prepared
                elif background and prepared is not None and self._index is not None:
                    return self._index
                else:
                    fresh = self._open(current)
            except IndexUnavailable as exc:
                if self._index is None:  # a fresh process: the newest intact generation
                    self._index = self._newest_intact(current, exc)
                self._rejected = current
                self.degraded = (
                    f"generation {current} is unusable ({exc.message}); serving "
                    f"{self._index.manifest.file_name} until a build repairs it"
                )
                log.error("%s", self.degraded)
                return self._index
            self.degraded = None
            if self._index is not None:
                log.info("switched to generation %d", fresh.generation)
            self._index = fresh
            self.switches.append(Switch(fresh.generation, started, time.perf_counter()))
            return self._index

    def index_command(self) -> str:
        """The command that builds this service's index, with its folders when they are
        not the defaults (a hint must work when pasted)."""
        s, default = self.settings, Settings()
        args = ["karabakh-qa", "index"]
        if s.articles_dir.resolve() != default.articles_dir.resolve():
            args += ["--articles", str(s.articles_dir)]
        if s.index_dir.resolve() != default.index_dir.resolve():
            args += ["--index", str(s.index_dir)]
        return shlex.join(args)

    def _newest_intact(self, current: str | None, failure: IndexUnavailable) -> Snapshot:
        """The newest older generation that opens whole (a build keeps the one before it
        on disk); ``failure`` again when none does, or when the index is merely outdated
        or built by another model (an older generation would be just as unusable)."""
        if current is None or not isinstance(failure, IndexCorrupt):
            raise failure
        folder = self.settings.index_dir
        older = sorted(
            (p.name for p in folder.glob("gen-*.json") if p.name < current), reverse=True
        )
        for name in older:
            try:
                return self._open(name)
            except (IndexUnavailable, FileNotFoundError):
                continue
        raise failure

    def _open(self, name: str | None, ready: bool = False) -> Snapshot:
        index_dir = self.settings.index_dir
        for _attempt in range(3):
            if name is None:
                raise IndexUnavailable(
                    f"no index in {index_dir}: run `{self.index_command()}` to build it"
                )
            try:
                snap = Snapshot(index_dir, read_manifest(index_dir, name), self._segments)
            except FileNotFoundError:
                time.sleep(0.05)  # a build switched generations under us: read CURRENT again
                name = current_name(index_dir)
                continue
            self._check_model(snap)
            snap.inherit(self._index)
            if ready and self._index is not None:  # the refresher, before a switch
                snap.bm25.warm(self._index.bm25, self._pacer.pause)
                self._pacer.pause()
            snap.groups  # noqa: B018 (built here, not at the first question)
            snap.bm25.deleted, snap.deletions  # noqa: B018
            for seg in snap.segments:  # large segments' ANN bits start building now, not
                if uses_ann(self.settings.dense, seg.rows):  # at the first question
                    seg.vectors.signs.ready(wait=ready)
            return snap
        raise IndexUnavailable(f"index in {index_dir} kept changing while loading; try again")

    def _check_model(self, index: Snapshot) -> None:
        """The index must have been built by the model this service embeds with."""
        built = index.manifest.model
        if self.settings.query_model:
            if self._embedder is not None and self._embedder.dim != built.dim:
                raise IndexUnavailable(
                    f"query model {self.settings.query_model!r} gives {self._embedder.dim}-dim "
                    f"vectors, the index holds {built.dim}-dim ones"
                )
            log.warning(
                "questions embedded with %s, passages with %s: a structural benchmark, not answers",
                self.settings.query_model,
                built.name,
            )
            return
        want = self.settings.model_name or built.name
        if built.name != want:
            raise IndexUnavailable(
                f"index was built with model {built.name!r} but settings use {want!r}: "
                "run `karabakh-qa index --full`"
            )
        if self._embedder is None:
            return
        if (built.name, built.weights_sha256) != (
            self._embedder.name,
            self._embedder.weights_sha256,
        ):
            raise IndexUnavailable(
                f"index was built with model {built.name!r} (weights "
                f"{built.weights_sha256[:12]}), the service runs {self._embedder.name!r} "
                f"(weights {self._embedder.weights_sha256[:12]}): run `karabakh-qa index --full`"
            )

    def build(
        self,
        full: bool = False,
        wait: bool = False,
        progress=None,
        only: list[str] | None = None,
        optimize: bool = False,
        repair: bool = False,
        allow_empty: bool = False,
    ) -> BuildReport:
        """Bring the index up to date with the articles folder (see store.embedded.build)."""
        if self.settings.query_model:
            raise BadRequest(
                "this service embeds questions with a benchmark query model and never builds; "
                "run `karabakh-qa index` without it"
            )
        scope = "files" if only is not None else "folder"
        journal = None
        if only is None:  # a running journal watcher can spare the folder scan
            journal = sync_journal(self.settings.articles_dir, self.settings.index_dir)
            if journal.names is not None and not (full or repair):
                only, scope = journal.names, "journal"
        report = build_index(
            self.settings,
            self.embedder,
            full=full,
            wait=wait,
            progress=progress,
            only=only,
            optimize=optimize,
            repair=repair,
            cache=self._segments,
            allow_empty=allow_empty,
        )
        if journal is not None:
            journal.commit()
        if self._refresher is not None:  # an upload is searchable when its call returns
            self._reload()
        return replace(report, scope=scope)

    def ensure_index(self) -> BuildReport | None:
        """Build the index if there is none, or rebuild one an older version wrote
        (it cannot be served); used by ``serve``."""
        if current_name(self.settings.index_dir) is None:
            return self.build(wait=True)
        try:
            self.index()
        except IndexOutdated as exc:
            log.warning("%s; rebuilding", exc.message)
            return self.build(full=True, wait=True)
        return None

    WARM_QUESTIONS = ("Who said what, and when?", "How many people were there?")

    def warm(self) -> None:
        """Load the question model, the learned ranker and the compiled loops, and
        answer a few questions, before a server says it is serving: the first user's
        question then costs what later ones do (it took 4-6.5 s while the model loaded
        behind it)."""
        self.embedder  # noqa: B018
        self._ranker()
        kernels.load()
        for question in self.WARM_QUESTIONS:
            self.search(question, self.settings.default_k)

    def stale(self) -> list[str]:
        return stale_sources(self.index(), self.settings.articles_dir)

    def index_info(self, index: Snapshot | None = None) -> dict:
        index = index or self.index()
        m = index.manifest
        return {
            "generation": m.generation,
            "articles": m.live_articles,
            "passages": m.live_passages,
            "segments": len(m.segments),
            "model": m.model.name,
            "built_at": m.built_at,
        }

    # --- validation --------------------------------------------------------------

    def validate(
        self,
        question: object,
        k: object = None,
        sources: object = None,
        since: object = None,
        until: object = None,
        index: Snapshot | None = None,
        blank_is_absent: bool = True,
        offset: object = None,
        sort: object = None,
        include_undated: object = None,
        facets: object = None,
    ) -> Query:
        """Check every parameter; raise :class:`BadRequest` saying what is allowed.
        ``blank_is_absent``: an empty ``k``, ``since`` or ``until`` means not given (a
        form's empty field); a JSON body gives a value or leaves the key out."""
        s = self.settings
        if not isinstance(question, str) or not question.strip():
            raise BadRequest("question is required: give 1 to 1000 characters of text")
        question = valid_unicode(question, "question").strip()
        if len(question) > s.max_question_chars:
            raise BadRequest(
                f"question is {len(question)} characters; at most {s.max_question_chars} allowed"
            )
        if k is None or (k == "" and blank_is_absent):
            k = s.default_k
        k_given, k = k, whole_number(k)
        if k is None or not 1 <= k <= s.max_k:
            raise BadRequest(f"k must be a whole number from 1 to {s.max_k}, got {k_given!r}")
        if sources is None or sources == "":
            sources = ()
        if isinstance(sources, str):
            sources = (sources,)
        if not isinstance(sources, list | tuple) or not all(isinstance(x, str) for x in sources):
            raise BadRequest("sources must be a list of article file names")
        sources = tuple(x for x in sources if x)
        snap = index or self.index()
        unknown = [x for x in sources if snap.article(x) is None]
        if unknown:
            known = snap.article_names()
            names = ", ".join(known[:20]) + (" …" if len(known) > 20 else "")
            raise BadRequest(f"unknown source {unknown[0]!r}; indexed sources are: {names}")
        dates = []
        for name, value in (("since", since), ("until", until)):
            if value is None or (value == "" and blank_is_absent):
                dates.append(None)
                continue
            parsed = iso_date(value) if isinstance(value, str) else None
            if parsed is None or parsed != value.strip():
                raise BadRequest(f"{name} must be a date as YYYY-MM-DD, got {value!r}")
            dates.append(parsed)
        if dates[0] and dates[1] and dates[0] > dates[1]:
            raise BadRequest(f"since ({dates[0]}) is after until ({dates[1]})")
        given = offset is not None and not (offset == "" and blank_is_absent)
        skip = whole_number(offset) if given else 0
        if skip is None or not 0 <= skip <= MAX_OFFSET:
            raise BadRequest(
                f"offset must be a whole number from 0 to {MAX_OFFSET}, got {offset!r}"
            )
        order = "relevance" if sort is None or (sort == "" and blank_is_absent) else sort
        if order not in SORTS:
            raise BadRequest(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
        undated, counted = flag(include_undated, "include_undated"), flag(facets, "facets")
        return Query(question, k, sources, dates[0], dates[1], skip, order, undated, counted)

    # --- search ------------------------------------------------------------------

    def _allowed(self, index: Snapshot, q: Query) -> np.ndarray | None:
        """Rows the filters allow; with a date filter, undated rows too (they are counted
        as hidden, or shown with ``include_undated``)."""
        if not (q.sources or q.since or q.until):
            return None
        return index.rows_where(q.sources, q.since, q.until, undated=True)

    def search(
        self,
        question: object,
        k: object = None,
        sources: object = None,
        since: object = None,
        until: object = None,
        blank_is_absent: bool = True,
        **options: object,
    ) -> SearchResult:
        """Ranked, de-duplicated, cited hits for ``question`` (see README "Search");
        ``options``: offset, sort, include_undated, facets (see :class:`Query`)."""
        unknown = sorted(set(options) - {"offset", "sort", "include_undated", "facets"})
        if unknown:
            raise TypeError(f"unknown search option {unknown[0]!r}")
        started = time.perf_counter()
        with self._pacer.query():
            index = self.index()
            q = self.validate(question, k, sources, since, until, index, blank_is_absent, **options)
            ranked = self._rank(index, q)
        took = (time.perf_counter() - started) * 1000
        return SearchResult(
            q,
            ranked.found,
            ranked.hits,
            took,
            self.index_info(index),
            ranked.missing,
            ranked.kind,
            ranked.total,
            ranked.hidden_undated,
            ranked.facets,
            ranked.figures,
        )

    def _rank(self, index: Snapshot, q: Query) -> Ranked:
        s = self.settings
        kind = answer_type(q.question)
        allowed = self._allowed(index, q)
        if index.bm25.n == 0 or (allowed is not None and len(allowed) == 0):
            return Ranked([], False, (), kind)
        terms = tokenize(q.question)
        bq = index.bm25.query(terms)  # its document frequencies serve the key terms too
        df_of_term = dict(zip(bq.terms, bq.df.tolist(), strict=True))

        def df_of(wanted: list[str]) -> np.ndarray:
            return np.array([df_of_term[t] for t in wanted], np.int64)

        keys = key_terms(q.question, df_of, index.bm25.n)
        embedder = self.embedder  # loaded here: a failure to load is this thread's to raise

        def qvec() -> np.ndarray:
            return embedder.encode([q.question])[0]

        helpers = self._helpers() if index.total_rows >= PARALLEL_MIN_ROWS else None
        cands = retrieve(
            index, terms, qvec, s.depth, allowed, s.dense, helpers, s.torch_threads, bq
        )
        fused = cands.fused(s.fusion, s.fusion_weights, s.rrf_k)
        ranker = self._ranker()
        ordered, spans = (
            reorder(index, cands, fused, q.question, ranker) if ranker else (cands.order(fused), {})
        )
        dates = index.dates_of(cands.rows)
        results, hidden = _collapse(cands, ordered, allowed, dates, q)
        decorate = _Decorator(index, cands, fused, spans, kind, set(terms))
        absent = tuple(missing(keys))
        n = index.bm25.n
        found = self._answer_found(decorate.many(results[:3]), keys, n) and not absent
        view = _sorted(results, q.sort, dates, index, cands)
        hits = [  # only a hit that passes the answer rule on its own is marked as one
            replace(h, answers=found and self._answers(h, keys, n))
            for h in decorate.many(view[q.offset : q.offset + q.k], first_rank=q.offset + 1)
        ]
        facets = _facets(index, cands, results, dates) if q.facets else None
        figures = _figures(index, cands, results, q.question, keys)
        return Ranked(hits, found, absent, kind, len(results), hidden, facets, figures)

    def _answer_found(self, hits: list[Hit], keys: list[KeyTerm], n: int) -> bool:
        """Convincing when a top-3 passage holds enough of the question's key terms
        (answer/judge.py) and is semantically close, or close enough and has a
        sentence covering most of the question's (idf-weighted) terms.
        Thresholds are calibrated on tests/data/seed_dev.json and bbc_dev.json
        (README, "No answer")."""
        texts = [h.passage.text for h in hits[:3]]
        return self._holds_keys(keys, texts, n) and any(self._close(h) for h in hits[:3])

    def _answers(self, hit: Hit, keys: list[KeyTerm], n: int) -> bool:
        """The answer rule for one hit alone: its own text holds the key terms."""
        return self._holds_keys(keys, [hit.passage.text], n) and self._close(hit)

    def _holds_keys(self, keys: list[KeyTerm], texts: list[str], n: int) -> bool:
        covered = coverage(keys, texts, n) >= self.settings.min_key_coverage
        return covered and numbers_held(keys, texts)

    def _close(self, hit: Hit) -> bool:
        """Semantically close, or close enough with a sentence covering most terms."""
        s = self.settings
        dense, cover = hit.explain["dense_score"], hit.explain["term_coverage"]
        return dense >= s.min_dense_score or (
            dense >= s.min_dense_with_terms and cover >= s.min_term_coverage
        )

    # --- articles and health -------------------------------------------------------

    def article(self, source: str) -> tuple[dict, list[Passage]]:
        """An indexed article's metadata and cleaned passages, or NotFound."""
        index = self.index()
        found = index.article(source)
        if found is None:
            raise NotFound(f"no indexed article called {source!r}")
        meta, rows = found
        return meta, [index.passage(r) for r in rows]

    def passage(self, pid: object) -> tuple[Passage, dict]:
        """A live passage by its id, with its article's metadata, or NotFound."""
        index = self.index()
        row = index.row_of_id(pid) if isinstance(pid, str) and len(pid) <= 16 else None
        if row is None:
            raise NotFound(f"no passage with id {pid!r} in the serving index")
        p = index.passage(row)
        return p, index.article(p.source)[0]

    def quote(self, p: Passage, meta: dict, link: str) -> Quote:
        """Passage ``p`` (with its article's ``meta``, as :meth:`passage` gives them) as
        a citable quote, its context read from the article file when the file is still
        the one indexed (same SHA-256)."""
        text = None
        try:
            raw = (self.settings.articles_dir / p.source).read_bytes()
            if hashlib.sha256(raw).hexdigest() == meta.get("sha256"):
                text = decode_article(p.source, raw)
        except (OSError, ArticleError):
            pass
        return Quote.in_article(p, text, link)

    def article_list(
        self, since: object = None, until: object = None, outlet: object = None
    ) -> list[dict]:
        """Articles (file, title, outlet, url, date, passages) dated within [since,
        until] (an undated one only without a date bound) and from ``outlet``, newest
        first, undated last: the archive's table of contents."""
        q = self.validate("list", None, None, since, until)
        if outlet is not None and not isinstance(outlet, str):
            raise BadRequest("outlet must be text")
        out = []
        for name, meta in self.articles().items():
            row = {
                "file": name,
                "title": meta.get("title"),
                "outlet": outlet_of(meta.get("publisher"), meta.get("url")),
                "url": safe_url(meta.get("url")),
                "date": meta.get("date"),
                "date_source": meta.get("date_source"),
                "passages": meta.get("passages"),
            }
            date = row["date"] or ""
            if (q.since or q.until) and not date:
                continue
            if (q.since and date < q.since) or (q.until and date > q.until):
                continue
            if outlet and row["outlet"] != outlet:
                continue
            out.append(row)
        out.sort(key=lambda r: r["file"])
        return sorted(out, key=lambda r: r["date"] or "", reverse=True)

    def articles(self) -> dict[str, dict]:
        """Every live article's metadata by file name (read once per generation)."""
        return self.index().article_metas

    def health(self) -> dict:
        """The serving generation; ``status`` "degraded" with the ``reason`` when the
        newest one is damaged and an older intact one serves."""
        index = self.index()
        state = {"status": "degraded", "reason": self.degraded} if self.degraded else {}
        return {
            "ok": True,
            "status": "ok",
            **state,
            **self.index_info(index),
            "skipped": len(index.manifest.skipped),
        }


@dataclass(frozen=True)
class Ranked:
    """What ranking a query gave: the page of hits and what is said about all of them."""

    hits: list[Hit]
    found: bool
    missing: tuple[str, ...]
    kind: str
    total: int = 0
    hidden_undated: int = 0
    facets: dict | None = None
    figures: list | None = None


FIGURE_DEPTH = 100  # results whose sentences are read for the asked measure


def _figures(index, cands, results, question: str, keys: list[KeyTerm]) -> list | None:
    """The asked measure's values across the results, when they differ (figures.py):
    ``[{measure, values: [{value, text, file, paragraph, start, end, date}]}]``."""
    measure = asked_measure(question)
    if measure is None:
        return None
    names = [k.surface for k in keys if not k.surface.isdigit()]
    passages = [index.passage(int(cands.rows[j])) for _, j in results[:FIGURE_DEPTH]]
    values = across(measure, passages, names)
    if len({v["value"] for v in values}) < 2:
        return None  # one figure everywhere: nothing differs
    values.sort(key=lambda v: (v["date"] or "9999", v["file"], v["start"]))
    return [{"measure": measure, "values": values}]


def flag(value: object, name: str) -> bool:
    """A yes/no parameter: JSON true/false, or 1/0, true/false, yes/no, on/off, "" (no)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in FLAG_WORDS:
        return FLAG_WORDS[value.strip().lower()]
    raise BadRequest(f"{name} must be true or false, got {value!r}")


FLAG_WORDS = {"": False, "0": False, "false": False, "no": False, "off": False,
              "1": True, "true": True, "yes": True, "on": True}  # fmt: skip
SORTS = ("relevance", "date", "first_seen")
MAX_OFFSET = 1000


def _collapse(
    cands: Candidates,
    ordered: np.ndarray,
    allowed: np.ndarray | None,
    dates: np.ndarray,
    q: Query,
) -> tuple[list[tuple[int, int]], int]:
    """Every distinct result in ranked order, a group of copies once: (candidate
    position, position of the row shown for it: the group's representative when the
    filters allow it); and how many a date filter left out for want of a date."""
    allowed_set = None if allowed is None else set(allowed.tolist())
    pos = {int(c): i for i, c in enumerate(cands.rows)}
    dated_filter = bool(q.since or q.until)
    out, seen, hidden = [], set(), 0
    for i in ordered.tolist():
        row, rep = int(cands.rows[i]), int(cands.reps[i])
        if rep in seen:
            continue
        seen.add(rep)
        j = pos[rep if allowed_set is None or rep in allowed_set else row]
        if dated_filter and not dates[j] and not q.include_undated:
            hidden += 1
            continue
        out.append((i, j))
    return out, hidden


def _sorted(results, sort: str, dates: np.ndarray, index: Snapshot, cands: Candidates) -> list:
    """``results`` in the asked order: relevance as ranked; date, newest first; or
    first_seen, by the earliest dated copy of each result's group (the story's first
    report), newest first. Undated results go last, in ranked order (stable sorts)."""
    if sort == "relevance":
        return results
    if sort == "date":
        return sorted(results, key=lambda r: dates[r[1]], reverse=True)
    first = {}
    for _, j in results:
        members = index.groups.members(int(cands.rows[j]))
        known = [d for d in index.dates_of(np.asarray(members, np.int64)).tolist() if d]
        first[j] = min(known) if known else ""
    return sorted(results, key=lambda r: first[r[1]], reverse=True)


def _facets(index: Snapshot, cands: Candidates, results, dates: np.ndarray) -> dict:
    """Counts of the results by outlet, year and month (most first; "unknown" last)."""
    outlet, year, month = Counter(), Counter(), Counter()
    for _, j in results:
        meta = index.article_of(int(cands.rows[j]))  # its record only: no passage decoded
        outlet[outlet_of(meta.get("publisher"), meta.get("url")) or "unknown"] += 1
        date = str(dates[j])
        year[date[:4] or "unknown"] += 1
        month[date[:7] or "unknown"] += 1

    def listed(counts: Counter) -> list[dict]:
        ranked = sorted(counts.items(), key=lambda kv: (kv[0] == "unknown", -kv[1], kv[0]))
        return [{"value": value, "count": count} for value, count in ranked]

    return {"outlet": listed(outlet), "year": listed(year), "month": listed(month)}


def copies_of(index: Snapshot, shown: int, passage: Passage) -> tuple[dict, ...]:
    """The other members of ``shown``'s near-duplicate group, as a hit's ``also_in``."""
    key = normalise(passage.text)
    out = []
    for row in index.groups.members(shown):
        if row == shown:
            continue
        p = index.passage(row)
        out.append(
            {
                "id": p.id,
                "file": p.source,
                "source": p.source,  # deprecated alias of "file"
                "outlet": p.outlet,
                "paragraph": p.paragraph,
                "date": p.date,
                "date_source": p.date_source,
                "start": p.start,
                "end": p.end,
                "identical": normalise(p.text) == key,
            }
        )
    return tuple(sorted(out, key=lambda c: (c["source"], c["paragraph"])))


class _Decorator:
    """Turns ranked candidates into Hits: passage, marked sentence, answer span,
    copies, evidence; each candidate once, however often it is asked for."""

    def __init__(self, index, cands, fused, spans, kind, query_terms) -> None:
        self.index, self.cands, self.fused = index, cands, fused
        self.spans, self.kind, self.terms = spans, kind, query_terms
        self._done: dict[int, Hit] = {}

    def many(self, results: list[tuple[int, int]], first_rank: int = 1) -> list[Hit]:
        return [self.one(i, j, first_rank + n) for n, (i, j) in enumerate(results)]

    def one(self, i: int, j: int, rank: int) -> Hit:
        hit = self._done.get(j)
        if hit is None:
            hit = self._done[j] = self._make(i, j)
        return replace(hit, rank=rank)

    def _make(self, i: int, j: int) -> Hit:
        index, cands = self.index, self.cands
        shown = int(cands.rows[j])
        passage = index.passage(shown)
        sentence = index.sentence_span(shown, int(cands.best_sentence[j]))
        span = (
            self.spans[j]
            if j in self.spans
            else best_span(passage.text, self.kind, self.terms, (sentence[0], sentence[1]))
        )
        copies = copies_of(index, shown, passage)
        corroborated = corroboration(passage, copies)
        return Hit(
            rank=0,
            score=float(self.fused[i]),
            passage=passage,
            also_in=copies,
            highlights={"sentence": sentence, "terms": matched_terms(passage.text, self.terms)},
            explain=cands.explain(j, span),
            answer_span=span.to_dict(passage.start) if span else None,
            corroboration=corroborated,
            first_seen=first_of(corroborated),
        )


def first_of(corroborated: dict) -> dict | None:
    """The earliest dated copy of a story as ``first_seen`` gives it: {file, date}."""
    first = corroborated["first"]
    return None if first is None else {"file": first["file"], "date": first["date"]}


def matched_terms(text: str, terms: set[str]) -> list[list[int]]:
    """Offsets within ``text`` of every token whose term is in the query."""
    return term_spans(text, terms)
