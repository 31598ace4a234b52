"""The folder diff: which article files were added, changed or removed since a
generation, decided by size and modification time first and hashed only when
those differ."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from ...errors import ArticleError
from ...ingest import parse_article, scan_articles
from ...records import Article
from .manifest import SkippedFile
from .search import Snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileStat:
    """The two stat fields the catalog keeps, for articles that are not files."""

    st_size: int
    st_mtime_ns: int = 0


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


@dataclass
class Catalog:
    """The live articles of a generation as columns: name, size, mtime and where
    each one is (segment position, article index); the sha256 is read on demand."""

    names: list[str]
    size: np.ndarray
    mtime: np.ndarray
    where: list[tuple[int, int]]
    snap: Snapshot | None = None

    @classmethod
    def of(cls, snap: Snapshot | None, names: list[str] | None = None) -> Catalog:
        """Every live article of ``snap`` (or only ``names``), one pass of numpy per segment."""
        out = cls([], np.zeros(0, np.int64), np.zeros(0, np.int64), [], snap)
        if snap is None:
            return out
        sizes, mtimes = [], []
        if names is not None:
            places = [w for n in names if (w := snap.locate_article(n)) is not None]
            for pos, i in places:
                a = snap.segments[pos].a
                out.names.append(str(a["article_names"][i]))
                sizes.append(a["article_size"][i : i + 1])
                mtimes.append(a["article_mtime"][i : i + 1])
                out.where.append((pos, i))
        else:
            for pos, (seg, live) in enumerate(zip(snap.segments, snap.live, strict=True)):
                a = seg.a
                starts = np.asarray(a["article_rows"][:-1])
                alive = np.flatnonzero(np.ones(len(starts), bool) if live is None else live[starts])
                out.names.extend(a["article_names"][alive].tolist())
                sizes.append(a["article_size"][alive])
                mtimes.append(a["article_mtime"][alive])
                out.where.extend((pos, i) for i in alive.tolist())
        out.size = np.concatenate([out.size, *sizes]).astype(np.int64)
        out.mtime = np.concatenate([out.mtime, *mtimes]).astype(np.int64)
        return out

    def index(self) -> dict[str, int]:
        return dict(zip(self.names, range(len(self.names)), strict=True))

    def entry(self, j: int) -> tuple[int, int, str]:
        """(size, mtime_ns, sha256) of entry ``j``."""
        pos, i = self.where[j]
        snap = cast(Snapshot, self.snap)  # a catalog has entries only when it has a snapshot
        sha = str(snap.segments[pos].article_record(i)["sha256"])
        return int(self.size[j]), int(self.mtime[j]), sha


def _unchanged(
    scanned: dict[str, tuple[str, os.stat_result]], cat: Catalog
) -> tuple[np.ndarray, np.ndarray]:
    """For each scanned file, whether its size and mtime equal the catalog's; and
    for each catalog entry, whether a file of that name was scanned (numpy, so that
    a folder of many unchanged files costs its scan and little more)."""
    position = cat.index()
    idx = np.fromiter((position.get(n, -1) for n in scanned), np.int64, len(scanned))
    stats = [st for _, st in scanned.values()]
    size = np.fromiter((st.st_size for st in stats), np.int64, len(stats))
    mtime = np.fromiter((st.st_mtime_ns for st in stats), np.int64, len(stats))
    known = idx >= 0
    same = known.copy()
    same[known] = (cat.size[idx[known]] == size[known]) & (cat.mtime[idx[known]] == mtime[known])
    seen = np.zeros(len(cat.names), bool)
    seen[idx[known]] = True
    return same, seen


def diff_folder(folder: Path, snap: Snapshot | None, only: list[str] | None = None) -> Diff:
    """What changed in ``folder`` since ``snap``: files are hashed only when their
    size or modification time differ from the catalog's."""
    cat = Catalog.of(snap, only)
    old_skipped = {s.source: s for s in snap.manifest.skipped} if snap else {}
    diff = Diff()
    if only is None:
        scanned = scan_articles(folder)
        same, seen = _unchanged(scanned, cat)
        diff.unchanged = int(same.sum())
        listed = list(scanned)
        names = {listed[i] for i in np.flatnonzero(~same).tolist()}
        names |= {cat.names[j] for j in np.flatnonzero(~seen).tolist()}  # removed
        names |= set(old_skipped) - set(scanned)
    else:
        scanned = {}
        for n in only:
            with contextlib.suppress(OSError):
                scanned[n] = (str(folder / n), (folder / n).stat())
        names = set(only)
    catalog = {n: cat.entry(j) for j, n in enumerate(cat.names) if n in names}
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
            log.info("skipped %s", exc.message)
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


def stale_sources(snap: Snapshot, folder: Path) -> list[str]:
    """Article files added, changed or removed since ``snap`` was built."""
    diff = diff_folder(folder, snap)
    now_skipped = {s.source: s.sha256 for s in diff.skipped}
    was_skipped = {s.source: s.sha256 for s in snap.manifest.skipped}
    odd = {
        s for s in set(now_skipped) | set(was_skipped) if now_skipped.get(s) != was_skipped.get(s)
    }
    return sorted({*diff.added, *diff.changed, *diff.removed, *odd})
