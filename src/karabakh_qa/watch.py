"""``index --watch``: rebuild, debounced, when article files change."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .errors import KarabakhError
from .journal import event_names
from .service import SearchService
from .store.embedded.build import BuildReport

log = logging.getLogger(__name__)


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
            if folder:
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
