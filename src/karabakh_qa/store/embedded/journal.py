"""The change journal, read side: which article files changed since the index last
read it, so that ``karabakh-qa index`` looks at those files instead of stat-ing the
whole folder (the watcher that writes it is ``watch.JournalWriter``).

Git's fsmonitor and Watchman solve the same problem the same way. A stat of every
file costs ~2.5 µs here (``find`` in C: 113 ms for 37,500 files), so a scan grows
with the archive however little changed; the journal makes the cost that of the
change. It is trusted only when it provably saw every change since the index last
read it:

- the watcher (``karabakh-qa journal``) holds an exclusive lock on ``journal/lock``
  for as long as it runs; no lock held, no journal;
- each watcher run has its own instance id, written on the log's first line, and
  the index remembers (``journal/read``) the instance and offset it read up to; a
  restarted watcher missed what happened while none ran, so the index scans once;
- before reading, ``index`` creates a cookie file in the folder and waits until the
  watcher logs it (Watchman's cookies): every change made before the cookie is then
  in the log above it;
- a folder created, moved or deleted, or an overflow of the kernel's event queue,
  is logged as ``null``: scan everything once.

The log holds one JSON value per line: the header object, then changed names
(strings), ``null`` or ``{"cookie": name}``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .files import write_bytes_atomic

log = logging.getLogger(__name__)

VERSION = 1
FOLDER = "journal"  # inside the index folder
COOKIE_PREFIX = ".karabakh-cookie-"
SYNC_TIMEOUT_S = 2.0  # the watcher normally logs a cookie within a few ms


def journal_paths(index_dir: Path) -> tuple[Path, Path, Path]:
    """(log, lock, read position) of the index's journal."""
    folder = index_dir / FOLDER
    return folder / "log", folder / "lock", folder / "read"


@dataclass
class Sync:
    """What the journal says changed: ``names`` (None: it cannot vouch, scan the
    folder); ``commit()`` records, after a successful build, that the index has
    seen everything up to this point."""

    names: list[str] | None
    commit: Callable[[], None]


def _writer_alive(lock_path: Path) -> bool:
    try:
        with open(lock_path) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False  # closing releases the shared lock we just took
    except OSError:
        return False


def _lines(fh: BinaryIO) -> Iterator[tuple[object, int]]:
    """Complete JSON lines from the file's position on, with the offset after each."""
    while True:
        at = fh.tell()
        line = fh.readline()
        if not line.endswith(b"\n"):  # the watcher is still writing it: read it next time
            fh.seek(at)
            return
        yield json.loads(line), fh.tell()


@contextlib.contextmanager
def _cookie(root: Path) -> Iterator[str]:
    name = f"{COOKIE_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
    path = root / name
    path.touch(exist_ok=False)
    try:
        yield name
    finally:
        path.unlink(missing_ok=True)


NOTHING = Sync(None, lambda: None)  # the journal cannot vouch: scan the folder


def sync(articles_dir: Path, index_dir: Path, timeout: float = SYNC_TIMEOUT_S) -> Sync:
    """Ask the journal what changed since the index last read it (see module doc).
    Whatever goes wrong with it (a read-only folder, a damaged log) means a scan."""
    try:
        return _sync(articles_dir, index_dir, timeout)
    except (OSError, ValueError) as exc:
        log.warning("the change journal cannot be used (%s); scanning the folder", exc)
        return NOTHING


def _sync(articles_dir: Path, index_dir: Path, timeout: float) -> Sync:
    log_path, lock_path, read_path = journal_paths(index_dir)
    nothing = NOTHING
    if not _writer_alive(lock_path):
        return nothing
    try:
        state = json.loads(read_path.read_text())
    except (OSError, ValueError):
        state = {}
    state = state if isinstance(state, dict) else {}
    root = articles_dir.resolve()
    with open(log_path, "rb") as fh, _cookie(root) as cookie:
        header = json.loads(fh.readline() or b"{}")
        if not isinstance(header, dict):
            return nothing
        if header.get("journal") != VERSION or header.get("folder") != str(root):
            return nothing
        same = state.get("instance") == header["instance"] and isinstance(state.get("offset"), int)
        if same:
            fh.seek(state["offset"])
        names: set[str] | None = set() if same else None
        deadline = time.monotonic() + timeout
        end = None
        while end is None:
            for value, offset in _lines(fh):
                if value == {"cookie": cookie}:
                    end = offset
                    break
                if value is None:
                    names = None
                elif isinstance(value, str) and names is not None:
                    names.add(value)
            if end is None:
                if time.monotonic() > deadline:
                    log.warning(
                        "the journal watcher did not answer within %.1f s; scanning", timeout
                    )
                    return nothing
                time.sleep(0.001)
    record = json.dumps({"instance": header["instance"], "offset": end}).encode()
    return Sync(
        sorted(names) if names is not None else None, lambda: write_bytes_atomic(read_path, record)
    )
