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


def stale_sources(snap: Snapshot, folder: Path) -> list[str]:
    """Article files added, changed or removed since ``snap`` was built."""
    diff = diff_folder(folder, snap)
    now_skipped = {s.source: s.sha256 for s in diff.skipped}
    was_skipped = {s.source: s.sha256 for s in snap.manifest.skipped}
    odd = {
        s for s in set(now_skipped) | set(was_skipped) if now_skipped.get(s) != was_skipped.get(s)
    }
    return sorted({*diff.added, *diff.changed, *diff.removed, *odd})
