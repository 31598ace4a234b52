"""Approximate dense search for large segments: sign bits, then exact rescoring.

Exact search reads every 8-bit passage code of a segment (38 MB at 100k
passages: memory-bound, ~4 ms here). For a segment above ``ANN_MIN_ROWS`` the
ANN reads one bit per dimension instead (48 bytes a passage): the sign of each
component against the segment's mean code. FAISS's binary index ranks the rows
by Hamming distance to the question's bits; the best ``rescore_depth`` of them
are scored exactly from their 8-bit codes (the same cosines as exact search),
so the ANN can only miss a passage, never score one differently.

Nothing is stored: the bits are derived from the segment's codes when the
segment is first searched, in a background thread, and kept with the segment
(which every generation listing it shares). Until they are ready a query uses
exact search, so no query waits for an ANN index to be built. Parameters and
recall on real embeddings: README "Approximate search" and
``benchmarks/study_ann.py``.
"""

from __future__ import annotations

import logging
import threading

import faiss
import numpy as np

log = logging.getLogger(__name__)

ANN_MIN_ROWS = 20_000  # below this, exact search is already fast
RESCORE_MIN = 1_000  # rows rescored exactly at least ...
RESCORE_SHARE = 0.01  # ... or this share of the segment, whichever is more
_CHUNK = 65_536


def rescore_depth(rows: int, k: int) -> int:
    """How many Hamming-nearest rows are rescored exactly for a top ``k``."""
    return min(rows, max(RESCORE_MIN, 10 * k, int(rows * RESCORE_SHARE)))


def uses_ann(mode: str, rows: int) -> bool:
    """Whether a segment of ``rows`` is searched approximately under ``mode``."""
    return mode == "ann" or (mode == "auto" and rows >= ANN_MIN_ROWS)


class SignIndex:
    """Sign bits of a segment's codes against their per-dimension mean, in a FAISS
    binary index; built once, in the background unless asked to wait."""

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = codes
        self._index: faiss.IndexBinaryFlat | None = None
        self._center: np.ndarray | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ready(self, wait: bool) -> bool:
        """Whether the bits are built; starts building them if not (and waits if asked)."""
        if self._index is not None:
            return True
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._build, daemon=True)
                self._thread.start()
            thread = self._thread
        if wait:
            thread.join()
        return self._index is not None

    def _build(self) -> None:
        rows, dim = self.codes.shape
        total = np.zeros(dim, np.float64)
        for lo in range(0, rows, _CHUNK):
            total += np.asarray(self.codes[lo : lo + _CHUNK]).sum(axis=0, dtype=np.float64)
        center = (total / max(1, rows)).astype(np.float32)
        index = faiss.IndexBinaryFlat(dim)
        for lo in range(0, rows, _CHUNK):
            index.add(np.packbits(np.asarray(self.codes[lo : lo + _CHUNK]) > center, axis=1))
        self._center = center
        self._index = index  # published last: ``ready`` reads it without the lock
        log.info("sign bits of %d rows ready", rows)

    def candidates(self, query_codes: np.ndarray, depth: int) -> np.ndarray:
        """The ``depth`` rows nearest to the question's bits (Hamming distance)."""
        bits = np.packbits(query_codes.astype(np.float32) > self._center)[None, :]
        _, ids = self._index.search(bits, depth)
        return ids[0][ids[0] >= 0].astype(np.int64)
