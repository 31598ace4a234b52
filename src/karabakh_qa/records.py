"""Plain frozen records that flow between the stages: Article, Passage, Hit."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Article:
    """One article file, decoded verbatim, with its metadata.

    ``text`` is the whole file decoded from UTF-8 with nothing changed, so that
    passage offsets index into it exactly. ``body_start`` is where the content
    begins once front matter or a date marker has been skipped.
    """

    source: str
    text: str
    sha256: str
    body_start: int = 0
    title: str | None = None
    date: str | None = None
    date_source: str | None = None  # "metadata", "header", "text" or None
    url: str | None = None
    publisher: str | None = None


@dataclass(frozen=True)
class Passage:
    """A verbatim span of an article: ``article.text[start:end] == text``."""

    id: str
    source: str
    paragraph: int  # 1-based among the article's kept paragraphs
    part: int  # 1-based piece of a paragraph split at sentence boundaries
    section: str | None
    start: int
    end: int
    text: str
    date: str | None
    date_source: str | None
    title: str | None = None
    group: str = ""  # id of the near-duplicate group's representative
    outlet: str | None = None  # who published it (see :func:`outlet_of`)
    url: str | None = None  # where it was published (http or https only)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Passage:
        return cls(**data)


@dataclass(frozen=True)
class Hit:
    """One ranked result: a passage plus why it ranked and where else it appears."""

    rank: int
    score: float
    passage: Passage
    also_in: tuple[dict[str, Any], ...] = ()
    highlights: dict[str, Any] = field(default_factory=dict)
    explain: dict[str, Any] = field(default_factory=dict)
    answer_span: dict[str, Any] | None = None  # {start, end, text, type}, offsets into the article
    answers: bool = False  # passes the answer rule on its own (the page marks only these)
    first_seen: dict[str, Any] | None = None  # the earliest dated copy of the story: {file, date}
    corroboration: dict[str, Any] | None = None  # articles, outlets, first, copies (relations/)
    versions: tuple[dict[str, Any], ...] = ()  # other versions of its article, what changed

    def to_dict(self) -> dict[str, Any]:
        p = self.passage
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "id": p.id,
            "text": p.text,
            "file": p.source,
            "source": p.source,  # deprecated alias of "file" (README, "Deprecations")
            "title": p.title,
            "outlet": p.outlet,
            "url": p.url,
            "date": p.date,
            "date_source": p.date_source,
            "paragraph": p.paragraph,
            "part": p.part,
            "section": p.section,
            "start": p.start,
            "end": p.end,
            "also_in": list(self.also_in),
            "highlights": self.highlights,
            "answer_span": self.answer_span,
            "answers": self.answers,
            "first_seen": self.first_seen,
            "corroboration": self.corroboration,
            "versions": list(self.versions),
            "explain": self.explain,
        }


def safe_url(url: str | None) -> str | None:
    """``url`` when it is an http(s) address with a host; None otherwise (a
    ``javascript:`` or ``file:`` URL in front matter is never shown or linked)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme in ("http", "https") and parts.hostname else None


def outlet_of(publisher: str | None, url: str | None) -> str | None:
    """Who published an article: front matter ``outlet:`` or ``source:``, else the
    domain of its URL (``www.`` dropped), else None (unknown, never guessed)."""
    if publisher and publisher.strip():
        return publisher.strip()
    safe = safe_url(url)
    if safe is None:
        return None
    host = urlsplit(safe).hostname or ""
    return host.removeprefix("www.") or None


def date_label(date: str | None, date_source: str | None) -> str:
    """How a date is shown, the same on the page and in the CLI: "date unknown", or
    the date, said to be inferred when it was read from the text."""
    if not date:
        return "date unknown"
    return f"{date}, inferred from the text" if date_source == "text" else date
