"""How to cite a passage: CSL-JSON, BibTeX and RIS, each pinned to the quoted text.

Reference managers read CSL-JSON (Zotero, Pandoc, citeproc), BibTeX (LaTeX) and
RIS (EndNote, Mendeley). A news citation alone names the article; a fact-checker
needs the exact words, so every format carries the quote and where it sits: the
CSL-JSON item has W3C Web Annotation selectors (``TextQuoteSelector`` with
``exact``, ``prefix`` and ``suffix``; ``TextPositionSelector`` with ``start`` and
``end``, code-point offsets into the article file, as the API's offsets are), and
BibTeX and RIS carry them in a note. ``exact`` is the passage text, verbatim.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .records import Passage

FORMATS = {
    "csl-json": "application/vnd.citationstyles.csl+json",
    "bibtex": "application/x-bibtex",
    "ris": "application/x-research-info-systems",
}
CONTEXT_CHARS = 32  # of article text before and after the quote, for its selector


@dataclass(frozen=True)
class Quote:
    """A passage as a citable quote: the passage, and up to CONTEXT_CHARS of the
    article around it (None when the file changed since it was indexed)."""

    passage: Passage
    prefix: str | None
    suffix: str | None
    link: str  # the page that shows the quote in its article (a deep link)

    @classmethod
    def in_article(cls, passage: Passage, article_text: str | None, link: str) -> Quote:
        """The quote with its context read from ``article_text`` (the file as indexed)."""
        if article_text is None or article_text[passage.start : passage.end] != passage.text:
            return cls(passage, None, None, link)
        before = article_text[max(0, passage.start - CONTEXT_CHARS) : passage.start]
        after = article_text[passage.end : passage.end + CONTEXT_CHARS]
        return cls(passage, before, after, link)

    def selectors(self) -> list[dict[str, Any]]:
        p = self.passage
        quote: dict[str, Any] = {"type": "TextQuoteSelector", "exact": p.text}
        if self.prefix is not None:
            quote.update(prefix=self.prefix, suffix=self.suffix)
        return [quote, {"type": "TextPositionSelector", "start": p.start, "end": p.end}]

    def where(self) -> str:
        p = self.passage
        return f"{p.source}, paragraph {p.paragraph}, characters {p.start}-{p.end}"


def _date_parts(date: str | None) -> list[int] | None:
    return [int(x) for x in date.split("-")] if date else None


def csl_json(q: Quote) -> list[dict[str, Any]]:
    """One CSL-JSON item (a list, as CSL-JSON files hold), selectors included."""
    p = q.passage
    item: dict[str, Any] = {
        "id": p.id,
        "type": "article-newspaper",
        "title": p.title or p.source,
        "container-title": p.outlet,
        "URL": p.url,
        "issued": {"date-parts": [_date_parts(p.date)]} if p.date else None,
        "note": f"Quoted: {q.where()} (karabakh-qa passage {p.id})",
        "selector": q.selectors(),
        "karabakh-qa": {"file": p.source, "paragraph": p.paragraph, "link": q.link},
    }
    return [{k: v for k, v in item.items() if v is not None}]


_BIBTEX_SPECIAL = {"\\": "\\textbackslash{}", "{": "\\{", "}": "\\}"}


def _bibtex_value(text: str) -> str:
    """A BibTeX field value in braces, its braces and backslashes escaped."""
    return "{" + "".join(_BIBTEX_SPECIAL.get(c, c) for c in text) + "}"


def bibtex(q: Quote) -> str:
    p = q.passage
    fields: list[tuple[str, str | None]] = [("title", p.title or p.source), ("journal", p.outlet)]
    if p.date:
        year, month, day = p.date.split("-")
        fields += [("year", year), ("month", str(int(month))), ("day", str(int(day)))]
    fields += [
        ("url", p.url),
        ("note", f"Quoted: {q.where()}: \u201c{p.text}\u201d"),
        ("howpublished", q.link),
    ]
    body = ",\n".join(f"  {k} = {_bibtex_value(v)}" for k, v in fields if v)
    return f"@article{{kqa-{p.id},\n{body}\n}}\n"


def ris(q: Quote) -> str:
    p = q.passage
    lines: list[tuple[str, str | None]] = [
        ("TY", "NEWS"),
        ("ID", f"kqa-{p.id}"),
        ("TI", p.title or p.source),
    ]
    lines += [("T2", p.outlet), ("DA", p.date.replace("-", "/") if p.date else None)]
    lines += [("PY", p.date[:4] if p.date else None), ("UR", p.url), ("LK", q.link)]
    lines += [("N1", f"Quoted: {q.where()}"), ("AB", " ".join(p.text.split()))]
    return "".join(f"{tag}  - {value}\r\n" for tag, value in lines if value) + "ER  - \r\n"


def render(q: Quote, fmt: str) -> str:
    """The citation in ``fmt`` (one of FORMATS)."""
    if fmt == "csl-json":
        return json.dumps(csl_json(q), ensure_ascii=False, indent=2) + "\n"
    return bibtex(q) if fmt == "bibtex" else ris(q)
