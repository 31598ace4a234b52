"""Folder watching: ``index --watch`` rebuilds, debounced, when article files
change; ``karabakh-qa journal`` writes the change journal that ``index`` reads
(``store.embedded.journal``)."""

from __future__ import annotations

import fcntl
import json
import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, cast

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from .errors import Conflict, KarabakhError
from .ingest import ARTICLE_SUFFIXES
from .service import SearchService
from .store.embedded.build import BuildReport
from .store.embedded.journal import COOKIE_PREFIX, VERSION, journal_paths

log = logging.getLogger(__name__)

WATCHDOG_LOGGER = "watchdog.observers.inotify_c"  # where watchdog reports an overflow


def relevant(path: str, root: Path) -> bool:
    """An article file (not hidden, not a temporary upload) under ``root``."""
    p = Path(path)
    try:
        rel = p.relative_to(root)
    except ValueError:
        return False
    return p.suffix.lower() in ARTICLE_SUFFIXES and not any(
        part.startswith((".", "~")) for part in rel.parts
    )


def event_names(event: FileSystemEvent, root: Path) -> list[str] | None:
    """The article names a file-system event touches (often none); None when a
    folder was created, moved or deleted, so that only a scan can tell what changed."""
    if event.event_type in ("opened", "closed_no_write"):
        return []
    if event.is_directory and event.event_type in ("moved", "deleted", "created"):
        return None
    paths = [p for p in (event.src_path, getattr(event, "dest_path", "") or "") if p]
    return [Path(str(p)).relative_to(root).as_posix() for p in paths if relevant(str(p), root)]


class Debouncer(FileSystemEventHandler):
    """Calls ``action(names)`` once, ``delay`` seconds after the last relevant event,
    with the article files the events named (None: a folder changed, scan it all).
    A build then looks at those files only, whatever the size of the archive."""

    def __init__(
        self, root: Path, action: Callable[[list[str] | None], None], delay: float = 1.5
    ) -> None:
        self.root = root.resolve()
        self.action = action
        self.delay = delay
        self._timer: threading.Timer | None = None
        self._names: set[str] | None = set()
        self._lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        names = event_names(event, self.root)
        folder = names is None
        if not names and not folder:
            return
        with self._lock:
            if names is None:  # folder (``is None`` narrows ``names`` for the type checker)
                self._names = None
            elif self._names is not None:
                self._names.update(names)
            if self._timer:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            names, self._names = self._names, set()
        self.action(sorted(names) if names is not None else None)


def watch_folder(
    service: SearchService,
    on_build: Callable[[BuildReport], None] | None = None,
    delay: float = 1.5,
    stop: threading.Event | None = None,
) -> None:
    """Block, rebuilding incrementally after changes, until ``stop`` is set (or Ctrl-C)."""
    stop = stop or threading.Event()

    def rebuild(names: list[str] | None) -> None:
        try:
            report = service.build(wait=True, only=names)
        except KarabakhError as exc:
            log.error("rebuild failed, the serving index is unchanged: %s", exc.message)
            return
        if on_build:
            on_build(report)

    root = service.settings.articles_dir
    observer = Observer()
    observer.schedule(Debouncer(root, rebuild, delay), str(root), recursive=True)
    observer.start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        observer.stop()
        observer.join()


class _Overflow(logging.Handler):
    """Turns watchdog's "queue overflowed" warning into a ``null`` line."""

    def __init__(self, writer: JournalWriter) -> None:
        super().__init__(logging.WARNING)
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.writer.write(None)


class JournalWriter:
    """Watches ``articles_dir`` and appends what changed to the index's journal."""

    def __init__(self, articles_dir: Path, index_dir: Path) -> None:
        self.root = articles_dir.resolve()
        self.log_path, self.lock_path, _ = journal_paths(index_dir)
        self.instance = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._last: str | None = None
        self._fh: TextIO | None = None
        self._lock_fh: TextIO | None = None
        self._observer: BaseObserver | None = None
        self._overflow = _Overflow(self)

    def start(self) -> None:
        """Take the lock, start a fresh log and begin watching."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.lock_path, "a+")  # noqa: SIM115 (held while running)
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise Conflict(
                f"another journal watcher is running for {self.lock_path.parent}"
            ) from None
        # O_APPEND: every line lands at the end of the log, whoever else wrote there (a
        # "w" handle writes at its own offset, over what another hand appended)
        self._fh = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115
        self._fh.truncate(0)  # a fresh log for this instance
        header = {"journal": VERSION, "instance": self.instance, "folder": str(self.root)}
        self._fh.write(json.dumps(header) + "\n")
        self._fh.flush()
        logging.getLogger(WATCHDOG_LOGGER).addHandler(self._overflow)
        self._observer = Observer()
        # watchdog calls only the handler's dispatch(); its stubs ask for the handler class
        self._observer.schedule(self, str(self.root), recursive=True)  # type: ignore[arg-type]
        self._observer.start()
        log.info("journal %s watches %s", self.instance, self.root)

    def stop(self) -> None:
        logging.getLogger(WATCHDOG_LOGGER).removeHandler(self._overflow)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
        for fh in (self._fh, self._lock_fh):
            if fh is not None:
                fh.close()  # closing the lock file releases the lock

    def write(self, value: str | dict[str, str] | None) -> None:
        line = json.dumps(value)
        with self._lock:
            if line == self._last:  # a write fires several events for one file
                return
            self._last = line
            fh = cast(TextIO, self._fh)  # opened by start(), before anything writes
            fh.write(line + "\n")
            fh.flush()

    def dispatch(self, event: FileSystemEvent) -> None:
        """Called by watchdog's observer for every event under the folder."""
        path = Path(str(event.src_path))
        if event.event_type == "created" and path.name.startswith(COOKIE_PREFIX):
            self.write({"cookie": path.name})
            return
        names = event_names(event, self.root)
        if names is None:
            self.write(None)
        for name in names or ():
            self.write(name)
