"""Dense retrieval: normalised embeddings in a FAISS inner-product index."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np


def set_dense_threads(threads: int) -> None:
    """Size FAISS's OpenMP pool (two threads on a busy 2-core box are slower than one)."""
    faiss.omp_set_num_threads(max(1, threads))


class DenseIndex:
    """Exact inner-product search over L2-normalised float32 vectors (cosine)."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index

    @classmethod
    def build(cls, vectors: np.ndarray, dim: int) -> DenseIndex:
        index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def vectors(self) -> np.ndarray:
        """The stored vectors as a read-only numpy view (no copy)."""
        n, d = self.size, self.dim
        if n == 0:
            return np.zeros((0, d), dtype=np.float32)
        flat = faiss.rev_swig_ptr(self.index.get_xb(), n * d)
        view = np.asarray(flat).reshape(n, d)
        view.flags.writeable = False
        return view

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, row ids), best first, optionally among ``allowed`` rows.

        A small allowed set is scored directly; a large one goes through FAISS
        with an ID selector (gathering most of the matrix would cost more)."""
        q = query.reshape(1, -1).astype(np.float32)
        if allowed is not None and len(allowed) * 5 < self.size:
            scores = self.scores_for(query, allowed)
            k = min(k, len(allowed))
            top = np.argpartition(-scores, k - 1)[:k] if 0 < k < len(allowed) else np.arange(k)
            order = top[np.lexsort((allowed[top], -scores[top]))]
            return scores[order], allowed[order]
        k = min(k, self.size if allowed is None else len(allowed))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed.astype(np.int64)))
        scores, ids = self.index.search(q, k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep].astype(np.int64)

    def scores_for(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact cosine of ``query`` with the given rows."""
        return self.vectors[rows] @ query.astype(np.float32)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        return cls(faiss.read_index(str(path)))
