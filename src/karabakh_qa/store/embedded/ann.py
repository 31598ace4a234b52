"""Approximate dense search for large segments: sign bits, then exact rescoring.

Exact search reads every 8-bit passage code of a segment (38 MB at 100k
passages: memory-bound, ~4 ms here). For a segment above ``ANN_MIN_ROWS`` the
ANN first reads one bit per dimension (48 bytes a passage): whether each
component is above the segment's mean. The question is *not* reduced to bits:
each passage is scored as the question's dot product with its sign pattern
scaled by the mean deviation of each dimension (an asymmetric estimate, far
closer than a Hamming distance: on BBC News recall@100 0.999 against 0.977 at
the same depth). FAISS computes it with its 4-bit fast-scan product quantiser,
whose 16 centroids per group of 4 dimensions are exactly the 16 sign patterns.
The best ``rescore_depth`` rows are then scored exactly from their 8-bit codes
(the same cosines as exact search), so the ANN can miss a passage but never
scores one differently.

Nothing is stored: the bits are derived from the segment's codes when a
service opens the segment (or it is first searched), in a background thread,
and kept with the segment
(which every generation listing it shares). Until they are ready a query uses
exact search, so no query waits for an ANN index to be built. Parameters and
recall on real embeddings: README "Approximate search" and
``benchmarks/study_ann.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import cast

import faiss
import numpy as np

log = logging.getLogger(__name__)

ANN_MIN_ROWS = 20_000  # below this, exact search is already fast
RESCORE_MIN = 1_000  # rows rescored exactly at least ...
RESCORE_PER_K = 10  # ... or this many per passage asked for ...
RESCORE_SHARE = 0.01  # ... or this share of the segment, whichever is more
_CHUNK = 256  # rows per step of a build: FAISS holds the GIL while it adds (8,192 rows:
# 19 ms, a stall for every query in flight; 1,024: 2.5 ms; 256: 0.6 ms)


def rescore_depth(rows: int, k: int) -> int:
    """How many of the rows best by sign bits are rescored exactly for a top ``k``."""
    return min(rows, max(RESCORE_MIN, RESCORE_PER_K * k, int(rows * RESCORE_SHARE)))


def uses_ann(mode: str, rows: int) -> bool:
    """Whether a segment of ``rows`` is searched approximately under ``mode``."""
    return mode == "ann" or (mode == "auto" and rows >= ANN_MIN_ROWS)


class SignIndex:
    """Sign bits of a segment's codes (against their per-dimension mean) in a FAISS
    fast-scan index that scores them against the real-valued question; built once,
    in the background unless asked to wait."""

    def __init__(
        self,
        codes: np.ndarray,
        decode: Callable[[np.ndarray], np.ndarray],
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self.codes = codes
        self.decode = decode  # codes to the vectors they stand for
        self.release = release  # unmaps the codes the build read (all of them)
        self._index: faiss.IndexPQFastScan | None = None
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

    def _chunks(self) -> Iterator[np.ndarray]:
        for lo in range(0, len(self.codes), _CHUNK):
            yield self.decode(np.asarray(self.codes[lo : lo + _CHUNK]))

    def _build(self) -> None:
        try:
            self._index = self._built()  # published last: ``ready`` reads it without the lock
            self.release()
        except Exception:  # a failed build leaves exact search in place, loudly
            log.exception("sign bits of a %d-row segment could not be built", len(self.codes))

    def _built(self) -> faiss.IndexPQFastScan:
        rows, dim = self.codes.shape
        center = sum(c.sum(axis=0, dtype=np.float64) for c in self._chunks()) / max(1, rows)
        spread = sum(np.abs(c - center).sum(axis=0, dtype=np.float64) for c in self._chunks())
        scale = spread / max(1, rows)
        groups = dim // 4
        signs = np.array([[1.0 if j >> k & 1 else -1.0 for k in range(4)] for j in range(16)])
        centroids = np.empty((groups, 16, 4), np.float32)
        for m in range(groups):
            part = slice(4 * m, 4 * m + 4)
            centroids[m] = center[part] + signs * scale[part]
        index = faiss.IndexPQFastScan(dim, groups, 4, faiss.METRIC_INNER_PRODUCT)
        faiss.copy_array_to_vector(centroids.ravel(), index.pq.centroids)
        index.is_trained = True
        for chunk in self._chunks():
            index.add(chunk)  # the nearest centroid of each group is its sign pattern
        log.info("sign bits of %d rows ready", rows)
        return index

    def candidates(self, query: np.ndarray, depth: int) -> np.ndarray:
        """The ``depth`` rows whose sign patterns score best against ``query``."""
        index = cast(faiss.IndexPQFastScan, self._index)  # callers ask once ready() is True
        _, ids = index.search(query.reshape(1, -1).astype(np.float32), depth)
        rows: np.ndarray = ids[0][ids[0] >= 0].astype(np.int64)
        return rows
