"""Build: diff the articles folder against the serving generation, write one new
segment with only what changed, mark replaced rows deleted, switch, then merge.

Order of durable steps (each a crash point, see tests/store/test_crash.py):

1. the new segment is written to ``.tmp-*``, fsynced and renamed ``seg-N/``;
2. deletion bitmaps, the statistics and the group overlay of generation G are
   written (temporary file, fsync, rename);
3. ``gen-G.json`` is written the same way, then ``CURRENT`` is replaced.

Nothing a serving generation uses is modified or deleted before step 3 has
made it obsolete, and files are only removed when neither the current nor the
previous generation lists them. A crash anywhere leaves the old generation
serving; the next build removes what the crashed one left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ...chunk import chunk_article
from ...config import Settings
from ...dedup import ESTIMATE_VALUES, minhash_signatures
from ...embed import Embedder
from ...errors import ArticleError, IndexUnavailable
from ...ingest import Skipped, parse_article, scan_articles
from ...records import Article, Passage
from ...sentences import passage_sentences, sentence_embed_text
from ...sparse import TOKENIZER_VERSION, tokenize, tokenize_spans
from . import files
from .bm25 import full_statistics, postings, segment_df, update_histogram
from .groups import Part, empty_overlay, segment_number, update_overlay
from .manifest import (
    Bm25Params,
    DedupParams,
    Manifest,
    ModelInfo,
    SegmentRef,
    SkippedFile,
    VectorCodec,
    current_name,
    read_manifest,
    switch_current,
    write_manifest,
)
from .merge import merge_segments, plan_merges
from .search import SegmentCache, Snapshot
from .segment import SegmentColumns, pack, unpack, write_segment
from .vectors import DEFAULT_CODEC, SENTENCE_CODEC, decode, encode, pack_codes, unpack_codes

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
DEDUP_BANDS, DEDUP_ROWS = 16, 2
PARALLEL_MIN_ARTICLES = 200  # below this, worker start-up costs more than it saves


def embed_text(p: Passage, with_context: bool) -> str:
    """What the model (or BM25) sees for a passage: optionally its title and section first."""
    if not with_context:
        return p.text
    head = " — ".join(x for x in (p.title, p.section) if x)
    return f"{head}\n{p.text}" if head else p.text


def embed_key(model: str, text: str) -> str:
    return hashlib.sha1(f"{model}\x1f{text}".encode()).hexdigest()


@dataclass(frozen=True)
class BuildReport:
    generation: int
    articles: int
    passages: int
    skipped: list[Skipped]
    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: int
    embedded: int
    reused: int
    seconds: float
    path: Path | None
    embedded_sentences: int = 0
    segments: int = 0
    merged: int = 0  # segments merged away after the build
    wrote: bool = True

    def to_dict(self) -> dict:
        return {
            "generation": self.generation,
            "articles": self.articles,
            "passages": self.passages,
            "skipped": [s.to_dict() for s in self.skipped],
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "embedded": self.embedded,
            "embedded_sentences": self.embedded_sentences,
            "reused": self.reused,
            "segments": self.segments,
            "merged": self.merged,
            "seconds": round(self.seconds, 3),
        }


def model_info(settings: Settings, embedder: Embedder) -> ModelInfo:
    return ModelInfo(
        embedder.name,
        embedder.weights_sha256,
        int(embedder.dim),
        settings.model_max_tokens,
        settings.embed_context,
    )


def empty_manifest(settings: Settings, embedder: Embedder, generation: int = 0) -> Manifest:
    return Manifest(
        generation=generation,
        built_at="",
        model=model_info(settings, embedder),
        tokenizer=TOKENIZER_VERSION,
        bm25=Bm25Params(
            settings.bm25_k1, settings.bm25_b, settings.bm25_epsilon, settings.bm25_context
        ),
        dedup=DedupParams(settings.dup_shingle, settings.dup_jaccard, DEDUP_BANDS, DEDUP_ROWS),
        vectors=DEFAULT_CODEC,
        sentences=SENTENCE_CODEC,
    )


def compatible(old: Manifest, new: Manifest) -> bool:
    """Can segments written under ``old`` be kept by a build with ``new``'s settings?"""
    keys = ("model", "tokenizer", "bm25", "dedup", "vectors", "sentences")
    return all(getattr(old, k) == getattr(new, k) for k in keys)


