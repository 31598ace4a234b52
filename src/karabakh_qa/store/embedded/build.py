"""Build: diff the articles folder against the serving generation, write one new
segment with only what changed, mark replaced rows deleted, switch, then merge.

Order of durable steps (each a crash point, see tests/store/test_crash.py):

1. the new segment is written to ``.tmp-*``, fsynced and renamed ``seg-N/``
   (a large build writes one per FLUSH_ARTICLES new articles, repeating 1–2);
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
import errno
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from ...config import Settings
from ...embed import Embedder
from ...errors import Conflict, IndexUnavailable, InsufficientStorage
from ...ingest import Skipped
from ...records import Article
from ...relations.versions import Sentence, may_be_version
from ...sparse import TOKENIZER_VERSION, tokenize
from . import files, relations
from .bm25 import full_statistics, segment_df, update_histogram
from .diff import Diff, FileStat, diff_folder
from .files import next_number, save_generation_array
from .groups import Part, empty_overlay, segment_number, update_overlay
from .manifest import (
    Bm25Params,
    DedupParams,
    IndexCorrupt,
    Manifest,
    ModelInfo,
    SegmentRef,
    current_name,
    read_manifest,
    switch_current,
    write_manifest,
)
from .merge import merge_segments, plan_merges
from .rows import (
    DEDUP_BANDS,
    DEDUP_ROWS,
    NewRows,
    Progress,
    embed_text,
    new_rows,
    old_vectors,
)
from .search import SegmentCache, Snapshot, load_live
from .segment import Segment, write_segment
from .vectors import DEFAULT_CODEC, SENTENCE_CODEC

log = logging.getLogger(__name__)


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
    scope: str = "folder"  # what the diff looked at: "folder", "files" (named) or "journal"

    def to_dict(self) -> dict[str, Any]:
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
            "scope": self.scope,
            "seconds": round(self.seconds, 3),
        }


def model_info(settings: Settings, embedder: Embedder) -> ModelInfo:
    return ModelInfo(
        embedder.name,
        embedder.weights_sha256,
        int(embedder.dim),
        settings.model_max_tokens,
        settings.embed_context,
        embedder.backend_id,
        settings.passage_vectors,
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
        extra={"store": store_record(settings)} if settings.store == "milvus" else {},
    )


def store_record(settings: Settings) -> dict[str, str]:
    """Where a Milvus-backed index keeps its passages (the manifest's ``extra.store``)."""
    return {
        "kind": "milvus",
        "uri": settings.milvus_uri,
        "collection": settings.milvus_collection,
        "dense_index": settings.milvus_dense_index,
    }


def compatible(old: Manifest, new: Manifest) -> bool:
    """Can segments written under ``old`` be kept by a build with ``new``'s settings?"""
    keys = ("model", "tokenizer", "bm25", "dedup", "vectors", "sentences")
    return all(getattr(old, k) == getattr(new, k) for k in keys)


# --- generation bookkeeping --------------------------------------------------------


GENERATION_FILES = (".tmp-", "seg-", "gen-", "stats-", "groups-", "relations-", ".CURRENT")


def clean_index_dir(index_dir: Path, keep: set[str]) -> None:
    """Remove what no kept generation lists: crashed builds' leftovers, old files."""
    for p in index_dir.iterdir():
        if p.name in keep or p.name in ("CURRENT", ".lock"):
            continue
        if p.name.startswith(
            (".tmp-", "seg-", "gen-", "stats-", "groups-", "relations-", ".CURRENT")
        ):
            files.remove(p)


DISK_REFUSED = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


@contextlib.contextmanager
def _write_failures(index_dir: Path) -> Iterator[None]:
    """A build the disk stops (full, read-only): what it wrote goes at once, not at the
    next build, and the error says so (InsufficientStorage); the serving generation
    and the one before it stay untouched."""
    try:
        yield
    except OSError as exc:
        try:
            remove_leftovers(index_dir)
        except OSError as again:
            log.warning("could not remove the failed build's files: %s", again)
        if exc.errno not in DISK_REFUSED:
            raise
        raise InsufficientStorage(
            f"the build could not write the index ({exc.strerror or exc}); the generation "
            "that served serves on, and what this build wrote is removed"
        ) from None


def serving_manifest(index_dir: Path) -> Manifest | None:
    """The manifest CURRENT names, or None (no index, or it cannot be read)."""
    name = current_name(index_dir)
    if name is None:
        return None
    try:
        return read_manifest(index_dir, name)
    except (FileNotFoundError, IndexUnavailable):
        return None


def remove_leftovers(index_dir: Path) -> None:
    """Remove what neither the serving generation nor the one before it lists (what
    crashed or failed builds left); with an unreadable manifest, all but CURRENT's."""
    name = current_name(index_dir)
    serving = serving_manifest(index_dir)
    keep = kept_files(index_dir, serving) if serving else ({name} if name else set())
    clean_index_dir(index_dir, keep)


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
    allow_empty: bool = False,
    published: Callable[[], object] | None = None,
) -> BuildReport:
    """Bring the index up to date with the articles folder (see module docstring).

    ``only`` limits the diff to those file names (an upload); ``full`` rebuilds
    everything from the files; ``optimize`` merges all segments into one;
    ``repair`` drops segments whose files are damaged and re-indexes their articles;
    ``allow_empty`` lets a build empty an index that holds articles (an unmounted
    or emptied folder would otherwise wipe the index that serves); ``published`` is
    called once the new articles' generation is published, before any merge runs
    (a server installs it then: an upload is searchable without waiting for merges).
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    cache = cache or SegmentCache()
    with files.build_lock(index_dir, wait=wait), _write_failures(index_dir):
        target = empty_manifest(settings, embedder)
        if current_name(index_dir) is not None:  # what crashed builds left behind goes first
            remove_leftovers(index_dir)
        snap, repaired = (
            (None, False) if full else _usable_snapshot(index_dir, cache, target, repair)
        )
        diff = diff_folder(settings.articles_dir, snap, None if full else only)
        if not allow_empty:
            _refuse_to_empty(index_dir, snap, diff, settings.articles_dir)
        unchanged_skips = snap is not None and sorted(diff.skipped, key=str) == sorted(
            snap.manifest.skipped, key=str
        )
        if snap is not None and diff.empty and unchanged_skips and not (optimize or repaired):
            return _report(snap, diff, started, None, 0, 0, wrote=False)
        generation = max(next_number(index_dir, "gen"), snap.generation + 1 if snap else 1)
        reuse = old_vectors(snap, diff.changed, settings, embedder.name)
        so_far = snap  # the index with the parts written so far (not switched to)
        embedded = embedded_sentences = rows_done = 0
        for part, done in _flushes(diff):
            if done:  # a later part keeps what the earlier ones skipped
                written = cast(Snapshot, so_far)  # an earlier part was written: not None
                part = replace(part, skipped=list(written.manifest.skipped))
            report_to = _offset(progress, done, len(diff.fresh), rows_done)
            rows = new_rows(part.fresh, settings, embedder, {}, report_to, reuse)
            rows_done += len(rows.columns.ids)
            embedded += rows.embedded
            embedded_sentences += rows.embedded_sentences
            manifest = _write_generation(index_dir, so_far, target, generation, part, rows, cache)
            so_far = Snapshot(index_dir, manifest, cache)
            generation += 1
        generation -= 1
        manifest = publish(index_dir, snap, manifest)  # one switch, however many flushes
        snap_after = Snapshot(index_dir, manifest, cache)
        if published is not None:
            published()
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
        embedded,
        embedded_sentences,
        merged=merged,
    )
    log.info("built generation %d: %s", manifest.generation, report.to_dict())
    return report


FLUSH_ARTICLES = 20_000  # a build writes a segment per this many new articles


def _flushes(diff: Diff) -> Iterator[tuple[Diff, int]]:
    """``diff`` in parts of at most FLUSH_ARTICLES fresh articles, each written as its
    own segment (as Lucene flushes its buffer), so that a build's memory is bounded
    by a part, not by the archive; the first part carries the deletions. Yields
    (part, fresh articles before it)."""
    fresh = diff.fresh
    for lo in range(0, max(1, len(fresh)), FLUSH_ARTICLES):
        if lo == 0:
            yield replace(diff, fresh=fresh[:FLUSH_ARTICLES]), 0
        else:
            yield Diff(fresh=fresh[lo : lo + FLUSH_ARTICLES]), lo


def _offset(progress: Progress | None, done: int, total: int, rows: int) -> Progress | None:
    """``progress`` for one part: ``done`` articles (``rows`` passages) came before it,
    ``total`` articles in all."""
    if progress is None:
        return None
    return lambda n, _, p: progress(done + n, total, rows + p)


def _refuse_to_empty(index_dir: Path, snap: Snapshot | None, diff: Diff, folder: Path) -> None:
    """A Conflict when this build would leave no article in an index that has some."""
    if diff.fresh:
        return
    if snap is not None:
        holds = snap.manifest.live_articles
        gone = len(set(diff.changed) | set(diff.removed))
        if not holds or gone < holds:
            return
    else:  # a full build: what the serving generation holds
        serving = serving_manifest(index_dir)
        holds = serving.live_articles if serving else 0
        if not holds:
            return
    raise Conflict(
        f"refusing to empty the index: it holds {holds} articles and {folder} has no "
        "readable article left (an unmounted or emptied folder?); pass --allow-empty "
        "to empty it anyway"
    )


def _has_deletions(snap: Snapshot, plan: list[int]) -> bool:
    return any(snap.live[i] is not None for i in plan)


def _usable_snapshot(
    index_dir: Path, cache: SegmentCache, target: Manifest, repair: bool
) -> tuple[Snapshot | None, bool]:
    """The serving generation if this build can extend it, else None (full build), and
    whether it was repaired (then the build writes a generation even with no change)."""
    name = current_name(index_dir)
    if name is None:
        return None, False
    try:
        manifest = read_manifest(index_dir, name)
    except (FileNotFoundError, IndexUnavailable) as exc:
        log.warning("serving manifest unusable (%s); building from scratch", exc)
        return None, False
    if not compatible(manifest, target):
        log.info("index settings or model changed; building from scratch")
        return None, False
    if repair:
        manifest = _without_damaged(index_dir, manifest, cache)
    try:
        return Snapshot(index_dir, manifest, cache), repair
    except IndexCorrupt as exc:  # the articles are the source of truth: re-index them
        log.warning("the serving generation is damaged (%s); repairing it", exc.message)
        return Snapshot(index_dir, _without_damaged(index_dir, manifest, cache), cache), True


def _without_damaged(index_dir: Path, manifest: Manifest, cache: SegmentCache) -> Manifest:
    """The manifest minus segments that fail to open; statistics recomputed."""
    good, segs, lives = [], [], []
    for ref in manifest.segments:
        try:
            seg = cache.get(index_dir / ref.name, manifest)
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
            overlay = files.load_npy(index_dir / manifest.groups).reshape(-1, 4)
        except files.UNREADABLE:
            overlay = empty_overlay()
        kept = overlay[np.isin(overlay[:, 0], list(numbers))] if len(overlay) else overlay
        groups = save_generation_array(index_dir, f"groups-{gen:06d}.repair.npy", kept)
    linked = None
    if manifest.relations:
        names = [str(n) for seg in segs for n in seg.a["article_names"].tolist()]
        try:
            rel = relations.read(index_dir, manifest.relations)
        except files.UNREADABLE:
            rel = relations.empty()
        known = np.array(sorted(n.encode() for n in names))
        rel = rel[np.isin(rel["a"], known) & np.isin(rel["b"], known)]
        if len(rel):
            linked = relations.save(index_dir, f"relations-{gen:06d}.repair.npy", rel)
    articles = sum(int(s.meta["articles"]) for s in segs)
    return replace(
        manifest,
        relations=linked,
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
    """Steps 1 and 2 of the module docstring for one part of a build: the new
    manifest, written by the caller with :func:`publish`."""
    base = snap.manifest if snap else target
    refs = list(base.segments)
    new_part = None
    if rows.columns.rows:
        name = f"seg-{next_number(index_dir, 'seg'):06d}"
        tmp = files.tmp_name(index_dir, name)
        write_segment(tmp, name, rows.columns, target.vectors)
        files.publish_folder(tmp, index_dir / name)
        seg = cache.get(index_dir / name, target)
        new_part = Part(segment_number(name), seg, None, rows.normalised)
        refs.append(SegmentRef(name, seg.rows))
    # Rows of changed and removed articles become deleted.
    deleted_rows: dict[int, list[int]] = {}
    for name in [*diff.changed, *diff.removed]:
        found = snap.article(name) if snap else None
        if found and snap:  # found implies snap (``and snap`` narrows its type)
            for row in found[1]:
                seg, local = snap.locate(row)
                deleted_rows.setdefault(snap.segments.index(seg), []).append(local)
    deleted_nodes: set[tuple[int, int]] = set()
    lives = list(snap.live) if snap else []
    for pos, locals_ in deleted_rows.items():
        seg = cast(Snapshot, snap).segments[pos]  # rows were deleted: there is a snapshot
        old_live = lives[pos]
        live = np.ones(seg.rows, bool) if old_live is None else old_live.copy()
        live[locals_] = False
        lives[pos] = live
        deleted_nodes.update((segment_number(seg.name), r) for r in locals_)
        fname = f"{seg.name}.del-{generation:06d}.npy"
        save_generation_array(index_dir, fname, np.packbits(~live, bitorder="little"))
        refs[pos] = replace(refs[pos], deletes=fname, deleted=int((~live).sum()))
    # BM25 statistics of the live rows.
    n_before = base.live_passages
    total_before = base.total_length
    hist = snap.bm25.hist if snap else np.zeros((0, 2), np.int64)  # (base.stats, as read)
    gone_tokens = []
    for pos, locals_ in deleted_rows.items():
        seg = cast(Snapshot, snap).segments[pos]  # rows were deleted: there is a snapshot
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
    # Relations between articles (copies, versions, corroboration, differing figures).
    parts = {p.number: p for p in [*old_parts, *([new_part] if new_part else [])]}
    gone = {*diff.changed, *diff.removed}
    fresh = {str(n) for n in rows.columns.article_names}

    def name_of(node: tuple[int, int]) -> str:
        return relations.name_at(parts[node[0]].segment, node[1])

    def where(name: str) -> tuple[Segment, int]:
        """The segment and index of a live article: the new segment's first (a
        changed article's old version is still live in ``snap``)."""
        i = new_seg.find_article(name) if new_seg is not None else None
        if new_seg is not None and i is not None:
            return new_seg, i
        found = snap.locate_article(name) if snap is not None else None
        if snap is None or found is None:
            raise IndexCorrupt(f"article {name!r} of the group overlay is not in the index")
        return snap.segments[found[0]], found[1]

    def plausible(a: str, b: str) -> bool:
        (sa, ia), (sb, ib) = where(a), where(b)
        agree = int((sa.a["article_minhash"][ia] == sb.a["article_minhash"][ib]).sum())
        return may_be_version(agree, words(sa, ia), words(sb, ib))

    def sentences_of(name: str) -> list[Sentence]:
        return relations.segment_sentences(*where(name))

    def headline_of(name: str) -> str:
        seg, i = where(name)
        return str(seg.article_record(i).get("title") or "")

    new_number = new_part.number if new_part else None
    sharing = relations.partners(overlay, name_of, fresh, new_number) if fresh else set()
    pairs = set(sharing)
    if new_seg is not None and fresh:
        live_after = [*lives, None] if snap else [None]
        segs = [*(snap.segments if snap else []), new_seg]
        pairs |= relations.lsh_partners(new_seg, list(zip(segs, live_after, strict=True)), fresh)
    old_rel = snap.relation_table if snap else relations.empty()
    if pairs or relations.naming(old_rel, gone).any():
        rel = relations.update(old_rel, gone, pairs, sentences_of, sharing, plausible, headline_of)
        linked = (
            relations.save(index_dir, f"relations-{generation:06d}.npy", rel) if len(rel) else None
        )
    else:
        linked = base.relations if snap else None
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
        relations=linked,
        skipped=tuple(sorted([*diff.skipped, *rows.skipped], key=lambda s: s.source)),
    )
    return manifest


def words(seg: Segment, i: int) -> int:
    """Article ``i`` of ``seg``'s length in BM25 tokens."""
    lo, hi = (int(x) for x in seg.a["article_rows"][i : i + 2])
    return int(seg.a["lengths"][lo:hi].sum())


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
        manifest = publish(index_dir, snap, manifest)
        snap = Snapshot(index_dir, manifest, cache)
    return cast(Snapshot, snap)  # parts is never empty: the loop ran
