"""Adding an article over HTTP: validate, then write it atomically into the folder.

The web layer turns a JSON body or an uploaded file into bytes with
:func:`article_from_json` / :func:`article_from_upload`; :func:`save_article`
checks them like indexing would. Nothing touches the articles folder until the
upload has passed every check,
and the file appears under its final, generated name in one ``os.replace``.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from typing import Any

from werkzeug.datastructures import FileStorage

from .chunk import chunk_article
from .config import Settings
from .errors import (
    ArticleError,
    BadRequest,
    InsufficientStorage,
    PayloadTooLarge,
    valid_unicode,
)
from .ingest import iso_date, parse_article
from .store.embedded import files

MAX_ARTICLE_BYTES = 1_000_000


def _field(body: dict[str, Any], name: str, limit: int) -> str | None:
    """A front-matter value: one line, no control or line-separator characters (a
    ``\r``, ``\u2028`` or ``\x85`` in a title would start a front-matter line of its
    own, setting the date or a ``javascript:`` URL)."""
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"{name} must be one line of text, at most {limit} characters")
    valid_unicode(value, name)
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise BadRequest(f"{name} must be one line of text without control characters")
    return value.strip()


def article_from_json(body: dict[str, Any]) -> bytes:
    """File bytes for a JSON article: front matter from title/date/source, then text."""
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("text is required and must be non-empty")
    valid_unicode(text, "text")
    title, source = _field(body, "title", 300), _field(body, "source", 300)
    date = _field(body, "date", 10)
    if date is not None and iso_date(date) != date:
        raise BadRequest(f"date must be YYYY-MM-DD, got {date!r}")
    meta = [f"{k}: {v}" for k, v in (("title", title), ("date", date), ("source", source)) if v]
    head = "---\n" + "\n".join(meta) + "\n---\n" if meta else ""
    return (head + text).encode("utf-8")


def article_from_upload(upload: FileStorage | None) -> bytes:
    """File bytes of a multipart ``file`` field holding a .txt or .md article."""
    if upload is None or not upload.filename:
        raise BadRequest("multipart upload needs a 'file' field holding a .txt file")
    if not (upload.filename or "").lower().endswith((".txt", ".md")):
        raise BadRequest("only .txt or .md files are accepted")
    raw: bytes = upload.read(MAX_ARTICLE_BYTES + 1)  # FileStorage reads its stream (Any)
    return raw


def save_article(settings: Settings, raw: bytes) -> str:
    """Validate an article's bytes and write them; returns the new source name."""
    if len(raw) > MAX_ARTICLE_BYTES:
        raise PayloadTooLarge(f"article is larger than {MAX_ARTICLE_BYTES} bytes")
    digest = hashlib.sha256(raw).hexdigest()
    name = f"upload-{time.strftime('%Y%m%d', time.gmtime())}-{digest[:16]}.txt"
    try:
        article = parse_article(name, raw)  # the checks of indexing: UTF-8, not binary, not empty
    except ArticleError as exc:
        raise BadRequest(exc.message) from None
    _, passages = chunk_article(article)  # and what indexing would make of it
    if not passages:
        raise ArticleError(
            "the article has nothing to index: no paragraph of text, only page furniture "
            "(links such as READ MORE, 'Loading...', repeated captions) or blank lines"
        )
    paragraphs = len({p.paragraph for p in passages})
    if paragraphs > settings.max_article_paragraphs:
        raise ArticleError(
            f"the article has {paragraphs} paragraphs; at most "
            f"{settings.max_article_paragraphs} are accepted in one upload"
        )
    folder = settings.articles_dir
    if re.search(r"[^A-Za-z0-9._-]", name) or not folder.is_dir():
        raise BadRequest("articles folder is not available")
    try:  # whole or not at all; a failed write leaves no temporary file behind
        files.write_bytes_atomic(folder / name, raw)
    except OSError as exc:
        raise InsufficientStorage(
            f"could not save the article ({exc.strerror or exc}); nothing was saved"
        ) from None
    return name
