"""The query's hot loops, compiled (numba): BM25 accumulation and dot products of
8-bit codes with the question.

At 1M passages a query adds ~500k postings into a score array and rescores
~10k passage codes. In numpy each makes temporaries (a weighted copy of every
postings list, a gathered float copy of the codes). These loops
do the same arithmetic in one pass without them, and run with the GIL released
(``nogil``), so the dense and the BM25 halves of a query truly overlap.

Numbers are unchanged where it matters: a BM25 score is summed term by term in
the same order with the same float64 operations as before (still equal to
rank-bm25's); a code's dot product is summed in one fixed order per row
(vectorised by the compiler, the same code for every row), so a passage scores
the same whatever rows are scored with it. Compiled code is cached beside this
module (``cache=True``): the first process compiles once, the next load it.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def add_scores(out: np.ndarray, docs: np.ndarray, sat: np.ndarray, weight: float) -> None:
    """``out[docs] += weight * sat`` (``docs`` distinct, as a postings list is)."""
    for j in range(docs.shape[0]):
        out[docs[j]] += weight * sat[j]


@njit(nogil=True, cache=True, fastmath=True)
def code_dots(codes: np.ndarray, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For each of ``rows``: the dot product of its codes (uint8) with ``query``
    (float32), accumulated in float32 in one fixed order per row.

    Four rows are summed side by side: their codes are scattered over memory, and
    four independent streams keep four cache misses in flight instead of one (at
    1M passages ~10k rows a query: about half the time). A short last group repeats
    its last row, so every row goes through the same code and sums alike."""
    dim = codes.shape[1]
    n = rows.shape[0]
    out = np.empty(n, np.float64)
    for i in range(0, n, 4):
        last = n - 1
        r0 = rows[i]
        r1 = rows[min(i + 1, last)]
        r2 = rows[min(i + 2, last)]
        r3 = rows[min(i + 3, last)]
        a0 = np.float32(0.0)
        a1 = np.float32(0.0)
        a2 = np.float32(0.0)
        a3 = np.float32(0.0)
        for j in range(dim):
            qj = query[j]
            a0 += np.float32(codes[r0, j]) * qj
            a1 += np.float32(codes[r1, j]) * qj
            a2 += np.float32(codes[r2, j]) * qj
            a3 += np.float32(codes[r3, j]) * qj
        out[i] = a0
        if i + 1 < n:
            out[i + 1] = a1
        if i + 2 < n:
            out[i + 2] = a2
        if i + 3 < n:
            out[i + 3] = a3
    return out