# --- the folder diff -------------------------------------------------------------


@dataclass
class Diff:
    fresh: list[tuple[Article, os.stat_result | FileStat]] = field(default_factory=list)  # to index
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.fresh or self.removed or self.changed)


def _catalog(
    snap: Snapshot | None, names: list[str] | None = None
) -> dict[str, tuple[int, int, str]]:
    """Live article name -> (size, mtime_ns, sha256), for ``names`` or all."""
    out: dict[str, tuple[int, int, str]] = {}
    if snap is None:
        return out
    if names is None:
        places = snap.article_locations.items()
    else:
        places = [(n, w) for n in names if (w := snap.locate_article(n)) is not None]
    for name, (pos, i) in places:
        a = snap.segments[pos].a
        out[name] = (
            int(a["article_size"][i]),
            int(a["article_mtime"][i]),
            a["article_sha"][i].decode(),
        )
    return out


def diff_folder(folder: Path, snap: Snapshot | None, only: list[str] | None = None) -> Diff:
    """What changed in ``folder`` since ``snap``: files are hashed only when their
    size or modification time differ from the catalog's."""
    catalog = _catalog(snap, only)
    old_skipped = {s.source: s for s in snap.manifest.skipped} if snap else {}
    if only is None:
        scanned = scan_articles(folder)
        names = set(scanned) | set(catalog) | set(old_skipped)
    else:
        scanned = {}
        for n in only:
            with contextlib.suppress(OSError):
                scanned[n] = (str(folder / n), (folder / n).stat())
        names = set(only)
    diff = Diff()
    for name in sorted(names):
        if name not in scanned:
            if name in catalog:
                diff.removed.append(name)
            continue
        path, st = scanned[name]
        known = catalog.get(name)
        skip = old_skipped.get(name)
        if known and known[:2] == (st.st_size, st.st_mtime_ns):
            diff.unchanged += 1
            continue
        if skip and (skip.size, skip.mtime_ns) == (st.st_size, st.st_mtime_ns):
            diff.skipped.append(skip)
            continue
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            diff.skipped.append(SkippedFile(name, f"unreadable ({exc.strerror})", "unreadable"))
            if name in catalog:
                diff.removed.append(name)
            continue
        sha = hashlib.sha256(raw).hexdigest()
        if known and known[2] == sha:
            diff.unchanged += 1  # touched, not changed
            continue
        try:
            article = parse_article(name, raw)
        except ArticleError as exc:
            log.warning("skipped %s", exc.message)
            reason = exc.message.split(": ", 1)[-1]
            diff.skipped.append(SkippedFile(name, reason, sha, st.st_size, st.st_mtime_ns))
            if name in catalog:
                diff.removed.append(name)
            continue
        (diff.changed if name in catalog else diff.added).append(name)
        diff.fresh.append((article, st))
    if only is not None:  # files outside ``only`` keep their skipped entries
        kept = {s.source for s in diff.skipped}
        diff.skipped.extend(s for n, s in old_skipped.items() if n not in kept and n not in names)
    return diff


# --- a new segment from articles ----------------------------------------------------


@dataclass
class NewRows:
    columns: SegmentColumns
    tokens: list[list[str]]
    embedded: int
    embedded_sentences: int
    skipped: list[SkippedFile]


