"""Near-duplicate passages: the rule, and persistent MinHash signatures to find them.

Rule: two passages are copies when their normalised texts (case, punctuation,
whitespace and thousands separators folded; see :func:`chunk.normalise`) are
equal, or when the Jaccard similarity of their word 3-shingle sets is at least
``threshold`` (0.6, see README "Near-duplicates"). Groups are the connected
components of that relation.

Finding the pairs without comparing every passage with every other: each
passage keeps a MinHash signature cut into LSH bands (``bands`` x
``rows_per_band`` 32-bit hashes, stored with its segment). Two passages are
*candidates* when one band is equal; every candidate pair is then checked
with the exact rule above, so a group never rests on an approximation. With
16 bands of 2 rows a pair at Jaccard 0.6 is a candidate with probability
0.9992, at 0.8 with 0.99999999; equal texts always are. The 32 MinHash
values, and 32 more, are kept too (8 bits each): a candidate whose values agree
less often than the threshold minus 0.2 (:func:`plausible`) is not a copy in all
likelihood and skips the exact check, which is what costs.

The representative of a group is the copy a citation should point to first:
the best-dated one (metadata, then header, then a date found in the text),
then the earliest date, then the longest text, then the source name.
"""

from __future__ import annotations

import zlib

import numpy as np

from .chunk import normalise
from .records import Passage

DATE_RANK = {"metadata": 0, "header": 1, "text": 2, None: 3}
PRIME = np.uint64((1 << 61) - 1)
EMPTY = np.uint32(0xFFFFFFFF)
ESTIMATE_MARGIN = 0.2
ESTIMATE_VALUES = 64


def shingles(normalised: str, size: int = 3) -> frozenset[tuple[str, ...]]:
    """Word ``size``-grams of an already normalised text (tuples of words: exact,
    and cheaper to build than joined strings)."""
    words = normalised.split()
    if len(words) < size:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(zip(*(words[i:] for i in range(size)), strict=False))  # ragged on purpose


def _permutations(count: int, seed: int = 20201011) -> tuple[np.ndarray, np.ndarray]:
    """Multiply-shift hash functions ``(a * h + b) mod 2**64 >> 32`` (``a`` odd): the
    top bits of a 64-bit product mix every bit of ``h``. (A linear ``a * h + b mod p``
    with a 31-bit ``a`` and 32-bit ``h`` wraps only a few times, so it is nearly
    monotonic in ``h``: the smallest shingle hash wins most permutations and
    unrelated passages sharing one shingle looked 40 % alike.)"""
    rng = np.random.default_rng(seed)  # fixed: signatures must never change
    a = rng.integers(0, np.iinfo(np.uint64).max, size=count, dtype=np.uint64, endpoint=True)
    b = rng.integers(0, np.iinfo(np.uint64).max, size=count, dtype=np.uint64, endpoint=True)
    return a | np.uint64(1), b


_POSITION = (np.uint64(0x1F3D5B79), np.uint64(0x0A54FF53), np.uint64(0x13C6EF37))
_BAND = np.uint64(0x5BD1E995)
_MASK = np.uint64(0xFFFFFFFF)
_word_hash: dict[str, int] = {}


def _shingle_hashes(normalised: str, size: int) -> np.ndarray:
    """32-bit hashes of the word ``size``-grams of a normalised text (its whole
    text when shorter), computed from per-word CRC32s without building strings."""
    words = normalised.split()
    if not words:
        return np.zeros(0, np.uint64)
    for w in words:
        if w not in _word_hash and len(_word_hash) < 1_000_000:
            _word_hash[w] = zlib.crc32(w.encode())
    wh = np.fromiter(
        (_word_hash.get(w) or zlib.crc32(w.encode()) for w in words), np.uint64, len(words)
    )
    span = min(size, len(words))
    count = len(words) - span + 1
    h = np.zeros(count, np.uint64)
    for k in range(span):
        h = (h + wh[k : k + count] * _POSITION[k % len(_POSITION)]) % PRIME
    return h & _MASK


def band_hashes(texts: list[str], size: int, bands: int, rows_per_band: int) -> np.ndarray:
    """(len(texts), bands) uint32 LSH band hashes of the texts' shingle sets."""
    return minhash_signatures([normalise(t) for t in texts], size, bands, rows_per_band)[0]


def minhash_signatures(
    normalised: list[str], size: int, bands: int, rows_per_band: int
) -> tuple[np.ndarray, np.ndarray]:
    """LSH band hashes (uint32) of already normalised texts' shingle sets, and
    ESTIMATE_VALUES MinHash values cut to 8 bits (the bands' own, then more) for
    :func:`plausible`."""
    band_a, band_b = _permutations(bands * rows_per_band)
    more_a, more_b = _permutations(max(0, ESTIMATE_VALUES - bands * rows_per_band), 7)
    a, b = np.concatenate([band_a, more_a]), np.concatenate([band_b, more_b])
    used = bands * rows_per_band
    out = np.full((len(normalised), bands), EMPTY, dtype=np.uint32)
    values = np.full((len(normalised), len(a)), 0xFF, dtype=np.uint8)
    for lo in range(0, len(normalised), 2000):  # bounded memory: (perms x shingles) per chunk
        sets = [_shingle_hashes(t, size) for t in normalised[lo : lo + 2000]]
        sizes = np.array([len(x) for x in sets])
        full = np.flatnonzero(sizes)
        if len(full) == 0:
            continue
        h = np.concatenate([sets[i] for i in full])
        perm = (np.outer(a, h) + b[:, None]) >> np.uint64(32)  # wraps mod 2**64 by design
        starts = np.concatenate([[0], np.cumsum(sizes[full])[:-1]])
        mins = np.minimum.reduceat(perm, starts, axis=1).T & _MASK  # (texts, perms)
        values[lo + full] = (mins & np.uint64(0xFF)).astype(np.uint8)
        per_band = mins[:, :used].reshape(len(full), bands, rows_per_band)
        band = np.zeros((len(full), bands), np.uint64)
        for r in range(rows_per_band):
            band = (band * _BAND + per_band[:, :, r]) & _MASK
        out[lo + full] = band.astype(np.uint32)
    return out, values


