"""Ingestion: article files to :class:`Article` records, with metadata.

Files are decoded byte-exactly (no newline translation) so every later offset
indexes into the file's own text. Metadata comes from a leading front-matter
block or a leading ``date YYYY-MM-DD`` marker; dates found in the running text
are inferred later, in :mod:`karabakh_qa.chunk`, once site furniture is gone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ArticleError
from .records import Article

log = logging.getLogger(__name__)

ARTICLE_SUFFIXES = (".txt", ".md")
UNREADABLE = "unreadable"  # stands for the hash of a file that could not be read
FRONT_MATTER_KEYS = ("title", "date", "source", "outlet", "url")

_FRONT_MATTER = re.compile(
    r"\A\ufeff?---[ \t]*\r?\n(?P<body>.*?)^---[ \t]*(?:\r?\n|\Z)", re.S | re.M
)
_FM_LINE = re.compile(r"^\s*(?P<key>[A-Za-z_]+)\s*:\s*(?P<value>.*?)\s*$")
_DATE_MARKER = re.compile(
    r"\A\ufeff?[ \t]*date[ \t]*[:=]?[ \t]*(?P<date>\d{4}-\d{2}-\d{2})(?:[ \t]+|[ \t]*\r?\n)", re.I
)


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    source: str
    reason: str
    sha256: str = UNREADABLE  # recorded so that a fixed file counts as changed

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason, "sha256": self.sha256}


def iso_date(value: str) -> str | None:
    """``value`` as ``YYYY-MM-DD`` if it is a real calendar date, else None."""
    match = re.match(r"^\s*(\d{4})-(\d{2})-(\d{2})", value or "")
    if not match:
        return None
    try:
        return dt.date(*map(int, match.groups())).isoformat()
    except ValueError:
        return None


def decode_article(source: str, raw: bytes) -> str:
    """Decode an article's bytes, or raise :class:`ArticleError` saying why not."""
    if not raw:
        raise ArticleError(f"{source}: empty file")
    if b"\x00" in raw[:8192]:
        raise ArticleError(f"{source}: binary file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArticleError(
            f"{source}: not UTF-8 (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    if not text.strip("\ufeff \t\r\n\xa0"):
        raise ArticleError(f"{source}: empty file (whitespace only)")
    return text


def parse_article(source: str, raw: bytes) -> Article:
    """Turn one file's bytes into an Article with metadata and body offset."""
    text = decode_article(source, raw)
    meta: dict[str, str] = {}
    body_start = 0
    date, date_source = None, None
    fm = _FRONT_MATTER.match(text)
    if fm:
        for line in fm.group("body").splitlines():
            m = _FM_LINE.match(line)
            if m and m.group("key").lower() in FRONT_MATTER_KEYS:
                meta[m.group("key").lower()] = m.group("value").strip("\"'")
        body_start = fm.end()
        if "date" in meta:
            date = iso_date(meta["date"])
            if date:
                date_source = "metadata"
            else:
                log.warning(
                    "%s: front-matter date %r is not YYYY-MM-DD; ignored", source, meta["date"]
                )
    marker = _DATE_MARKER.match(text[body_start:])
    if marker:
        marker_date = iso_date(marker.group("date"))
        if marker_date:
            body_start += marker.end()
            if date is None:
                date, date_source = marker_date, "header"
    return Article(
        source=source,
        text=text,
        sha256=hashlib.sha256(raw).hexdigest(),
        body_start=body_start,
        title=meta.get("title") or None,
        date=date,
        date_source=date_source,
        url=meta.get("url") or None,
        publisher=meta.get("outlet") or meta.get("source") or None,
    )


def scan_articles(folder: Path) -> dict[str, tuple[str, os.stat_result]]:
    """Article files under ``folder`` by source name (sorted), with their stat;
    hidden and temporary files and folders are ignored. One ``scandir`` pass: a
    build compares sizes and modification times before reading anything."""
    if not folder.is_dir():
        raise ArticleError(f"articles folder {folder} does not exist or is not a folder")
    found: dict[str, tuple[str, os.stat_result]] = {}
    pending = [(str(folder), "")]
    while pending:  # tight: at 37,500 files this loop is most of an incremental build
        where, prefix = pending.pop()
        try:
            with os.scandir(where) as it:
                entries = list(it)
        except OSError as exc:
            log.warning("cannot list %s: %s", where, exc.strerror)
            continue
        for entry in entries:
            name = entry.name
            if name[0] in ".~":
                continue
            if not name.isprintable() or _undecodable(name):
                shown = os.fsencode(name).decode("utf-8", "backslashreplace")
                log.warning(
                    "skipped %r in %s: the name is not printable UTF-8 (rename the file)",
                    shown,
                    where,
                )
                continue
            try:
                if entry.is_dir():
                    pending.append((entry.path, f"{prefix}{name}/"))
                elif name.lower().endswith(ARTICLE_SUFFIXES) and entry.is_file():
                    found[prefix + name] = (entry.path, entry.stat())
            except OSError:
                continue
    return dict(sorted(found.items()))


def _undecodable(name: str) -> bool:
    """Whether a file name held bytes that are not UTF-8 (Python keeps them as lone
    surrogates, which no JSON, manifest or URL can carry)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def article_files(folder: Path) -> list[Path]:
    """Article files under ``folder``, sorted; hidden and temporary files ignored."""
    return [Path(path) for path, _ in scan_articles(folder).values()]


def source_name(folder: Path, path: Path) -> str:
    return path.relative_to(folder).as_posix()


def sources_in(folder: Path, paths: list[Path]) -> list[str]:
    """Source names of ``paths`` (relative to the working directory or absolute),
    which must lie inside ``folder``; a missing file names an article to remove."""
    root = folder.resolve()
    out = []
    for path in paths:
        full = path.resolve()
        if not full.is_relative_to(root) or full == root:
            raise ArticleError(f"{path} is not a file inside the articles folder {folder}")
        out.append(source_name(root, full))
    return sorted(set(out))


def read_articles(folder: Path) -> tuple[list[Article], list[Skipped]]:
    """Read every article in ``folder``; bad files are skipped with a reason."""
    articles: list[Article] = []
    skipped: list[Skipped] = []
    for path in article_files(folder):
        source = source_name(folder, path)
        try:
            raw = path.read_bytes()
            articles.append(parse_article(source, raw))
        except ArticleError as exc:
            log.info("skipped %s", exc.message)
            reason = exc.message.split(": ", 1)[-1]
            skipped.append(Skipped(source, reason, hashlib.sha256(raw).hexdigest()))
        except OSError as exc:
            log.info("skipped %s: unreadable (%s)", source, exc.strerror)
            skipped.append(Skipped(source, f"unreadable ({exc.strerror})"))
    return articles, skipped