def _old_vectors(
    snap: Snapshot | None, names: list[str], settings: Settings, model: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Decoded passage and sentence codes of changed articles, by embed key, kept
    apart because their codecs differ: re-encoding a decoded code with its own
    codec gives the same code back, so reuse is exact."""
    passages: dict[str, np.ndarray] = {}
    sentences: dict[str, np.ndarray] = {}
    for name in names if snap else []:
        found = snap.article(name)
        if found is None:
            continue
        for row in found[1]:
            seg, local = snap.locate(row)
            p = seg.passage(local)
            key = embed_key(model, embed_text(p, settings.embed_context))
            passages[key] = decode(seg.vectors.codes[local : local + 1], seg.codec)[0]
            lo, hi = (int(x) for x in seg.a["sent_bounds"][local : local + 2])
            codec = seg.sentence_codec
            s_vecs = decode(unpack_codes(seg.a["sent_codes"][lo:hi], codec), codec)
            for j, span in enumerate(seg.a["sent_spans"][lo:hi].tolist()):
                text = sentence_embed_text(p, tuple(span), settings.embed_context)
                sentences[embed_key(model, text)] = s_vecs[j]
    return passages, sentences


def _codes(
    texts: list[str],
    embedder: Embedder,
    known: dict[str, np.ndarray],
    settings: Settings,
    progress: Progress | None,
    offset: int,
    total: int,
    codec: VectorCodec,
    reuse: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, int]:
    """Codes of ``texts``, embedding only those whose key is in neither ``reuse``
    (decoded codes of this codec) nor ``known`` (float16 vectors; gains the new ones)."""
    reuse = reuse or {}
    keys = [embed_key(embedder.name, t) for t in texts]
    todo = {k: i for i, k in enumerate(keys) if k not in known and k not in reuse}
    todo = sorted(todo.items(), key=lambda x: x[1])
    batch = settings.embed_batch_size * 8
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        vecs = embedder.encode([texts[i] for _, i in chunk], batch_size=settings.embed_batch_size)
        for (key, _), vec in zip(chunk, vecs.astype(np.float16), strict=True):
            known[key] = vec
        if progress:
            progress(offset + start + len(chunk), total)
    out = np.empty((len(texts), embedder.dim), dtype=np.uint8)
    for lo in range(0, len(keys), 8192):  # bounded temporaries
        part = keys[lo : lo + 8192]
        vecs = np.stack([reuse[k] if k in reuse else known[k] for k in part])
        out[lo : lo + len(part)] = encode(vecs, codec)
    return out, len(todo)


@dataclass
class Prepared:
    """Articles chunked, tokenised and signed (no embedding): the part of a build
    that runs in worker processes, article by article."""

    articles: list[Article] = field(default_factory=list)
    stats: list[tuple[int, int]] = field(default_factory=list)  # (size, mtime_ns)
    passages: list[Passage] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # passages per article
    spans: list[list[tuple[int, int]]] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)
    s_counts: list[int] = field(default_factory=list)  # distinct terms per sentence
    s_terms: list[str] = field(default_factory=list)
    bands: list[np.ndarray] = field(default_factory=list)
    minhash: list[np.ndarray] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    def extend(self, other: Prepared) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


def prepare(
    fresh: list[tuple[Article, int, int]], settings: Settings, count_tokens: Callable[[str], int]
) -> Prepared:
    """Chunk, tokenise and sign ``fresh`` articles (pure: runs in a worker process)."""
    out = Prepared()
    for article, size, mtime in fresh:
        article, parts = chunk_article(article, count_tokens, settings.model_max_tokens)
        if not parts:
            reason = "no indexable text after cleaning"
            out.skipped.append(SkippedFile(article.source, reason, article.sha256, size, mtime))
            continue
        out.articles.append(article)
        out.stats.append((size, mtime))
        out.passages.extend(parts)
        out.counts.append(len(parts))
    out.spans = [passage_sentences(p) for p in out.passages]
    out.tokens, s_ptr, out.s_terms = passage_terms(out.passages, out.spans, settings.bm25_context)
    out.s_counts = np.diff(s_ptr).tolist()
    bands, minhash = minhash_signatures(
        [p.text for p in out.passages], settings.dup_shingle, DEDUP_BANDS, DEDUP_ROWS
    )
    out.bands, out.minhash = list(bands), list(minhash)
    return out


def prepare_all(
    fresh: list[tuple[Article, os.stat_result | FileStat]],
    settings: Settings,
    embedder: Embedder,
) -> Prepared:
    """:func:`prepare` over every core for a large batch, in article order."""
    items = [(a, int(st.st_size), int(st.st_mtime_ns)) for a, st in fresh]
    workers = min(os.cpu_count() or 1, settings.build_workers)
    if workers < 2 or len(items) < PARALLEL_MIN_ARTICLES:
        return prepare(items, settings, embedder.token_counter)
    size = -(-len(items) // (workers * 4))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    out = Prepared()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        counter = embedder.token_counter
        for part in pool.map(prepare, chunks, [settings] * len(chunks), [counter] * len(chunks)):
            out.extend(part)
    return out


def new_rows(
    fresh: list[tuple[Article, os.stat_result | FileStat]],
    settings: Settings,
    embedder: Embedder,
    known: dict[str, np.ndarray],
    progress: Progress | None = None,
    reuse: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {}),
) -> NewRows:
    """Chunk, embed and tokenise the fresh articles into segment columns."""
    prep = prepare_all(fresh, settings, embedder)
    articles, passages, spans = prep.articles, prep.passages, prep.spans
    bounds = np.zeros(len(articles) + 1, np.int64)
    np.cumsum(prep.counts, out=bounds[1:])
    p_texts = [embed_text(p, settings.embed_context) for p in passages]
    s_texts = [
        sentence_embed_text(p, span, settings.embed_context)
        for p, pspans in zip(passages, spans, strict=True)
        for span in pspans
    ]
    total = len(p_texts) + len(s_texts)
    codes, embedded = _codes(
        p_texts, embedder, known, settings, progress, 0, total, DEFAULT_CODEC, reuse[0]
    )
    s_codes, s_embedded = _codes(
        s_texts, embedder, known, settings, progress, len(p_texts), total, SENTENCE_CODEC, reuse[1]
    )
    terms, ptr, docs, tf = postings(prep.tokens)
    s_ids = (
        np.searchsorted(terms, np.asarray(prep.s_terms, dtype=terms.dtype))
        if prep.s_terms
        else np.zeros(0, np.int64)
    )
    s_ptr = np.zeros(len(prep.s_counts) + 1, np.int64)
    np.cumsum(prep.s_counts, out=s_ptr[1:])
    flat_spans = [span for pspans in spans for span in pspans]
    s_bounds = np.zeros(len(passages) + 1, np.int64)
    np.cumsum([len(s) for s in spans], out=s_bounds[1:])
    columns = SegmentColumns(
        article_names=np.array([a.source for a in articles], dtype=str),
        article_sha=np.array([a.sha256 for a in articles], dtype="S64"),
        article_size=np.array([st[0] for st in prep.stats], dtype=np.int64),
        article_mtime=np.array([st[1] for st in prep.stats], dtype=np.int64),
        article_rows=bounds,
        article_blobs=[
            pack(article_record(a, n)) for a, n in zip(articles, prep.counts, strict=True)
        ],
        passage_blobs=[pack(passage_record(p)) for p in passages],
        ids=np.array([p.id for p in passages], dtype="S16"),
        lengths=np.array([len(t) for t in prep.tokens], dtype=np.int32),
        terms=terms,
        postings_ptr=ptr,
        postings_docs=docs,
        postings_tf=tf,
        codes=codes,
        sent_bounds=s_bounds,
        sent_spans=np.array(flat_spans, dtype=np.int64).reshape(-1, 2),
        sent_codes=pack_codes(s_codes, SENTENCE_CODEC),
        sent_term_ptr=s_ptr,
        sent_term_ids=s_ids.astype(np.int32),
        bands=np.array(prep.bands, dtype=np.uint32).reshape(-1, DEDUP_BANDS),
        minhash=np.array(prep.minhash, dtype=np.uint8).reshape(-1, ESTIMATE_VALUES),
    )
    return NewRows(columns, prep.tokens, embedded, s_embedded, prep.skipped)


def passage_terms(
    passages: list[Passage], spans: list[list[tuple[int, int]]], context: bool
) -> tuple[list[list[str]], list[int], list[str]]:
    """BM25 tokens of each passage (title and section first when ``context``), and
    the distinct terms of each sentence as a flat list with pointers. Each text is
    tokenised once: a sentence's terms are the passage's tokens inside its span."""
    heads: dict[str, list[str]] = {}
    tokens, s_ptr, s_terms = [], [0], []
    for p, pspans in zip(passages, spans, strict=True):
        found = tokenize_spans(p.text)
        head = " — ".join(x for x in (p.title, p.section) if x) if context else ""
        if head not in heads:
            heads[head] = tokenize(head)
        tokens.append(heads[head] + [t for t, _, _ in found])
        starts = [st for _, st, _ in found]
        for s, e in pspans:
            lo, hi = bisect_left(starts, s), bisect_left(starts, e)
            s_terms.extend(sorted({t for t, _, _ in found[lo:hi]}))
            s_ptr.append(len(s_terms))
    return tokens, s_ptr, s_terms


def article_record(a: Article, passages: int) -> dict:
    return {
        "source": a.source,
        "sha256": a.sha256,
        "title": a.title,
        "date": a.date,
        "date_source": a.date_source,
        "url": a.url,
        "publisher": a.publisher,
        "passages": passages,
    }


def passage_record(p: Passage) -> dict:
    keys = ("paragraph", "part", "section", "start", "end", "text")  # the id is in ids.npy
    return {k: getattr(p, k) for k in keys}


# --- generation bookkeeping --------------------------------------------------------


def next_number(index_dir: Path, prefix: str) -> int:
    """One more than any ``prefix-NNNNNN`` name present (orphans of crashes included)."""
    best = 0
    for p in index_dir.glob(f"{prefix}-*"):
        digits = p.name[len(prefix) + 1 :].split(".")[0]
        if digits.isdigit():
            best = max(best, int(digits))
    return best + 1


def clean_index_dir(index_dir: Path, keep: set[str]) -> None:
    """Remove what no kept generation lists: crashed builds' leftovers, old files."""
    for p in index_dir.iterdir():
        if p.name in keep or p.name in ("CURRENT", ".lock"):
            continue
        if p.name.startswith((".tmp-", "seg-", "gen-", "stats-", "groups-", ".CURRENT")):
            files.remove(p)


def previous_manifest(index_dir: Path, current: Manifest) -> Manifest | None:
    name = current.extra.get("previous")
    if not name:
        return None
    try:
        return read_manifest(index_dir, name)
    except (FileNotFoundError, IndexUnavailable):
        return None


def kept_files(index_dir: Path, current: Manifest) -> set[str]:
    keep = set(current.files())
    prev = previous_manifest(index_dir, current)
    if prev is not None:
        keep |= prev.files()
    return keep


def publish(index_dir: Path, snap_before: Snapshot | None, manifest: Manifest) -> Manifest:
    """Write the manifest (naming the one it follows) and make it current."""
    if snap_before is not None:
        manifest = replace(
            manifest, extra={**manifest.extra, "previous": snap_before.manifest.file_name}
        )
    write_manifest(index_dir, manifest)
    switch_current(index_dir, manifest)
    return manifest


def open_current(index_dir: Path, cache: SegmentCache) -> Snapshot | None:
    name = current_name(index_dir)
    if name is None:
        return None
    return Snapshot(index_dir, read_manifest(index_dir, name), cache)


def save_generation_array(index_dir: Path, name: str, array: np.ndarray) -> str:
    tmp = files.tmp_name(index_dir, name)
    files.save_array(tmp, array)
    files.fsync(tmp)
    files.rename(tmp, index_dir / name)
    return name


# --- the build ------------------------------------------------------------------------


def build_index(
    settings: Settings,
    embedder: Embedder,
    full: bool = False,
    wait: bool = False,
    progress: Progress | None = None,
    only: list[str] | None = None,
    optimize: bool = False,
    repair: bool = False,
    cache: SegmentCache | None = None,
) -> BuildReport:
    """Bring the index up to date with the articles folder (see module docstring).

    ``only`` limits the diff to those file names (an upload); ``full`` rebuilds
    everything from the files; ``optimize`` merges all segments into one;
    ``repair`` drops segments whose files are damaged and re-indexes their articles.
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    cache = cache or SegmentCache()
    with files.build_lock(index_dir, wait=wait):
        target = empty_manifest(settings, embedder)
        current = current_name(index_dir)
        if current is not None:  # what crashed builds left behind goes first
            try:
                keep = kept_files(index_dir, read_manifest(index_dir, current))
            except (FileNotFoundError, IndexUnavailable):
                keep = {current}
            clean_index_dir(index_dir, keep)
        snap = None if full else _usable_snapshot(index_dir, cache, target, repair)
        diff = diff_folder(settings.articles_dir, snap, None if full else only)
        unchanged_skips = snap is not None and sorted(diff.skipped, key=str) == sorted(
            snap.manifest.skipped, key=str
        )
        if snap is not None and diff.empty and unchanged_skips and not (optimize or repair):
            return _report(snap, diff, started, None, 0, 0, wrote=False)
        generation = max(next_number(index_dir, "gen"), snap.generation + 1 if snap else 1)
        reuse = _old_vectors(snap, diff.changed, settings, embedder.name)
        rows = new_rows(diff.fresh, settings, embedder, {}, progress, reuse)
        manifest = _write_generation(index_dir, snap, target, generation, diff, rows, cache)
        snap_after = Snapshot(index_dir, manifest, cache)
        merged = 0
        plans = [list(range(len(snap_after.segments)))] if optimize else plan_merges(snap_after)
        for plan in plans:
            if len(plan) < 2 and not _has_deletions(snap_after, plan):
                continue
            before = snap_after
            manifest = merge_segments(
                before, plan, max(generation, before.generation) + 1, index_dir
            )
            merged += len(plan)
            manifest = publish(index_dir, before, manifest)
            snap_after = Snapshot(index_dir, manifest, cache)
        clean_index_dir(index_dir, kept_files(index_dir, manifest))
        cache.keep_only({index_dir / s.name for s in manifest.segments})
    report = _report(
        snap_after,
        diff,
        started,
        index_dir / manifest.file_name,
        rows.embedded,
        rows.embedded_sentences,
        merged=merged,
    )
    log.info("built generation %d: %s", manifest.generation, report.to_dict())
    return report


def _has_deletions(snap: Snapshot, plan: list[int]) -> bool:
    return any(snap.live[i] is not None for i in plan)


def _usable_snapshot(
    index_dir: Path, cache: SegmentCache, target: Manifest, repair: bool
) -> Snapshot | None:
    """The serving generation if this build can extend it, else None (full build)."""
    name = current_name(index_dir)
    if name is None:
        return None
    try:
        manifest = read_manifest(index_dir, name)
    except (FileNotFoundError, IndexUnavailable) as exc:
        log.warning("serving manifest unusable (%s); building from scratch", exc)
        return None
    if not compatible(manifest, target):
        log.info("index settings or model changed; building from scratch")
        return None
    if repair:
        manifest = _without_damaged(index_dir, manifest, cache)
    try:
        return Snapshot(index_dir, manifest, cache)
    except IndexUnavailable as exc:
        raise IndexUnavailable(
            f"{exc.message} (or `karabakh-qa index --full` to rebuild everything)"
        ) from None


def _without_damaged(index_dir: Path, manifest: Manifest, cache: SegmentCache) -> Manifest:
    """The manifest minus segments that fail to open; statistics recomputed."""
    good, segs, lives = [], [], []
    for ref in manifest.segments:
        try:
            seg = cache.get(index_dir / ref.name, manifest)
            from .search import load_live

            live = load_live(index_dir / ref.deletes, seg.rows) if ref.deletes else None
        except IndexUnavailable as exc:
            log.warning("dropping damaged segment %s: %s", ref.name, exc.message)
            continue
        good.append(ref)
        segs.append(seg)
        lives.append(live)
    n, total, hist = full_statistics(manifest.bm25, segs, lives)
    gen = manifest.generation
    stats = save_generation_array(index_dir, f"stats-{gen:06d}.repair.npy", hist)
    numbers = {segment_number(r.name) for r in good}
    groups = None
    if manifest.groups:
        try:
            overlay = np.load(index_dir / manifest.groups, allow_pickle=False).reshape(-1, 4)
        except (OSError, ValueError):
            overlay = empty_overlay()
        kept = overlay[np.isin(overlay[:, 0], list(numbers))] if len(overlay) else overlay
        groups = save_generation_array(index_dir, f"groups-{gen:06d}.repair.npy", kept)
    articles = sum(int(s.meta["articles"]) for s in segs)
    return replace(
        manifest,
        segments=tuple(good),
        live_passages=n,
        total_length=total,
        live_articles=articles,
        stats=stats,
        groups=groups,
    )


def _write_generation(
    index_dir: Path,
    snap: Snapshot | None,
    target: Manifest,
    generation: int,
    diff: Diff,
    rows: NewRows,
    cache: SegmentCache,
) -> Manifest:
    """Steps 1–3 of the module docstring for one build."""
    base = snap.manifest if snap else target
    refs = list(base.segments)
    new_part = None
    if rows.columns.rows:
        name = f"seg-{next_number(index_dir, 'seg'):06d}"
        tmp = files.tmp_name(index_dir, name)
        write_segment(tmp, name, rows.columns, target.vectors)
        files.publish_folder(tmp, index_dir / name)
        seg = cache.get(index_dir / name, target)
        new_part = Part(segment_number(name), seg, None)
        refs.append(SegmentRef(name, seg.rows))
    # Rows of changed and removed articles become deleted.
    deleted_rows: dict[int, list[int]] = {}
    for name in [*diff.changed, *diff.removed]:
        found = snap.article(name) if snap else None
        if found:
            for row in found[1]:
                seg, local = snap.locate(row)
                deleted_rows.setdefault(snap.segments.index(seg), []).append(local)
    deleted_nodes = set()
    lives = list(snap.live) if snap else []
    for pos, locals_ in deleted_rows.items():
        seg = snap.segments[pos]
        live = np.ones(seg.rows, bool) if lives[pos] is None else lives[pos].copy()
        live[locals_] = False
        lives[pos] = live
        deleted_nodes.update((segment_number(seg.name), r) for r in locals_)
        fname = f"{seg.name}.del-{generation:06d}.npy"
        save_generation_array(index_dir, fname, np.packbits(~live, bitorder="little"))
        refs[pos] = replace(refs[pos], deletes=fname, deleted=int((~live).sum()))
    # BM25 statistics of the live rows.
    n_before = base.live_passages
    total_before = base.total_length
    hist = (
        np.load(index_dir / base.stats, allow_pickle=False).reshape(-1, 2)
        if snap and base.stats
        else np.zeros((0, 2), np.int64)
    )
    gone_tokens = []
    for pos, locals_ in deleted_rows.items():
        seg = snap.segments[pos]
        for local in locals_:
            p = seg.passage(local)
            gone_tokens.append(tokenize(embed_text(p, target.bm25.context)))
    gone_df = Counter(t for toks in gone_tokens for t in set(toks))
    new_seg = new_part.segment if new_part else None
    new_terms = new_seg.vocabulary() if new_seg else []
    touched = sorted(set(gone_df) | set(new_terms))
    old_df = snap.bm25.df(touched) if snap else np.zeros(len(touched), np.int64)
    added_df = segment_df(new_seg, None, touched) if new_seg else np.zeros(len(touched), np.int64)
    new_df = old_df - np.array([gone_df.get(t, 0) for t in touched], np.int64) + added_df
    hist = update_histogram(hist, old_df, new_df)
    n_after = (
        n_before - sum(len(v) for v in deleted_rows.values()) + (new_seg.rows if new_seg else 0)
    )
    total_after = (
        total_before
        - sum(len(t) for t in gone_tokens)
        + (int(new_seg.meta["total_length"]) if new_seg else 0)
    )
    stats = save_generation_array(index_dir, f"stats-{generation:06d}.npy", hist)
    # Near-duplicate groups.
    old_parts = (
        [
            Part(segment_number(s.name), s, live)
            for s, live in zip(snap.segments, snap.live, strict=True)
        ]
        if snap
        else []
    )
    overlay = update_overlay(
        snap.overlay if snap else empty_overlay(), old_parts, deleted_nodes, new_part, target.dedup
    )
    groups = base.groups if (snap and np.array_equal(overlay, snap.overlay)) else None
    if groups is None and len(overlay):
        groups = save_generation_array(index_dir, f"groups-{generation:06d}.npy", overlay)
    articles_after = (
        base.live_articles - len(diff.changed) - len(diff.removed) + len(rows.columns.article_names)
        if snap
        else len(rows.columns.article_names)
    )
    manifest = replace(
        target,
        generation=generation,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        segments=tuple(refs),
        live_passages=n_after,
        total_length=total_after,
        live_articles=articles_after,
        stats=stats,
        groups=groups,
        skipped=tuple(sorted([*diff.skipped, *rows.skipped], key=lambda s: s.source)),
    )
    return publish(index_dir, snap, manifest)


def _report(
    snap: Snapshot,
    diff: Diff,
    started: float,
    path: Path | None,
    embedded: int,
    embedded_sentences: int,
    merged: int = 0,
    wrote: bool = True,
) -> BuildReport:
    m = snap.manifest
    skipped = [Skipped(s.source, s.reason, s.sha256) for s in m.skipped]
    return BuildReport(
        generation=m.generation,
        articles=m.live_articles,
        passages=m.live_passages,
        skipped=skipped,
        added=sorted(diff.added),
        changed=sorted(diff.changed),
        removed=sorted(diff.removed),
        unchanged=diff.unchanged,
        embedded=embedded,
        reused=m.live_passages - embedded,
        seconds=time.perf_counter() - started,
        path=path,
        embedded_sentences=embedded_sentences,
        segments=len(m.segments),
        merged=merged,
        wrote=wrote,
    )


@dataclass(frozen=True)
class FileStat:
    """The two stat fields the catalog keeps, for articles that are not files."""

    st_size: int
    st_mtime_ns: int = 0


def build_from_articles(
    settings: Settings,
    embedder: Embedder,
    articles: list[Article],
    known: dict[str, np.ndarray],
    batches: int = 1,
    progress: Progress | None = None,
) -> Snapshot:
    """Index in-memory articles (an evaluation collection) into ``settings.index_dir``.

    With ``batches`` > 1 the articles are written as that many segments, and the
    last batch also re-adds the first 1 % of the first one, so that the index
    holds deletions, exactly as a folder updated over time would."""
    index_dir = settings.index_dir
    index_dir.mkdir(parents=True, exist_ok=True)
    cache = SegmentCache()
    target = empty_manifest(settings, embedder)
    size = max(1, -(-len(articles) // max(1, batches)))
    parts = [articles[i : i + size] for i in range(0, len(articles), size)] or [[]]
    snap = None
    for number, part in enumerate(parts, start=1):
        again = parts[0][: max(1, len(parts[0]) // 100)] if number == len(parts) > 1 else []
        diff = Diff(
            fresh=[(a, FileStat(len(a.text))) for a in [*part, *again]],
            added=[a.source for a in part],
            changed=[a.source for a in again],
        )
        rows = new_rows(diff.fresh, settings, embedder, known, progress)
        manifest = _write_generation(index_dir, snap, target, number, diff, rows, cache)
        snap = Snapshot(index_dir, manifest, cache)
    return snap


def stale_sources(snap: Snapshot, folder: Path) -> list[str]:
    """Article files added, changed or removed since ``snap`` was built."""
    diff = diff_folder(folder, snap)
    now_skipped = {s.source: s.sha256 for s in diff.skipped}
    was_skipped = {s.source: s.sha256 for s in snap.manifest.skipped}
    odd = {
        s for s in set(now_skipped) | set(was_skipped) if now_skipped.get(s) != was_skipped.get(s)
    }
    return sorted({*diff.added, *diff.changed, *diff.removed, *odd})


__all__ = ["BuildReport", "build_index", "stale_sources", "embed_text", "unpack"]
