"""Compact vectors: uniform codes on a fixed range; passages searched by FAISS.

Every embedding is L2-normalised; MiniLM's components stay within ±0.23 (the
largest of 150k components of SciFact abstracts is 0.224). Codes use one fixed
range per kind for all segments (``VectorCodec``), so a merge copies codes byte
for byte and a merged index scores exactly like a fresh build:

* passages: 8 bits on [-0.5, 0.5] (a step of 0.0039), in a FAISS
  ``IndexScalarQuantizer`` file opened with ``IO_FLAG_MMAP_IFC``: opening costs
  well under a millisecond at any size and the codes are shared page cache;
* sentences: 6 bits on [-0.25, 0.25] (a step of 0.0079), four codes packed in
  three bytes: 288 bytes a sentence instead of 384, and decoded only for the
  candidates of a query.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import cast

import faiss
import numpy as np

from . import files, kernels
from .ann import SignIndex, rescore_depth, uses_ann
from .manifest import VectorCodec

DEFAULT_CODEC = VectorCodec(kind="uniform", bits=8, low=-0.5, high=0.5)
SENTENCE_CODEC = VectorCodec(kind="uniform", bits=6, low=-0.25, high=0.25)
OVERFETCH_MAX = 2000  # deleted rows a search over-fetches and drops rather than filters


def set_dense_threads(threads: int) -> None:
    """Size FAISS's OpenMP pool (two threads on a busy 2-core box are slower than one)."""
    faiss.omp_set_num_threads(max(1, threads))


def encode(vectors: np.ndarray, codec: VectorCodec) -> np.ndarray:
    """Codes (one uint8 per component): the bin of each component on [low, high]."""
    levels = (1 << codec.bits) - 1
    scaled = np.array(vectors, dtype=np.float32)  # a copy, worked on in place
    scaled -= np.float32(codec.low)
    scaled *= np.float32(levels / (codec.high - codec.low))
    np.floor(scaled, out=scaled)
    np.clip(scaled, 0, levels, out=scaled)
    return scaled.astype(np.uint8)


def decode(codes: np.ndarray, codec: VectorCodec) -> np.ndarray:
    """Bin centres (for 8 bits, as FAISS's uniform scalar quantiser decodes them)."""
    step = np.float32((codec.high - codec.low) / ((1 << codec.bits) - 1))
    return (codes.astype(np.float32) + 0.5) * step + np.float32(codec.low)