def plausible(a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
    """Rows where the MinHash estimate of Jaccard (share of equal values) is at
    least ``threshold - ESTIMATE_MARGIN``. With 64 values and threshold 0.6 a pair
    at the threshold fails this with probability 0.0006 (binomial), pairs at
    Jaccard 0.35 and 0.3 pass with 0.21 and 0.05 (8-bit values agree by chance
    once in 256, a bias of +0.004): most LSH candidates that cannot be copies
    are spared the exact check, which stays the rule."""
    agree: np.ndarray = (np.atleast_2d(a) == np.atleast_2d(b)).mean(axis=1)
    return agree >= threshold - ESTIMATE_MARGIN


Signature = tuple[str, frozenset[tuple[str, ...]]]


def signature(text: str, size: int) -> Signature:
    """What the exact rule compares: the normalised text and its shingle set."""
    key = normalise(text)
    return key, shingles(key, size)


def same(a: Signature, b: Signature, threshold: float) -> bool:
    """The exact rule on two signatures."""
    if a[0] == b[0]:
        return True
    sa, sb = a[1], b[1]
    la, lb = len(sa), len(sb)
    if not la or not lb or min(la, lb) < threshold * max(la, lb):
        return False  # Jaccard is at most min/max size
    inter = len(sa & sb) if la <= lb else len(sb & sa)
    return inter >= threshold * (la + lb - inter)


def is_copy(a: str, b: str, size: int, threshold: float) -> bool:
    """The exact rule on two passage texts."""
    return same(signature(a, size), signature(b, size), threshold)


def band_index(bands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The LSH bands as an inverted index, band by band: (sorted hashes, the row of
    each), both (bands, rows) uint32. A band hash is a term and this is its
    postings list: a new passage's candidates are a binary search away."""
    cols = np.ascontiguousarray(np.asarray(bands, dtype=np.uint32).T)
    order = np.argsort(cols, axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1), order.astype(np.uint32)


def _run_pairs(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Keys ``i << 32 | j`` (i < j) of every two ``rows`` whose sorted ``values``
    are equal (vectorised: no Python loop)."""
    v = values
    edge = np.flatnonzero(v[1:] != v[:-1]) + 1
    starts = np.concatenate([[0], edge])
    ends = np.concatenate([edge, [len(v)]])
    long_ = ends - starts > 1
    if not long_.any():
        return np.zeros(0, np.int64)
    lens = (ends - starts)[long_]
    pos = np.repeat(starts[long_], lens) + (
        np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    )  # every position inside a run of two or more
    later = np.repeat(ends[long_], lens) - pos - 1  # how many positions follow it in its run
    left = np.repeat(pos, later)
    right = left + 1 + np.arange(later.sum()) - np.repeat(np.cumsum(later) - later, later)
    a, b = rows[left].astype(np.int64), rows[right].astype(np.int64)
    keys: np.ndarray = np.minimum(a, b) << 32 | np.maximum(a, b)
    return keys


def _as_pairs(keys: np.ndarray) -> np.ndarray:
    keys = np.unique(keys)
    return np.stack([keys >> 32, keys & 0xFFFFFFFF], axis=1)


def pairs_within(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Candidate pairs (i < j) of rows sharing at least one band, from a
    :func:`band_index`, as an (n, 2) array sorted by i, then j."""
    keys = [_run_pairs(np.asarray(values[j]), np.asarray(rows[j])) for j in range(len(values))]
    return _as_pairs(np.concatenate([np.zeros(0, np.int64), *keys]))


def range_positions(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions ``starts[i] .. starts[i] + counts[i] - 1`` of every range, one
    range after another: how a few rows of a CSR-laid-out column are gathered in
    one numpy step (band hits here, postings and sentences in the index)."""
    counts = np.asarray(counts, np.int64)
    ends = np.cumsum(counts)
    positions: np.ndarray = np.repeat(np.asarray(starts, np.int64) - ends + counts, counts)
    return positions + np.arange(int(ends[-1]) if len(ends) else 0)


def pairs_across(values: np.ndarray, rows: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Candidate pairs (old row, new row) sharing a band in the same position:
    ``values, rows`` are the old rows' :func:`band_index`, ``new`` the new rows'
    bands (rows, bands); an (n, 2) array sorted by old row, then new row. Two
    binary searches per band: the cost follows the new rows, not the old ones."""
    keys = [np.zeros(0, np.int64)]
    for j in range(new.shape[1] if values.shape[-1] and len(new) else 0):
        col = np.asarray(values[j])
        lo = np.searchsorted(col, new[:, j], "left")
        hi = np.searchsorted(col, new[:, j], "right")
        count = hi - lo
        total = int(count.sum())
        if total == 0:
            continue
        pos = range_positions(lo, count)
        old = np.asarray(rows[j])[pos].astype(np.int64)
        keys.append(old << 32 | np.repeat(np.arange(len(new), dtype=np.int64), count))
    return _as_pairs(np.concatenate(keys))


def representative_key(p: Passage) -> tuple[int, str, int, str, int]:
    return (DATE_RANK.get(p.date_source, 3), p.date or "9999", -len(p.text), p.source, p.paragraph)
