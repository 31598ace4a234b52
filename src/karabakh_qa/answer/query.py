"""Stage 0 of an answer: a question and its parameters, checked.

Every parameter the page, the JSON API and the CLI pass arrives here as whatever
the caller sent (text from a form, JSON values); what leaves is a :class:`Query`
whose every field is valid, or a :class:`BadRequest` saying what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..config import Settings
from ..errors import BadRequest, valid_unicode, whole_number
from ..ingest import iso_date

SORTS = ("relevance", "date", "first_seen")
MAX_OFFSET = 1000
FLAG_WORDS = {"": False, "0": False, "false": False, "no": False, "off": False,
              "1": True, "true": True, "yes": True, "on": True}  # fmt: skip


@dataclass(frozen=True)
class Query:
    """A validated query."""

    question: str
    k: int
    sources: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    offset: int = 0  # hits skipped (pagination: offset, k)
    sort: str = "relevance"  # or "date" (newest first), "first_seen" (a story's earliest copy)
    include_undated: bool = False  # a date filter keeps passages of unknown date too
    facets: bool = False  # count the results by outlet, year and month


class Archive(Protocol):
    """What checking a query needs of the index: which article names it holds."""

    def article(self, name: str) -> object | None: ...

    def article_names(self) -> list[str]: ...


def parse_query(
    settings: Settings,
    archive: Archive,
    question: object,
    k: object = None,
    sources: object = None,
    since: object = None,
    until: object = None,
    blank_is_absent: bool = True,
    offset: object = None,
    sort: object = None,
    include_undated: object = None,
    facets: object = None,
) -> Query:
    """Check every parameter; raise :class:`BadRequest` saying what is allowed.
    ``blank_is_absent``: an empty ``k``, ``since``, ``until``, ``offset`` or ``sort``
    means not given (a form's empty field); a JSON body gives a value or leaves the
    key out."""
    s = settings
    if not isinstance(question, str) or not question.strip():
        raise BadRequest("question is required: give 1 to 1000 characters of text")
    question = valid_unicode(question, "question").strip()
    if len(question) > s.max_question_chars:
        raise BadRequest(
            f"question is {len(question)} characters; at most {s.max_question_chars} allowed"
        )
    if k is None or (k == "" and blank_is_absent):
        k = s.default_k
    k_given, size = k, whole_number(k)
    if size is None or not 1 <= size <= s.max_k:
        raise BadRequest(f"k must be a whole number from 1 to {s.max_k}, got {k_given!r}")
    names = _sources(sources, archive)
    dates: list[str | None] = []
    for name, value in (("since", since), ("until", until)):
        if value is None or (value == "" and blank_is_absent):
            dates.append(None)
            continue
        parsed = iso_date(value) if isinstance(value, str) else None
        if parsed is None or not isinstance(value, str) or parsed != value.strip():
            raise BadRequest(f"{name} must be a date as YYYY-MM-DD, got {value!r}")
        dates.append(parsed)
    if dates[0] and dates[1] and dates[0] > dates[1]:
        raise BadRequest(f"since ({dates[0]}) is after until ({dates[1]})")
    given = offset is not None and not (offset == "" and blank_is_absent)
    skip = whole_number(offset) if given else 0
    if skip is None or not 0 <= skip <= MAX_OFFSET:
        raise BadRequest(f"offset must be a whole number from 0 to {MAX_OFFSET}, got {offset!r}")
    order = "relevance" if sort is None or (sort == "" and blank_is_absent) else sort
    if order not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    undated, counted = flag(include_undated, "include_undated"), flag(facets, "facets")
    return Query(question, size, names, dates[0], dates[1], skip, str(order), undated, counted)


def _sources(sources: object, archive: Archive) -> tuple[str, ...]:
    """The article names a query is limited to; each must be indexed."""
    if sources is None or sources == "":
        sources = ()
    if isinstance(sources, str):
        sources = (sources,)
    if not isinstance(sources, list | tuple) or not all(isinstance(x, str) for x in sources):
        raise BadRequest("sources must be a list of article file names")
    names = tuple(x for x in sources if x)
    unknown = [x for x in names if archive.article(x) is None]
    if unknown:
        known = archive.article_names()
        listed = ", ".join(known[:20]) + (" …" if len(known) > 20 else "")
        raise BadRequest(f"unknown source {unknown[0]!r}; indexed sources are: {listed}")
    return names


def flag(value: object, name: str) -> bool:
    """A yes/no parameter: JSON true/false, or 1/0, true/false, yes/no, on/off, "" (no)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in FLAG_WORDS:
        return FLAG_WORDS[value.strip().lower()]
    raise BadRequest(f"{name} must be true or false, got {value!r}")
