"""The search service: the one library object the CLI, HTML page and JSON API call.

It owns the embedder and the loaded index generation (switching to a newer one
when ``CURRENT`` changes; requests already running keep the one they started
with) and wires the stages of an answer, each a module of ``answer/``:
query (validate) -> retrieve -> fuse (+ the learned second phase, rank) ->
collapse -> decorate -> judge. It computes nothing of an answer itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shlex
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from .answer.collapse import collapse, facets, in_order
from .answer.decorate import Decorator, figures_of
from .answer.extract import FEATURES as SPAN_FEATURES
from .answer.forest import Scorer, load_scorer
from .answer.judge import AnswerRule, key_terms, missing
from .answer.query import Query, parse_query
from .answer.rank import FEATURES as RANK_FEATURES
from .answer.rank import Ranker, reorder
from .answer.retrieve import PARALLEL_MIN_ROWS, allowed_rows, retrieve
from .answer.spans import answer_type
from .cite import Quote
from .config import DEFAULT_BACKEND, DEFAULT_MODEL, Settings
from .embed import Embedder, load_embedder
from .errors import ArticleError, BadRequest, IndexUnavailable, NotFound
from .ingest import decode_article
from .jobs import Job, Jobs
from .pacing import Pacer
from .records import Hit, Passage, outlet_of, safe_url
from .sparse import tokenize
from .store.embedded import files, kernels
from .store.embedded.ann import uses_ann
from .store.embedded.build import BuildReport, build_index, store_record
from .store.embedded.diff import stale_sources
from .store.embedded.journal import sync as sync_journal
from .store.embedded.manifest import (
    IndexCorrupt,
    IndexOutdated,
    ModelInfo,
    current_name,
    read_manifest,
)
from .store.embedded.rows import Progress
from .store.embedded.search import SegmentCache, Snapshot
from .store.embedded.store import EmbeddedStore
from .store.embedded.vectors import set_dense_threads
from .store.milvus import MilvusSettings, MilvusStore
from .store.protocol import Filters, Store, StoreView
from .upload import save_article

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class SearchResult:
    query: Query
    answer_found: bool
    hits: list[Hit]
    took_ms: float
    index: dict[str, Any]
    missing_terms: tuple[str, ...] = ()  # key terms of the question no passage holds
    answer_type: str = "description"
    total: int = 0  # distinct results (groups of copies count once) the retrieval found
    hidden_undated: int = 0  # of those, left out by a date filter for want of a date
    facets: dict[str, Any] | None = None  # counts by outlet, year and month, when asked for
    figures: list[dict[str, Any]] | None = (
        None  # the asked measure's differing values across sources
    )

    def to_dict(self) -> dict[str, Any]:
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


REFRESH_INTERVAL_S = 0.05  # how often a server looks for a new generation
# The refresher unmaps the index pages queries read (Snapshot.release) once the
# process's RSS passes this: a build or merge in the process (they read whole
# columns through the maps) can take it there; queries alone do not (they read
# their scattered rows with pread: segment.ColdReads).
RELEASE_ABOVE_BYTES = 1800 << 20
HELPER_THREADS = 4  # the helpers' pool, shared by a server's concurrent queries


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
        self._models: dict[Path, Scorer] = {}  # model files read, by path
        self._refresher: threading.Thread | None = None
        self.switches: deque[Switch] = deque(maxlen=32)  # the latest generations opened
        # the refresher's other work, for the same measurement: ("prepare" | "release",
        # started, finished)
        self.chores: deque[tuple[str, float, float]] = deque(maxlen=256)
        self._stop_refresher = threading.Event()
        self._pacer = Pacer()  # the refresher's chores give way to queries
        self._milvus: dict[tuple[str, str], MilvusStore] = {}  # (uri, collection) -> client
        self.jobs = Jobs()  # builds off the caller's thread: uploads (add) and reindexes

    # --- resources -------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    s = self.settings
                    name, backend = self._choices()
                    self._embedder = load_embedder(
                        s.query_model or name,
                        s.torch_threads,
                        s.query_runtime,
                        s.cache_dir,
                        backend,
                        s.device,
                    )
        return self._embedder

    def _ranker(self) -> Ranker | None:
        """The second-phase model when ``Settings.ranker`` is "learned" (loaded once)."""
        s = self.settings
        if s.ranker != "learned" or s.ranker_path is None:
            return None
        return cast(Ranker, self._model(s.ranker_path, RANK_FEATURES, Ranker.load))

    def _span_model(self) -> Scorer | None:
        """The answer-span model (answer/extract.py), loaded once; None: the rules."""
        path = self.settings.span_model_path
        return None if path is None else self._model(path, SPAN_FEATURES, load_scorer)

    def _model(
        self, path: Path, features: tuple[str, ...], load: Callable[[Path, tuple[str, ...]], Scorer]
    ) -> Scorer:
        """A model file over ``features``, read once per process."""
        found = self._models.get(path)
        if found is None:
            found = self._models[path] = load(path, features)
        return found

    def _helpers(self) -> ThreadPoolExecutor:
        """Threads that run a large index's dense search beside its BM25 (made once)."""
        if self._helper_pool is None:
            with self._lock:
                if self._helper_pool is None:
                    self._helper_pool = ThreadPoolExecutor(HELPER_THREADS, "karabakh-dense")
        return self._helper_pool

    def model_name(self) -> str:
        """The model to embed with: the settings', or else the one the index was built with."""
        return self._choices()[0]

    def backend(self) -> str:
        """What runs the model: the settings' backend, or else the index's (for a new
        index, DEFAULT_BACKEND)."""
        return self._choices()[1]

    def _choices(self) -> tuple[str, str]:
        """(model, backend): the settings', else the current index's (one manifest read)."""
        s = self.settings
        built = None if s.model_name and s.backend else self._built_model()
        name = s.model_name or (built.name if built else DEFAULT_MODEL)
        backend = s.backend or (built.backend.split(":")[0] if built else DEFAULT_BACKEND)
        return name, backend

    def _built_model(self) -> ModelInfo | None:
        """The model the current index was built with, None without a readable one."""
        name = current_name(self.settings.index_dir)
        if name is None:
            return None
        try:
            return read_manifest(self.settings.index_dir, name).model
        except (FileNotFoundError, IndexUnavailable):
            return None

    def index(self) -> Snapshot:
        """The newest generation; reopened when ``CURRENT`` names another manifest.
        Only segments this process has not opened yet are read. With a refresher
        running (a server), a query never opens one: it gets the generation the
        refresher last installed."""
        if self._static or (self._refresher is not None and self._index is not None):
            return cast(Snapshot, self._index)  # a static service is built with one
        return self._reload()

    def start_refresher(self, interval: float = REFRESH_INTERVAL_S) -> None:
        """Open new generations in a background thread, every ``interval`` seconds,
        as Lucene's SearcherManager refresh and Elasticsearch's refresh interval do:
        the query that first meets a new generation no longer pays for opening it
        (at 300k passages that query took 21 ms against a 13 ms median). Builds made
        through this service install their generation before they return. The same
        thread unmaps the mapped index pages once the RSS passes ``RELEASE_ABOVE_BYTES``
        (not on a timer: a release costs the next queries their page faults again)."""
        if self._refresher is not None:
            return
        self._reload()
        kernels.load()  # the queries' compiled loops, before the first query needs them
        stop = self._stop_refresher

        def loop() -> None:
            lower_thread_priority()  # its opening and warming yield the cores to queries
            failing = ""
            while not stop.wait(interval):
                try:
                    before = self._index
                    prepared = self._chore("prepare", self._prepare)
                    serving = self._reload(prepared, background=True)
                    switched = serving is not before
                    if switched and before is not None:  # its caches freed, a little at a time
                        self._chore("retire", before.bm25.retire, self._pacer.pause)
                    if not switched and files.resident_bytes() > RELEASE_ABOVE_BYTES:
                        self._chore("release", serving.release, self._pacer.pause)
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
        if self._settled(current_name(self.settings.index_dir)) and self._index is not None:
            return self._index
        with self._lock:
            current = current_name(self.settings.index_dir)
            if self._settled(current) and self._index is not None:
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
            if self._store_record(snap) is not None:  # passages are read from Milvus
                return snap
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
        kind = built.backend.split(":")[0]
        if self.settings.backend and self.settings.backend != kind:
            raise self._other_backend(built.backend, self.settings.backend)
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
        if built.backend != self._embedder.backend_id:
            raise self._other_backend(built.backend, self._embedder.backend_id)

    @staticmethod
    def _other_backend(built: str, mine: str) -> IndexUnavailable:
        return IndexUnavailable(
            f"index was built through {built!r}, the service embeds through {mine!r}: "
            "questions must go through the graph that embedded the passages; use that "
            "backend or run `karabakh-qa index --full`"
        )

    def build(
        self,
        full: bool = False,
        wait: bool = False,
        progress: Progress | None = None,
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
        record = self._store_record(None)
        settings = self.settings
        if record is not None and settings.store != "milvus":  # the index's own store
            settings = replace(
                settings,
                store="milvus",
                milvus_uri=record["uri"],
                milvus_collection=record["collection"],
                milvus_dense_index=record.get("dense_index", "FLAT"),
            )
        before = current_name(settings.index_dir)
        # an upload is searchable when its generation is published, before any merge
        serving = self._refresher is not None and record is None
        report = build_index(
            settings,
            self.embedder,
            full=full,
            wait=wait,
            progress=progress,
            only=only,
            optimize=optimize,
            repair=repair,
            cache=self._segments,
            allow_empty=allow_empty,
            published=self._reload if serving else None,
        )
        if record is not None:  # the passages move to Milvus, article by article
            snap = self._open(current_name(settings.index_dir))
            diff = [*report.added, *report.changed, *report.removed]
            synced = self.store(snap).apply(snap, before, None if full or repair else diff)
            log.info("synced to Milvus: %s", synced)
        if journal is not None:
            journal.commit()
        if self._refresher is not None:  # an upload is searchable when its call returns
            self._reload()
        return replace(report, scope=scope)

    def add(self, raw: bytes) -> Job:
        """Accept an article: check it as indexing would, save it (fsynced) under a
        generated name, and queue its indexing (uploads queued together are indexed
        by one build, see jobs.py). Returns at once with the job; the article is
        searchable when the job is done. Bad input raises and saves nothing."""
        name = save_article(self.settings, raw)
        return self.jobs.submit_upload(name, self.index_files)

    def reindex(self) -> Job:
        """Queue an incremental build of the whole folder (one already queued is
        returned: it will see the same folder)."""
        return self.jobs.submit("reindex", lambda: self.build(wait=True).to_dict())

    def index_files(self, names: list[str]) -> dict[str, Any]:
        """Index the named files of the articles folder (an upload's batch, see jobs.py),
        waiting for the index lock; the build report as JSON."""
        return self.build(wait=True, only=names).to_dict()

    # --- the store ---------------------------------------------------------------

    def store(self, index: Snapshot | None = None) -> Store:
        """Where the passages are kept and read (store/protocol.py): the serving
        generation of the embedded index, or the Milvus store that the settings or
        the generation's manifest name."""
        index = index or self.index()
        record = self._store_record(index)
        return EmbeddedStore(index) if record is None else self.milvus(record)

    def _store_record(self, index: Snapshot | None) -> dict[str, str] | None:
        """Where passages are searched: None for the embedded index, else the Milvus
        store's record (Settings.store, or what the index's manifest says)."""
        kind = self.settings.store
        if kind not in ("", "embedded", "milvus"):
            raise BadRequest(f"unknown store {kind!r}: embedded or milvus")
        if kind == "milvus":
            if not self.settings.milvus_uri:
                raise BadRequest("the Milvus store needs a URI: --milvus-uri (a file or http://…)")
            return store_record(self.settings)
        if kind == "embedded":
            return None
        if index is None:  # a build: the newest manifest says (read alone: opening the
            # whole generation here made a 1M-passage add take seconds, not 0.1 s)
            name = current_name(self.settings.index_dir)
            if name is None:
                return None
            try:
                manifest = read_manifest(self.settings.index_dir, name)
            except (FileNotFoundError, IndexUnavailable):  # the build redoes it
                return None
        else:
            manifest = index.manifest
        found = manifest.extra.get("store")
        return dict(found) if isinstance(found, dict) and found.get("kind") == "milvus" else None

    def milvus(self, record: dict[str, str]) -> MilvusStore:
        """The Milvus store of ``record`` (one client per process and collection)."""
        key = (record["uri"], record["collection"])
        dim = self._dim()  # (reads the index: before the lock, which a reload takes)
        with self._lock:
            if key not in self._milvus:
                settings = MilvusSettings(
                    uri=record["uri"],
                    collection=record["collection"],
                    dense_index=record.get("dense_index", "FLAT"),
                    bm25_k1=self.settings.bm25_k1,
                    bm25_b=self.settings.bm25_b,
                    timeout=self.settings.milvus_timeout,
                )
                self._milvus[key] = MilvusStore(settings, dim)
            return self._milvus[key]

    def _dim(self) -> int:
        name = current_name(self.settings.index_dir)
        if name is not None:
            return int(self.index().manifest.model.dim)
        return int(self.embedder.dim)

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
        self._span_model()
        kernels.load()
        for question in self.WARM_QUESTIONS:
            self.search(question, self.settings.default_k)

    def stale(self) -> list[str]:
        return stale_sources(self.index(), self.settings.articles_dir)

    def index_info(self, index: Snapshot | None = None) -> dict[str, Any]:
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
        store: Store | None = None,
        blank_is_absent: bool = True,
        **options: object,
    ) -> Query:
        """Check every parameter against the serving store's articles (answer/query.py)."""
        archive = store or self.store()
        return parse_query(
            self.settings, archive, question, k, sources, since, until, blank_is_absent, **options
        )

    # --- search ------------------------------------------------------------------

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
            store = self.store(index)
            q = self.validate(question, k, sources, since, until, store, blank_is_absent, **options)
            ranked = self._rank(store, q)
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

    def _rank(self, store: Store, q: Query) -> Ranked:
        """The pipeline: retrieve -> fuse (and the second phase) -> collapse ->
        decorate -> judge, each stage a module of ``answer/``, over the rows of the
        store's view for this question."""
        s = self.settings
        kind = answer_type(q.question)
        embedder = self.embedder  # loaded here: a failure to load is this thread's to raise

        def qvec() -> np.ndarray:
            vector: np.ndarray = embedder.encode([q.question])[0]
            return vector

        filters = Filters(q.sources, q.since, q.until)
        view: StoreView = store.view(q.question, qvec, s.depth, filters)
        allowed = allowed_rows(view, q)
        if view.bm25.n == 0 or (allowed is not None and len(allowed) == 0):
            return Ranked([], False, (), kind)
        terms = tokenize(q.question)
        bq = view.bm25.query(terms)  # its document frequencies serve the key terms too
        df_of_term = dict(zip(bq.terms, bq.df.tolist(), strict=True))

        def df_of(wanted: list[str]) -> np.ndarray:
            return np.array([df_of_term[t] for t in wanted], np.int64)

        keys = key_terms(q.question, df_of, view.bm25.n)
        helpers = self._helpers() if view.total_rows >= PARALLEL_MIN_ROWS else None
        cands = retrieve(view, terms, qvec, s.depth, allowed, s.dense, helpers, s.torch_threads, bq)
        fused = cands.fused(s.fusion, s.fusion_weights, s.rrf_k)
        ranker = self._ranker()
        ordered, spans = (
            reorder(view, cands, fused, q.question, ranker) if ranker else (cands.order(fused), {})
        )
        dates = view.dates_of(cands.rows)
        results, hidden = collapse(cands, ordered, allowed, dates, q)
        decorate = Decorator(
            view, cands, fused, spans, kind, set(terms), q.question, self._span_model()
        )
        rule, n = AnswerRule.of(s), view.bm25.n
        absent = tuple(missing(keys))
        listed = in_order(results, q.sort, dates, view, cands)
        page = listed[q.offset : q.offset + q.k]
        decorate.prepare([*results[:3], *page])  # their answer spans in one batch
        top = [decorate.context(j) for _, j in results[:3]]
        found = rule.found(decorate.many(results[:3]), keys, n, top) and not absent
        hits = [  # only a hit that passes the answer rule on its own is marked as one
            replace(h, answers=found and rule.answers(h, keys, n, decorate.context(j), kind))
            for h, (_, j) in zip(decorate.many(page, first_rank=q.offset + 1), page, strict=True)
        ]
        counts = facets(view, cands, results, dates) if q.facets else None
        figures = figures_of(view, cands, results, q.question, keys)
        return Ranked(hits, found, absent, kind, len(results), hidden, counts, figures)

    # --- articles and health -------------------------------------------------------

    def article(self, source: str) -> tuple[dict[str, Any], list[Passage]]:
        """An indexed article's metadata and cleaned passages, or NotFound."""
        found = self.store().article(source)
        if found is None:
            raise NotFound(f"no indexed article called {source!r}")
        return found

    def passage(self, pid: object) -> tuple[Passage, dict[str, Any]]:
        """A live passage by its id, with its article's metadata, or NotFound."""
        store = self.store()
        p = store.passage(pid) if isinstance(pid, str) and len(pid) <= 16 else None
        found = store.article(p.source) if p is not None else None
        if p is None or found is None:  # (a live passage's article is live)
            raise NotFound(f"no passage with id {pid!r} in the serving index")
        return p, found[0]

    def quote(self, p: Passage, meta: dict[str, Any], link: str) -> Quote:
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
    ) -> list[dict[str, Any]]:
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
        out.sort(key=lambda r: str(r["file"]))
        return sorted(out, key=lambda r: r["date"] or "", reverse=True)

    def articles(self) -> dict[str, dict[str, Any]]:
        """Every live article's metadata by file name (read once per generation)."""
        return self.store().articles()

    def health(self) -> dict[str, Any]:
        """The serving generation; ``status`` "degraded" with the ``reason`` when the
        newest one is damaged and an older intact one serves."""
        index = self.index()
        state: dict[str, Any] = (
            {"status": "degraded", "reason": self.degraded} if self.degraded else {}
        )
        try:
            store = self.store(index).health()
        except IndexUnavailable as exc:  # a remote store that could not even be reached
            kind = (self._store_record(index) or {}).get("kind", "embedded")
            store = {"status": "degraded", "store": kind, "reason": exc.message}
        if store["status"] != "ok":
            state = {"status": "degraded", "reason": store["reason"]}
        state["store"] = store
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
    facets: dict[str, Any] | None = None
    figures: list[dict[str, Any]] | None = None
