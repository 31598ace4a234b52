"""One immutable segment: the articles of one build (or one merge), written once.

A segment folder ``seg-NNNNNN/`` holds three files:

* ``meta.json``: counts, dimension, where each column is and every file's size;
* ``columns.bin``: every column back to back (a compound file: one fsync), each
  aligned to 64 bytes, per row (passage) in order:

  =======================  ===================================================
  ``articles_blob/_off``   zlib JSON per article (title, date, url ...), offsets
  ``article_*``            names, sha256, size, mtime, row bounds (for the diff)
  ``passages_blob/_off``   zlib JSON per passage (paragraph, part, section, text)
  ``ids``, ``owner``       passage ids (S16); the article of each row
  ``lengths``              BM25 length of each row (raw, no idf baked in)
  ``terms``, ``postings_*`` sorted UTF-8 vocabulary, CSC postings of raw tf
  ``sent_*``               sentence bounds, spans, codes and term ids
  ``band_values/_rows``    MinHash LSH band hashes, sorted per band with their rows
  ``minhash``              64 MinHash values (8 bits), to skip hopeless candidates
  ``article_band_*``       per article: LSH bands of its word 5-shingles (versions),
                           as an inverted index like ``band_*``
  ``article_minhash``      per article: 64 MinHash values (8 bits), to skip hopeless ones
  =======================  ===================================================

* ``vectors.faiss``: 8-bit passage codes (see :mod:`.vectors`).

``columns.bin`` is mapped once and every column is a plain ndarray view of the
map; records are read one at a time through their offsets. Nothing is pickled
and nothing is parsed whole.
"""

from __future__ import annotations

import json
import mmap
import os
import weakref
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ...dedup import band_index, range_positions
from ...errors import IndexUnavailable
from ...records import Passage, outlet_of, safe_url
from . import files, vectors
from .manifest import IndexCorrupt, VectorCodec

SEGMENT_SCHEMA = 10  # 4: compound file, multiply-shift MinHash; 5: band index; 8: articles'
# shingle signatures as a band index; 9: no sha256 column (the article record has
# it), 32-bit record offsets where they fit; 10: articles' bands of content-word bigrams
COLUMNS_FILE = "columns.bin"
ALIGN = 64  # every column starts on a cache line
FINDS_BEFORE_INDEX = 8  # name lookups by scanning before a segment builds its name dict
ARRAYS = (
    "article_names",
    "article_size",
    "article_mtime",
    "article_rows",
    "articles_off",
    "articles_blob",
    "passages_off",
    "passages_blob",
    "ids",
    "owner",
    "lengths",
    "terms",
    "postings_ptr",
    "postings_docs",
    "postings_tf",
    "sent_bounds",
    "sent_spans",
    "sent_codes",
    "sent_term_ptr",
    "sent_term_ids",
    "band_values",
    "band_rows",
    "minhash",
    "article_band_values",
    "article_band_rows",
    "article_minhash",
)


@dataclass
class SegmentColumns:
    """Everything a segment holds, in memory, ready to be written."""

    article_names: np.ndarray  # (a,) str
    article_size: np.ndarray  # (a,) int64
    article_mtime: np.ndarray  # (a,) int64 ns
    article_rows: np.ndarray  # (a+1,) int64: article i owns rows [i], [i+1]
    article_blobs: list[bytes]
    passage_blobs: list[bytes]
    ids: np.ndarray  # (n,) S16
    lengths: np.ndarray  # (n,) int32
    terms: np.ndarray  # (v,) str, sorted
    postings_ptr: np.ndarray  # (v+1,) int64
    postings_docs: np.ndarray  # int32 rows, ascending within a term
    postings_tf: np.ndarray  # uint16
    codes: np.ndarray  # (n, dim) uint8
    sent_bounds: np.ndarray  # (n+1,) int64
    sent_spans: np.ndarray  # (m, 2) uint16 offsets within the passage text
    sent_codes: np.ndarray  # (m, packed width) uint8, see vectors.pack
    sent_term_ptr: np.ndarray  # (m+1,) int64
    sent_term_ids: np.ndarray  # int32 into ``terms``
    bands: np.ndarray  # (n, bands) uint32
    minhash: np.ndarray  # (n, 64) uint8: MinHash values, low 8 bits
    article_bands: np.ndarray  # (a, 32) uint32: LSH bands of each article's word shingles
    article_minhash: np.ndarray  # (a, 64) uint8: its MinHash values, low 8 bits

    @property
    def rows(self) -> int:
        return len(self.ids)


