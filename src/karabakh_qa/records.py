"""Plain frozen records that flow between the stages: Article, Passage, Hit."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Passage:
        return cls(**data)


@dataclass(frozen=True)
class Hit:
    """One ranked result: a passage plus why it ranked and where else it appears."""

    rank: int
    score: float
    passage: Passage
    also_in: tuple[dict, ...] = ()
    highlights: dict = field(default_factory=dict)
    explain: dict = field(default_factory=dict)
    answer_span: dict | None = None  # {start, end, text, type}, offsets into the article

    def to_dict(self) -> dict:
        p = self.passage
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "id": p.id,
            "text": p.text,
            "source": p.source,
            "title": p.title,
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
            "explain": self.explain,
        }
