"""Storage primitives: atomic writes, fsync, the build lock, dropping mapped pages.

Every rename, replace and fsync a build performs goes through the three
functions at the top of this module, so that a test can crash the build right
after the k-th one of them (tests/store/test_crash.py) and prove that the
serving generation survives every such crash.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import logging
import mmap
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ...errors import Conflict

log = logging.getLogger(__name__)


# What numpy raises on a damaged array file: a short or empty .npy is EOFError.
UNREADABLE = (OSError, ValueError, EOFError)

# numpy reads a .npy header with ast.literal_eval, and CPython 3.11's AST
# constructor keeps its recursion depth per interpreter, not per call: two threads
# parsing at once can fail with "SystemError: AST constructor recursion depth
# mismatch" (python/cpython#106905). A build in the job thread failed so while the
# refresher opened a generation; every .npy the index reads goes through this lock.
_NPY_LOCK = threading.Lock()


def load_npy(path: Path) -> np.ndarray:
    """The array stored in the .npy file ``path`` (no pickles), one thread at a time."""
    with _NPY_LOCK:
        array: np.ndarray = np.load(path, allow_pickle=False)
    return array


def rename(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` (a crash point)."""
    os.rename(src, dst)


def replace(src: Path, dst: Path) -> None:
    """Atomically replace ``dst`` by ``src`` (a crash point)."""
    os.replace(src, dst)


def fsync(path: Path) -> None:
    """Flush a file or a folder to disk (a crash point)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_name(folder: Path, stem: str) -> Path:
    """A fresh hidden name in ``folder``: stray ones are removed by the next build."""
    return folder / f".tmp-{stem}-{uuid.uuid4().hex[:12]}"


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: temporary file, fsync, replace."""
    tmp = tmp_name(path.parent, path.name)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        fsync(tmp)
        replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` without pickles (the caller fsyncs the folder's files)."""
    with open(path, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)


def fsync_tree(folder: Path) -> None:
    """fsync every file of ``folder``, then the folder itself."""
    for f in sorted(folder.iterdir()):
        fsync(f)
    fsync(folder)


def publish_folder(tmp: Path, final: Path) -> None:
    """Make a fully written temporary folder visible under its final name."""
    fsync_tree(tmp)
    rename(tmp, final)
    fsync(final.parent)


def remove(path: Path) -> None:
    """Delete a file or folder if present (clean-up never fails a build)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def build_lock(index_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold the index's build lock; refuse (or wait) when another build has it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise Conflict(
                f"another build is running on {index_dir} (pid {holder}); "
                "wait for it to finish or pass --wait"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def next_number(index_dir: Path, prefix: str) -> int:
    """One more than any ``prefix-NNNNNN`` name present (orphans of crashes included)."""
    best = 0
    for p in index_dir.glob(f"{prefix}-*"):
        digits = p.name[len(prefix) + 1 :].split(".")[0]
        if digits.isdigit():
            best = max(best, int(digits))
    return best + 1


def save_generation_array(index_dir: Path, name: str, array: np.ndarray) -> str:
    tmp = tmp_name(index_dir, name)
    save_array(tmp, array)
    fsync(tmp)
    rename(tmp, index_dir / name)
    return name


@functools.cache
def _madvise() -> Callable[[int, int, int], int]:
    """libc's madvise, typed once (a release calls it for every cold column)."""
    fn = ctypes.CDLL(None, use_errno=True).madvise
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return fn


def drop_pages(start: int, length: int) -> None:
    """madvise(MADV_DONTNEED) on a read-only file map's page range: its pages leave
    this process's resident set and stay in the page cache (the next read is a minor
    fault). Through ctypes, which releases the GIL while the kernel works, so that
    queries in other threads go on. Never call it on memory the process owns."""
    if not hasattr(mmap, "MADV_DONTNEED") or length <= 0:
        return
    if _madvise()(start, length, mmap.MADV_DONTNEED) != 0:
        log.warning("madvise failed: %s", os.strerror(ctypes.get_errno()))


def whole_pages(start: int, length: int) -> tuple[int, int]:
    """(start, length) of the whole pages inside a byte range (length 0 if none)."""
    page = mmap.PAGESIZE
    first, end = (start + page - 1) // page * page, (start + length) // page * page
    return first, max(0, end - first)


def drop_map_pages(data: mmap.mmap | bytes) -> None:
    """:func:`drop_pages` over a whole read-only ``mmap`` (nothing for bytes)."""
    if isinstance(data, mmap.mmap) and len(data):
        drop_pages(np.frombuffer(data, np.uint8).ctypes.data, len(data))


def resident_bytes() -> int:
    """This process's resident set (Linux /proc/self/statm; 0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * mmap.PAGESIZE
    except (OSError, ValueError, IndexError):
        return 0