def pack(record: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(record, ensure_ascii=False).encode("utf-8"), 6)


def unpack(blob: bytes) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(zlib.decompress(blob))
    return record


def _blobs(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length records as (offsets, one uint8 array of them all); the offsets
    are 32-bit while the records fit in 4 GiB (a merge of 10M passages would not)."""
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in blobs], out=offsets[1:])
    if offsets[-1] < 2**32:
        offsets = offsets.astype(np.uint32)
    return offsets, np.frombuffer(b"".join(blobs), dtype=np.uint8)


def _write_columns(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Every array back to back in one file (a compound file, as Lucene writes for
    small segments: one fsync instead of one per array), each aligned to ALIGN
    bytes; returns where each one is, for ``meta.json``."""
    where: dict[str, dict[str, Any]] = {}
    with open(path, "wb") as fh:
        pos = 0
        for key, array in arrays.items():
            array = np.ascontiguousarray(array)
            pad = -pos % ALIGN
            fh.write(b"\0" * pad)
            pos += pad
            where[key] = {"offset": pos, "dtype": array.dtype.str, "shape": list(array.shape)}
            # numpy's stubs give ndarray the buffer protocol only from Python 3.12 on
            fh.write(memoryview(array.reshape(-1).view(np.uint8)))  # type: ignore[arg-type]
            pos += array.nbytes
    return where


def _read_columns(
    path: Path, where: dict[str, dict[str, Any]]
) -> tuple[mmap.mmap | bytes, dict[str, np.ndarray]]:
    """The map of ``path`` and plain ndarray views of its columns (no copies)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    out: dict[str, np.ndarray] = {}
    for key, w in where.items():
        dtype = np.dtype(w["dtype"])
        count = int(np.prod(w["shape"], dtype=np.int64))
        view = np.frombuffer(data, dtype=dtype, count=count, offset=w["offset"] if count else 0)
        out[key] = view.reshape(w["shape"])
    return data, out


# Columns a query reads a few scattered rows of (its candidates), or that only builds
# read: what a server unmaps now and then (Segment.release).
COLD_COLUMNS = (
    "sent_codes", "sent_term_ids", "passages_blob", "articles_blob",
    "minhash", "band_values", "band_rows",
    "article_band_values", "article_band_rows", "article_minhash",
)  # fmt: skip


def _pointers(ptr: np.ndarray) -> np.ndarray:
    """Offsets as int32 while they fit (half the bytes), else int64."""
    small = len(ptr) == 0 or int(ptr[-1]) < np.iinfo(np.int32).max
    return ptr.astype(np.int32 if small else np.int64)


def _utf8(terms: np.ndarray) -> np.ndarray:
    """A sorted vocabulary as UTF-8 bytes (a merge hands it over already encoded)."""
    if len(terms) == 0:
        return np.zeros(0, "S1")
    if terms.dtype.kind == "S":
        return terms
    return np.char.encode(terms.astype(str), "utf-8")


def write_segment(folder: Path, name: str, cols: SegmentColumns, codec: VectorCodec) -> None:
    """Write ``cols`` into the fresh folder ``folder`` (published by the caller)."""
    folder.mkdir(parents=True)
    dim = int(cols.codes.shape[1])
    articles_off, articles_blob = _blobs(cols.article_blobs)
    passages_off, passages_blob = _blobs(cols.passage_blobs)
    band_values, band_rows = band_index(cols.bands)
    article_values, article_rows = band_index(cols.article_bands)
    arrays = {
        "article_names": cols.article_names.astype(str),
        "article_size": cols.article_size.astype(np.int64),
        "article_mtime": cols.article_mtime.astype(np.int64),
        "article_rows": cols.article_rows.astype(np.int64),
        "articles_off": articles_off,
        "articles_blob": articles_blob,
        "passages_off": passages_off,
        "passages_blob": passages_blob,
        "ids": cols.ids.astype("S16"),
        "owner": np.repeat(
            np.arange(len(cols.article_names), dtype=np.int32), np.diff(cols.article_rows)
        ),
        "lengths": cols.lengths.astype(np.int32),
        # UTF-8 bytes sort like the code points they encode: the order is kept.
        "terms": _utf8(cols.terms),
        "postings_ptr": cols.postings_ptr.astype(np.int64),
        "postings_docs": cols.postings_docs.astype(np.int32),
        "postings_tf": cols.postings_tf.astype(np.uint16),
        "sent_bounds": _pointers(cols.sent_bounds),
        "sent_spans": cols.sent_spans.astype(np.uint16).reshape(-1, 2),
        "sent_codes": cols.sent_codes.astype(np.uint8).reshape(len(cols.sent_spans), -1),
        "sent_term_ptr": _pointers(cols.sent_term_ptr),
        "sent_term_ids": cols.sent_term_ids.astype(np.int32),
        # Stored as an inverted index, band by band (see dedup.band_index).
        "band_values": band_values,
        "band_rows": band_rows,
        "minhash": cols.minhash.astype(np.uint8),
        # Stored as an inverted index too (candidates are binary searches away).
        "article_band_values": article_values,
        "article_band_rows": article_rows,
        "article_minhash": cols.article_minhash.astype(np.uint8),
    }
    columns = _write_columns(folder / COLUMNS_FILE, arrays)
    vectors.write_index(folder / "vectors.faiss", cols.codes, dim, codec)
    meta = {
        "schema": SEGMENT_SCHEMA,
        "name": name,
        "rows": cols.rows,
        "articles": len(cols.article_names),
        "sentences": int(len(cols.sent_spans)),
        "dim": dim,
        "vocab": int(len(cols.terms)),
        "total_length": int(cols.lengths.sum()),
        "columns": columns,
        "files": {f.name: f.stat().st_size for f in sorted(folder.iterdir())},
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


class Segment:
    """A written segment, opened read-only; shared by every generation that lists it."""

    def __init__(self, folder: Path, codec: VectorCodec, sentence_codec: VectorCodec) -> None:
        self.folder = folder
        self.name = folder.name
        meta_path = folder / "meta.json"
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorrupt(
                f"segment file {meta_path} is unreadable ({exc}): run `karabakh-qa index --repair`"
            ) from None
        if self.meta.get("schema") != SEGMENT_SCHEMA:
            raise IndexUnavailable(
                f"segment {folder} has layout {self.meta.get('schema')}, this version reads "
                f"{SEGMENT_SCHEMA}: run `karabakh-qa index --full`"
            )
        self.check_sizes()
        try:
            # Plain ndarray views of the maps: indexing a np.memmap costs ~5x more.
            where = self.meta["columns"]
            missing = [key for key in ARRAYS if key not in where]
            if missing:
                raise ValueError(f"meta.json lists no column {', '.join(missing)}")
            self._map, self.a = _read_columns(folder / COLUMNS_FILE, where)
            self.rows = int(self.meta["rows"])
            self.dim = int(self.meta["dim"])
            self.vectors = vectors.SegmentVectors(
                folder / "vectors.faiss", self.rows, self.dim, codec
            )
            self._cold = ColdReads(folder / COLUMNS_FILE, where)
            self._passages = _Records(self._cold, "passages_blob", self.a["passages_off"])
            self._articles = _Records(self._cold, "articles_blob", self.a["articles_off"])
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexCorrupt(
                f"segment {folder} is unreadable ({exc}): run `karabakh-qa index --repair`"
            ) from None
        self.codec = codec
        self.sentence_codec = sentence_codec
        self._article_cache: dict[int, dict[str, Any]] = {}
        self._finds = 0  # name lookups done without article_index
        # derived per-row values other modules keep
        self.memo: dict[tuple[Any, ...], dict[Any, Any]] = {}

    def check_sizes(self) -> None:
        """Every file the segment wrote is there with its written size."""
        for fname, size in self.meta["files"].items():
            path = self.folder / fname
            try:
                actual = path.stat().st_size
            except OSError:
                actual = -1
            if actual != size:
                raise IndexCorrupt(
                    f"segment file {path} is {'missing' if actual < 0 else 'truncated or altered'}"
                    f" ({actual} bytes, {size} written): run `karabakh-qa index --repair`"
                )

    # --- records ---------------------------------------------------------------

    def article_record(self, i: int) -> dict[str, Any]:
        """Article ``i``'s metadata (a copy; the last few hundred are kept decoded)."""
        found = self._article_cache.get(i)
        if found is None:
            found = unpack(self._articles.get(i))
            if len(self._article_cache) >= 512:
                self._article_cache.clear()
            self._article_cache[i] = found
        return dict(found)

    def passage(self, row: int, article: dict[str, Any] | None = None) -> Passage:
        """The passage at ``row``, with its article's metadata (group left empty)."""
        rec = unpack(self._passages.get(row))
        art = article or self.article_record(int(self.a["owner"][row]))
        pid = self.a["ids"][row].decode()
        return Passage(
            id=pid,
            source=art["source"],
            paragraph=rec["paragraph"],
            part=rec["part"],
            section=rec["section"],
            start=rec["start"],
            end=rec["end"],
            text=rec["text"],
            date=art["date"],
            date_source=art["date_source"],
            title=art["title"],
            group=pid,
            outlet=outlet_of(art.get("publisher"), art.get("url")),
            url=safe_url(art.get("url")),
        )

    def passage_blob(self, row: int) -> bytes:
        return self._passages.get(row)

    def article_blob(self, i: int) -> bytes:
        return self._articles.get(i)

    def sentences_of(self, local: np.ndarray) -> SentenceRows:
        """The sentences of the passages at ``local`` rows, compacted: their codes and
        term ids read from disk (ColdReads), the passages renumbered 0..n-1."""
        bounds, term_ptr = self.a["sent_bounds"], self.a["sent_term_ptr"]
        lo = np.asarray(bounds[local], np.int64)
        hi = np.asarray(bounds[np.asarray(local) + 1], np.int64)
        new_bounds = np.zeros(len(local) + 1, np.int64)
        np.cumsum(hi - lo, out=new_bounds[1:])
        # every sentence of those passages, in order, then its term-id pointers rebased
        sent = range_positions(lo, hi - lo)
        n_terms = term_ptr[sent + 1].astype(np.int64) - term_ptr[sent]
        new_ptr = np.zeros(len(sent) + 1, np.int64)
        np.cumsum(n_terms, out=new_ptr[1:])
        return SentenceRows(
            new_bounds,
            self._cold.rows("sent_codes", lo, hi),
            new_ptr,
            self._cold.rows("sent_term_ids", term_ptr[lo], term_ptr[hi]),
        )

    # --- lookups ------------------------------------------------------------------

    @cached_property
    def bands(self) -> np.ndarray:
        """(rows, bands) LSH band hashes in row order, rebuilt from the stored
        inverted index (for merges and for re-checking a group that lost a member)."""
        values, rows = self.a["band_values"], self.a["band_rows"]
        out = np.empty((self.rows, len(values)), np.uint32)
        for j in range(len(values)):
            out[rows[j], j] = values[j]
        return out

    @cached_property
    def article_bands(self) -> np.ndarray:
        """(articles, bands) LSH bands of each article's word shingles, in article
        order, rebuilt from the stored inverted index (for merges and new articles)."""
        values, rows = self.a["article_band_values"], self.a["article_band_rows"]
        out = np.empty((int(self.meta["articles"]), len(values)), np.uint32)
        for j in range(len(values)):
            out[rows[j], j] = values[j]
        return out

    @cached_property
    def article_index(self) -> dict[str, int]:
        """Article name -> index in this segment (built on first use, then cached)."""
        return {name: i for i, name in enumerate(self.a["article_names"].tolist())}

    def find_article(self, name: str) -> int | None:
        """Index of article ``name`` in this segment. The first few lookups compare
        the names array at once (a one-off `index FILE` must not pay for a dict of
        every name); a process that keeps asking builds :attr:`article_index`."""
        if "article_index" not in self.__dict__ and self._finds < FINDS_BEFORE_INDEX:
            self._finds += 1
            hits = np.flatnonzero(self.a["article_names"] == name)
            return int(hits[0]) if len(hits) else None
        return self.article_index.get(name)

    @cached_property
    def dates(self) -> np.ndarray:
        """Per-row date as an ISO string ("" unknown), for date filters."""
        per_article = np.array(
            [self.article_record(i)["date"] or "" for i in range(int(self.meta["articles"]))],
            dtype="U10",
        )
        dates: np.ndarray = per_article[np.asarray(self.a["owner"])]
        return dates

    def term_range(self, terms: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """For each term: local term id (-1 when absent)."""
        vocab = self.a["terms"]
        if len(vocab) == 0 or not terms:
            return np.full(len(terms), -1, np.int64), np.zeros(len(terms), bool)
        wanted = np.array([t.encode("utf-8") for t in terms], dtype=bytes)
        pos = np.minimum(np.searchsorted(vocab, wanted), len(vocab) - 1)
        found = vocab[pos] == wanted
        return np.where(found, pos, -1), found

    def vocabulary(self) -> list[str]:
        """The segment's terms, decoded."""
        return [t.decode("utf-8") for t in self.a["terms"].tolist()]

    def release(self) -> None:
        """Unmap the pages of the columns a query reads a few scattered rows of
        (``COLD_COLUMNS``, and the passage codes): ~90 % of the index. The postings
        and per-passage columns every query scans stay mapped, so a query after a
        release re-maps only its candidates' pages (``files.drop_pages``)."""
        if isinstance(self._map, mmap.mmap):  # not an empty segment's bytes
            for key in COLD_COLUMNS:
                view = self.a[key]
                if view.size:
                    files.drop_pages(*files.whole_pages(view.ctypes.data, view.nbytes))
        self.vectors.release()

    def postings(self, term_id: int) -> tuple[np.ndarray, np.ndarray]:
        ptr = self.a["postings_ptr"]
        lo, hi = int(ptr[term_id]), int(ptr[term_id + 1])
        return self.a["postings_docs"][lo:hi], self.a["postings_tf"][lo:hi]


@dataclass(frozen=True)
class SentenceRows:
    """Some passages' sentences on their own: ``bounds`` (passages + 1) into ``codes``
    (sentences, width) and ``term_ptr`` (sentences + 1) into ``term_ids``."""

    bounds: np.ndarray
    codes: np.ndarray
    term_ptr: np.ndarray
    term_ids: np.ndarray


class ColdReads:
    """Positional reads (``pread``) of the columns a question needs a few scattered
    rows of: its candidates' sentence codes and term ids, its hits' records.

    Through the map, each such row would stay in the process's resident set, and
    more than the row: the kernel maps a whole page-cache folio on a fault (on
    ext4 here, touching one byte of a cached index file mapped ~64-800 KiB), so 200
    questions at 1M passages left 1.1 GB of the 1.2 GB of sentence codes resident.
    Read with ``pread``, the rows go through the page cache alone, which the kernel
    shares and reclaims (like Lucene's NIOFSDirectory beside its MMapDirectory).
    Builds and merges, which read whole columns in order, keep the map."""

    def __init__(self, path: Path, where: dict[str, dict[str, Any]]) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)
        self.path, self.where = path, where

    def bytes(self, key: str, lo: int, hi: int) -> bytes:
        """Bytes ``lo:hi`` of the uint8 column ``key``."""
        return os.pread(self.fd, hi - lo, int(self.where[key]["offset"]) + lo)

    def rows(self, key: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Rows ``lo[i]:hi[i]`` of column ``key`` for every i, concatenated (one read
        per range, into one buffer)."""
        w = self.where[key]
        dtype = np.dtype(w["dtype"])
        width = int(np.prod(w["shape"][1:], dtype=np.int64)) * dtype.itemsize  # bytes a row
        starts, sizes = np.asarray(lo, np.int64) * width, (np.asarray(hi) - lo) * width
        out = np.empty(int(sizes.sum()), np.uint8)
        view, base, at = out.data, int(w["offset"]), 0
        for start, size in zip(starts.tolist(), sizes.tolist(), strict=True):
            if size and _read_into(self.fd, view[at : at + size], base + start) != size:
                raise IndexCorrupt(
                    f"column {key} of {self.path} ends early: run `karabakh-qa index --repair`"
                )
            at += size
        found: np.ndarray = out.view(dtype).reshape(-1, *w["shape"][1:])
        return found


def _read_into(fd: int, buffer: memoryview, offset: int) -> int:
    """``pread`` straight into ``buffer`` (``preadv``, Linux and the BSDs), or through
    a copy where the platform has no ``preadv`` (macOS); the bytes read."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [buffer], offset)
    data = os.pread(fd, len(buffer), offset)
    buffer[: len(data)] = data
    return len(data)


class _Records:
    """Variable-length blobs addressed by an offsets array, read from disk."""

    def __init__(self, cold: ColdReads, key: str, offsets: np.ndarray) -> None:
        self.cold, self.key, self.offsets = cold, key, offsets

    def get(self, i: int) -> bytes:
        return self.cold.bytes(self.key, int(self.offsets[i]), int(self.offsets[i + 1]))
