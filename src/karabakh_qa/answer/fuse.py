"""Fusion of the retrievers' evidence into one score per candidate.

Linear fusion: each feature (BM25, passage cosine, best-sentence cosine,
best-sentence term coverage) is normalised over the query's candidates
(z-score or min-max), then mixed with weights chosen on training data (see
README, "Retrieval quality"). Every candidate has every feature computed
exactly, so a passage found by only one retriever is not punished by a missing
value. Reciprocal rank fusion, which uses only the BM25 and dense ranks, is the
rank-only alternative.
"""

from __future__ import annotations

import numpy as np

METHODS = ("zscore", "minmax", "rrf")
FEATURES = ("bm25", "dense", "sentence", "coverage")


def normalise(values: np.ndarray, method: str) -> np.ndarray:
    """Scale one feature over the candidates; a constant feature becomes 0."""
    values = values.astype(np.float64)
    if len(values) == 0:
        return values
    if method == "zscore":
        std = float(np.std(values))
        return (values - float(np.mean(values))) / std if std > 1e-12 else values * 0.0
    if method == "minmax":
        lo, hi = float(np.min(values)), float(np.max(values))
        return (values - lo) / (hi - lo) if hi - lo > 1e-12 else values * 0.0
    raise ValueError(f"unknown normalisation {method!r}")


def ranks_of(candidates: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """1-based rank of each candidate in ``ranked``, 0 where absent."""
    position = {int(r): i + 1 for i, r in enumerate(ranked)}
    return np.array([position.get(int(c), 0) for c in candidates], dtype=np.int64)


def rrf(rank_lists: list[np.ndarray], k: int = 60) -> np.ndarray:
    """Sum of 1 / (k + rank) over the lists a candidate appears in (rank 0 = absent)."""
    total = np.zeros(len(rank_lists[0]), dtype=np.float64)
    for ranks in rank_lists:
        total += np.where(ranks > 0, 1.0 / (k + np.maximum(ranks, 1)), 0.0)
    return total


def fuse(
    features: np.ndarray,
    weights: tuple[float, ...],
    method: str = "zscore",
    ranks: list[np.ndarray] | None = None,
    rrf_k: int = 60,
) -> np.ndarray:
    """Fused score per candidate (higher is better).

    ``features`` is (len(FEATURES), candidates); ``ranks`` the BM25 and dense
    ranks, needed for ``method="rrf"``.
    """
    if method == "rrf":
        if ranks is None:
            raise ValueError("rrf needs the retrievers' ranks")
        return rrf(ranks, rrf_k)
    if method not in METHODS:
        raise ValueError(f"unknown fusion {method!r}; choose one of {', '.join(METHODS)}")
    if len(weights) != len(features):
        names = ", ".join(FEATURES)
        raise ValueError(f"need {len(features)} weights ({names}), got {len(weights)}")
    out = np.zeros(features.shape[1], dtype=np.float64)
    for weight, values in zip(weights, features, strict=True):
        if weight:
            out += weight * normalise(values, method)
    return out
