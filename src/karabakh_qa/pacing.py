"""Background chores that give way to queries.

A server's refresher opens new generations, warms their caches, frees the old
ones and unmaps pages, beside the queries, on a 2-core machine. Run in one go,
such a chore (warming a 1M generation: ~40 ms alone, 130-160 ms beside queries)
slows whichever query is in flight, and the query straddling a switch was the
slowest one in the run. The chore is cut into small steps instead, and between
steps it waits for a query to finish (or for none to be in flight), so that a
query overlaps at most about one step (``SLICE_S``). Like the I/O schedulers'
idle class, but for work inside one process; ``MAX_WAIT_S`` keeps a chore
going under a load that never pauses.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

SLICE_S = 0.002  # a chore works this long between two waits
MAX_WAIT_S = 0.005  # ... and waits at most this long for a query to finish


class Pacer:
    """Counts queries in flight; chores call :meth:`pause` between their steps."""

    def __init__(self, slice_s: float = SLICE_S, max_wait_s: float = MAX_WAIT_S) -> None:
        self.slice_s = slice_s
        self.max_wait_s = max_wait_s
        self._inflight = 0
        self._finished = threading.Condition()
        self._since = time.perf_counter()

    @contextlib.contextmanager
    def query(self) -> Iterator[None]:
        """Around each query: chores wait for its end."""
        with self._finished:
            self._inflight += 1
        try:
            yield
        finally:
            with self._finished:
                self._inflight -= 1
                self._finished.notify_all()

    def pause(self) -> None:
        """Between two steps of a chore: once it has worked ``slice_s``, wait until a
        query finishes (at once when none is in flight)."""
        if time.perf_counter() - self._since < self.slice_s:
            return
        with self._finished:
            if self._inflight:
                self._finished.wait(self.max_wait_s)
        self._since = time.perf_counter()

    def start(self) -> None:
        """A chore begins: its first slice starts now."""
        self._since = time.perf_counter()


def no_pause() -> None:
    """The pause of a chore nobody needs to give way to (a build, a test)."""
