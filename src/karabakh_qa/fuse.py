"""Fusion of the sparse and dense rankings.

Linear fusion normalises each retriever's scores (z-score or min-max over its
own top-``depth`` list, so the two scales become comparable) and mixes them
with a weight; reciprocal rank fusion is the rank-only alternative. Every
candidate gets its *exact* score from both retrievers, so a passage found by
only one of them is not punished by a missing value.
"""

from __future__ import annotations

import numpy as np

METHODS = ("zscore", "minmax", "rrf")


def normalise(scores: np.ndarray, reference: np.ndarray, method: str) -> np.ndarray:
    """Scale ``scores`` by the statistics of ``reference`` (a retriever's top list)."""
    if len(reference) == 0:
        return np.zeros_like(scores, dtype=np.float64)
    if method == "zscore":
        std = float(np.std(reference))
        return (scores - float(np.mean(reference))) / (std if std > 1e-12 else 1.0)
    if method == "minmax":
        lo, hi = float(np.min(reference)), float(np.max(reference))
        return (scores - lo) / (hi - lo if hi - lo > 1e-12 else 1.0)
    raise ValueError(f"unknown normalisation {method!r}")


def ranks_of(candidates: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """1-based rank of each candidate in ``ranked``, 0 where absent."""
    position = {int(r): i + 1 for i, r in enumerate(ranked)}
    return np.array([position.get(int(c), 0) for c in candidates], dtype=np.int64)


def fuse(
    candidates: np.ndarray,
    sparse_scores: np.ndarray,
    dense_scores: np.ndarray,
    sparse_top: np.ndarray,
    dense_top: np.ndarray,
    sparse_ranks: np.ndarray,
    dense_ranks: np.ndarray,
    method: str = "zscore",
    dense_weight: float = 0.5,
    rrf_k: int = 60,
) -> np.ndarray:
    """Fused score of each candidate (higher is better).

    ``*_scores`` are the exact scores of the candidates; ``*_top`` the scores
    of each retriever's own top list (the normalisation reference);
    ``*_ranks`` 1-based ranks in those lists, 0 when a candidate is not in one.
    """
    if method == "rrf":

        def rrf(ranks: np.ndarray) -> np.ndarray:
            return np.where(ranks > 0, 1.0 / (rrf_k + np.maximum(ranks, 1)), 0.0)

        return rrf(sparse_ranks) + rrf(dense_ranks)
    if method not in METHODS:
        raise ValueError(f"unknown fusion {method!r}; choose one of {', '.join(METHODS)}")
    s = normalise(sparse_scores.astype(np.float64), sparse_top.astype(np.float64), method)
    d = normalise(dense_scores.astype(np.float64), dense_top.astype(np.float64), method)
    return (1 - dense_weight) * s + dense_weight * d