def pack_codes(codes: np.ndarray, codec: VectorCodec) -> np.ndarray:
    """Codes as stored: 6-bit codes four to three bytes, 8-bit ones as they are
    (byte arithmetic: the bits shifted past a byte's top fall off by design)."""
    if codec.bits == 8:
        return codes
    c = np.ascontiguousarray(codes, dtype=np.uint8).reshape(len(codes), codes.shape[1] // 4, 4)
    out = np.empty((len(codes), codes.shape[1] // 4, 3), dtype=np.uint8)
    out[..., 0] = c[..., 0] | (c[..., 1] << 6)
    out[..., 1] = (c[..., 1] >> 2) | (c[..., 2] << 4)
    out[..., 2] = (c[..., 2] >> 4) | (c[..., 3] << 2)
    return out.reshape(len(codes), codes.shape[1] // 4 * 3)


def unpack_codes(stored: np.ndarray, codec: VectorCodec) -> np.ndarray:
    """The inverse of :func:`pack_codes` (byte arithmetic only, no widening)."""
    if codec.bits == 8:
        return stored
    b = stored.reshape(len(stored), stored.shape[1] // 3, 3)
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    out = np.empty((len(stored), stored.shape[1] // 3, 4), dtype=np.uint8)
    out[..., 0] = b0 & 63
    out[..., 1] = (b0 >> 6) | ((b1 & 15) << 2)
    out[..., 2] = (b1 >> 4) | ((b2 & 3) << 4)
    out[..., 3] = b2 >> 2
    return out.reshape(len(stored), -1)


def cosines(
    stored: np.ndarray, query: np.ndarray, codec: VectorCodec, rows: np.ndarray | None = None
) -> np.ndarray:
    """Exact cosines of decoded codes (of ``rows`` of ``stored``, or all) with ``query``:
    step * (codes . q) + offset * sum(q), each row summed in one fixed order
    (:func:`.kernels.code_dots`), so a row scores the same whatever rows come with it.
    8-bit codes are read where they lie; packed ones are unpacked first."""
    if codec.bits != 8:
        stored = unpack_codes(stored if rows is None else stored[rows], codec)
        rows = None
    if rows is None:
        rows = np.arange(len(stored))
    q = np.ascontiguousarray(query, dtype=np.float32)
    step = (codec.high - codec.low) / ((1 << codec.bits) - 1)
    offset = codec.low + 0.5 * step
    dots = kernels.code_dots(stored, np.asarray(rows, np.int64), q)
    return step * dots + offset * float(q.sum())


def write_index(path: Path, codes: np.ndarray, dim: int, codec: VectorCodec) -> None:
    """A FAISS inner-product index holding exactly ``codes``."""
    index = faiss.IndexScalarQuantizer(
        dim, faiss.ScalarQuantizer.QT_8bit_uniform, faiss.METRIC_INNER_PRODUCT
    )
    params = np.array([codec.low, codec.high - codec.low], dtype=np.float32)
    faiss.copy_array_to_vector(params, index.sq.trained)
    index.is_trained = True
    if len(codes):
        index.add_sa_codes(np.ascontiguousarray(codes, dtype=np.uint8))
    faiss.write_index(index, str(path))


def _file_range(
    codes: faiss.MaybeOwnedVectorUInt8 | faiss.UInt8Vector, path: Path
) -> tuple[int, int] | None:
    """The whole pages of FAISS's codes, if they lie in a read-only map of ``path``
    (IO_FLAG_MMAP_IFC); None otherwise (codes FAISS owns must never be dropped)."""
    start, length = files.whole_pages(int(codes.data()), int(codes.size()))
    end = start + length
    if not length:
        return None
    target = os.path.realpath(path)
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                span, perms, _, _, _, *name = line.split()
                lo, hi = (int(x, 16) for x in span.split("-"))
                if lo <= start and end <= hi:
                    mapped = bool(name) and os.path.realpath(name[0]) == target
                    return (start, end - start) if mapped and "w" not in perms else None
    except OSError:
        return None
    return None


class SegmentVectors:
    """Top-k and exact scores over one segment's passage codes."""

    def __init__(self, path: Path, rows: int, dim: int, codec: VectorCodec) -> None:
        # read_index is typed as returning the base Index; FAISS downcasts to the class
        # write_index wrote. cast() only informs the type checker.
        self.index = cast(
            faiss.IndexScalarQuantizer, faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        )
        self.rows, self.dim, self.codec = rows, dim, codec
        # The codes are the file's last rows*dim bytes: mapped, not copied (a plain
        # ndarray view of the map: indexing a np.memmap costs several times more).
        with open(path, "rb") as fh:
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        n = rows * dim
        self.codes = np.frombuffer(self._map, np.uint8, n, len(self._map) - n).reshape(rows, dim)
        self._path = path
        self._faiss_range: tuple[int, int] | tuple[()] | None = None  # found on first release
        self.signs = SignIndex(self.codes, lambda codes: decode(codes, codec), self.release)

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        deleted: np.ndarray | None = None,
        live_bits: np.ndarray | None = None,
        mode: str = "exact",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, local rows) among ``allowed`` rows, or else among all rows
        but the sorted ``deleted`` ones (``live_bits``: their packed complement).

        A small allowed set is scored directly; a large one goes through FAISS
        with a bitmap selector. A few deleted rows are over-fetched and dropped,
        many are skipped by the selector. ``mode`` (exact, ann, auto) may send an
        unfiltered search through the sign-bit ANN (:mod:`.ann`)."""
        if allowed is not None:
            limit = len(allowed)
        else:
            limit = self.rows - (0 if deleted is None else len(deleted))
        k = min(k, limit)
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        if allowed is None and uses_ann(mode, self.rows) and self.signs.ready(mode == "ann"):
            return self._search_ann(query, k, deleted)
        if allowed is not None and len(allowed) * 8 < self.rows:
            scores = self.scores_for(query, allowed)
            top = np.argpartition(-scores, k - 1)[:k] if k < len(allowed) else np.arange(k)
            return scores[top], allowed[top]
        if allowed is not None:
            bitmap = np.zeros(self.rows, dtype=bool)
            bitmap[allowed] = True
            live_bits = np.packbits(bitmap, bitorder="little")
        elif deleted is not None and len(deleted) <= OVERFETCH_MAX:
            scores, ids = self._search(query, min(k + len(deleted), self.rows), None)
            keep = ~np.isin(ids, deleted)
            return scores[keep][:k], ids[keep][:k]
        return self._search(query, k, live_bits)

    def _search(
        self, query: np.ndarray, k: int, live_bits: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        params = None
        if live_bits is not None:
            selector = faiss.IDSelectorBitmap(self.rows, faiss.swig_ptr(live_bits))
            # FAISS's Python wrapper takes the fields as keywords; its stubs list no arguments
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        scores, ids = self.index.search(query.reshape(1, -1).astype(np.float32), k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep].astype(np.int64)

    def _search_ann(
        self, query: np.ndarray, k: int, deleted: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rows best by sign bits, rescored exactly; deleted rows dropped."""
        gone = 0 if deleted is None else len(deleted)
        depth = min(self.rows, rescore_depth(self.rows, k) + gone)
        rows = self.signs.candidates(query, depth)
        if gone and deleted is not None:  # gone implies deleted (this only narrows its type)
            rows = rows[~np.isin(rows, deleted)]
        rows = np.sort(rows)  # ascending rows read the map in order
        scores = self.scores_for(query, rows)
        top = np.argpartition(-scores, k - 1)[:k] if k < len(rows) else np.arange(len(rows))
        return scores[top], rows[top]

    def release(self) -> None:
        """Unmap the code pages read so far, through our map and FAISS's own (exact
        search reads every code of a segment through it; ``files.drop_pages``)."""
        files.drop_map_pages(self._map)
        if self._faiss_range is None:
            self._faiss_range = _file_range(self.index.codes, self._path) or ()
        if self._faiss_range:
            files.drop_pages(*self._faiss_range)

    def scores_for(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Cosine of ``query`` with the decoded vectors of ``rows``."""
        return cosines(self.codes, query, self.codec, rows)
