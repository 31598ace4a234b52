"""Chunking: an Article's body to verbatim paragraph passages, furniture removed.

The text is cut into *units*: lines grouped into blocks by blank lines, with
hard-wrapped lines joined. Each unit is then classified by general rules that
hold for scraped news from any site (see :func:`classify`):

* ``read_more``  -- "READ MORE: ..." / "Related: ..." link lines
* ``ui``         -- widget strings such as "Loading...", "Advertisement"
* ``source``     -- "Source: ...", "Reporting by ..." attribution lines
* ``credit``     -- a lone photo credit ("AP", "Getty Images") or a short
                    unpunctuated line trailing another line of its block
* ``repeat``     -- a caption repeated right after itself (the first is kept)
* ``heading``    -- a short line without final punctuation, alone in its
                    block and followed by a paragraph: it becomes ``section``
* ``widget``     -- the same kind of short line *not* followed by a
                    paragraph (trailing teasers such as "Route 6")
* ``title``      -- a heading that opens the article

Everything else is a paragraph, and becomes one passage (or several, split at
sentence boundaries, when it is longer than the model's window).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from .records import Article, Passage, outlet_of, safe_url

TRIM = " \t\r\n\xa0\ufeff\u200b"
TERMINAL = tuple(".!?…:;")
# Closing quotes and brackets after the punctuation ('... he said."'); a quote alone
# ends nothing: "Rank 'set to sell off film unit'" is a headline, not a sentence.
CLOSING = "\"”’'»)]"
HEADING_MAX_WORDS = 14
HEADING_MAX_CHARS = 120

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")
_READ_MORE = re.compile(
    r"^(read more|read also|also read|related|related articles?|see also|more on this|"
    r"recommended|watch|listen)(\s*[:|»>–—-]|[\s.…!»>]*$)",
    re.I,
)
_UI = re.compile(
    r"^(loading|please wait|advertisement|sponsored( content)?|subscribe|sign up|share|"
    r"share this( article| story)?|print|email|comments?|skip to (main )?content|"
    r"accept cookies|cookie settings|back to top|next article|previous article|"
    r"click here)[\s.…!]*$",
    re.I,
)
_SOURCE_LINE = re.compile(
    r"^(source|sources|credit|credits|photo|photos|image|images|editing by|reporting by|"
    r"additional reporting by|writing by|compiled by)\b\s*:?",
    re.I,
)
_CREDIT = re.compile(
    r"^(\(?[A-Z][A-Z/&.\-]{0,11}\)?|getty( images)?|reuters|afp|ap photo|anadolu( agency)?|"
    r"xinhua|tass|©.*|\(c\).*)$",
    re.I,
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’')\]]*\s+(?=[\"“‘(\[]?[A-Z0-9])")
_MONTHS = (
    "january february march april may june july august september october november december"
).split()
_MONTH_RE = "(?P<month>" + "|".join(m.capitalize() for m in _MONTHS) + ")"
_TEXT_DATES = (
    re.compile(_MONTH_RE + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})\b"),
    re.compile(r"\b(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH_RE + r",?\s+(?P<year>\d{4})\b"),
    re.compile(r"\b(?P<year>\d{4})-(?P<mon>\d{2})-(?P<day>\d{2})\b"),
)


@dataclass(frozen=True)
class Unit:
    """A candidate paragraph: a trimmed span of the article text."""

    start: int
    end: int
    text: str
    block: int
    lines_before: int  # lines of the same block before this unit


_THOUSANDS = re.compile(r"(?<=\d)[,.](?=\d{3}\b)")  # 1,165 == 1165
_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Case, punctuation and whitespace folded away: the near-duplicate key."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(_THOUSANDS.sub("", text)))


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in TRIM:
        start += 1
    while end > start and text[end - 1] in TRIM:
        end -= 1
    return start, end


def _ends_sentence(text: str) -> bool:
    return text.rstrip(TRIM).rstrip(CLOSING).endswith(TERMINAL)


def _continues(line: str, following: str) -> bool:
    """Whether a hard-wrapped ``line`` runs on into ``following``."""
    if _ends_sentence(line) or len(line.split()) < 6:
        return False
    return following[:1].islower() or line.rstrip(TRIM)[-1:] in ",–—-"


def units(text: str, start: int = 0) -> list[Unit]:
    """Split ``text[start:]`` into units with exact, trimmed offsets."""
    lines: list[tuple[int, int]] = []  # trimmed (start, end) or (-1, -1) for blank
    for match in _LINE.finditer(text, start):
        if match.start() == match.end():
            break
        s, e = _trimmed(text, match.start(), match.end())
        lines.append((s, e) if e > s else (-1, -1))
    out: list[Unit] = []
    block, in_block, cur = 0, 0, None
    for s, e in lines:
        if s < 0:
            if cur:
                out.append(Unit(cur[0], cur[1], text[cur[0] : cur[1]], block, cur[2]))
                cur = None
            if in_block:
                block += 1
            in_block = 0
            continue
        if cur and _continues(text[cur[0] : cur[1]], text[s:e]):
            cur = (cur[0], e, cur[2])
        else:
            if cur:
                out.append(Unit(cur[0], cur[1], text[cur[0] : cur[1]], block, cur[2]))
            cur = (s, e, in_block)
        in_block += 1
    if cur:
        out.append(Unit(cur[0], cur[1], text[cur[0] : cur[1]], block, cur[2]))
    return out


def _is_short_line(text: str) -> bool:
    return (
        "\n" not in text
        and len(text) <= HEADING_MAX_CHARS
        and len(text.split()) <= HEADING_MAX_WORDS
        and not _ends_sentence(text)
    )


def _same_caption(a: str, b: str) -> bool:
    na, nb = normalise(a), normalise(b)
    if not na or not nb:
        return False
    short, long_ = sorted((na, nb), key=len)
    return na == nb or (len(short) >= 30 and long_.startswith(short))


def classify(items: list[Unit]) -> list[str]:
    """Label each unit (see the module docstring); ``paragraph`` is kept."""
    labels: list[str] = []
    last_kept: str | None = None
    for unit in items:
        text = unit.text
        words = len(text.split())
        if _READ_MORE.match(text):
            label = "read_more"
        elif words <= 8 and _UI.match(text):
            label = "ui"
        elif (
            words <= 15
            and _SOURCE_LINE.match(text)
            and ":" in text[:30]
            or (words <= 15 and re.match(r"^(editing|reporting|writing) by\b", text, re.I))
        ):
            label = "source"
        elif (
            words <= 4
            and not _ends_sentence(text)
            and (_CREDIT.match(text) or unit.lines_before > 0)
        ):
            label = "credit"
        elif last_kept is not None and _same_caption(last_kept, text):
            label = "repeat"
        elif _is_short_line(text) and unit.lines_before == 0:
            label = "short"
        else:
            label = "paragraph"
        if label == "paragraph":
            last_kept = text
        elif label == "short":
            last_kept = None
        labels.append(label)
    # Resolve short lines: a heading needs a paragraph after it.
    following_is_paragraph = False
    for i in range(len(items) - 1, -1, -1):
        if labels[i] == "short":
            labels[i] = "heading" if following_is_paragraph else "widget"
            following_is_paragraph = False
        elif labels[i] == "paragraph":
            following_is_paragraph = True
    first = next((i for i, lab in enumerate(labels) if lab not in ("ui", "credit")), None)
    if first is not None and labels[first] == "heading":
        labels[first] = "title"
    return labels


def sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans of ``text`` (shifted by ``offset``), trimmed, covering it."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append(_trimmed(text, start, match.start()))
        start = match.end()
    spans.append(_trimmed(text, start, len(text)))
    return [(s + offset, e + offset) for s, e in spans if e > s]


def split_long(
    text: str, start: int, count_tokens: Callable[[str], int], max_tokens: int
) -> list[tuple[int, int]]:
    """Pack sentences into spans that fit a ``max_tokens`` model window.

    ``count_tokens`` counts word pieces including the special tokens (what
    ``count_tokens("")`` returns). Word-piece counts add up across whitespace,
    so each sentence (or, for a run-on sentence, each word) is tokenized once.
    """
    overhead = count_tokens("")
    budget = max_tokens - overhead
    if len(text) <= budget or count_tokens(text) - overhead <= budget:
        return [(start, start + len(text))]
    pieces: list[tuple[int, int, int]] = []  # (start, end, cost)
    for s, e in sentences(text, start):
        cost = count_tokens(text[s - start : e - start]) - overhead
        if cost <= budget:
            pieces.append((s, e, cost))
            continue
        # One over-long sentence: cut between words.
        for m in re.finditer(r"\S+", text[s - start : e - start]):
            w_cost = count_tokens(m.group()) - overhead
            ws, we = m.start() + s, m.end() + s
            if pieces and pieces[-1][0] >= s and pieces[-1][2] + w_cost <= budget:
                pieces[-1] = (pieces[-1][0], we, pieces[-1][2] + w_cost)
            else:
                pieces.append((ws, we, w_cost))
    packed: list[list[int]] = []
    for s, e, cost in pieces:
        if packed and packed[-1][2] + cost <= budget:
            packed[-1][1:] = [e, packed[-1][2] + cost]
        else:
            packed.append([s, e, cost])
    return [(s, e) for s, e, _ in packed]


def infer_date(texts: list[str]) -> str | None:
    """The first full calendar date (with a year) in ``texts``; never invents one."""
    for text in texts:
        best: tuple[int, str] | None = None
        for pattern in _TEXT_DATES:
            for m in pattern.finditer(text):
                groups = m.groupdict()
                month = (
                    _MONTHS.index(groups["month"].lower()) + 1
                    if groups.get("month")
                    else int(groups["mon"])
                )
                try:
                    found = dt.date(int(groups["year"]), month, int(groups["day"])).isoformat()
                except ValueError:
                    continue
                if best is None or m.start() < best[0]:
                    best = (m.start(), found)
                break
        if best:
            return best[1]
    return None


def passage_id(source: str, text: str, occurrence: int = 0, normalised: str | None = None) -> str:
    """Stable id from the source and the normalised text (not list positions);
    ``normalised`` is ``normalise(text)`` when the caller has it already."""
    norm = normalise(text) if normalised is None else normalised
    key = f"{source}\x1f{norm}" + (f"\x1f{occurrence}" if occurrence else "")
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def approx_tokens(text: str) -> int:
    """A word-piece estimate for when no tokenizer is at hand (~1.3 per word)."""
    return 2 + sum(1 + len(w) // 7 for w in re.findall(r"\w+|[^\w\s]", text))


def chunk_article(
    article: Article,
    count_tokens: Callable[[str], int] = approx_tokens,
    max_tokens: int = 256,
) -> tuple[Article, list[Passage]]:
    """Passages of one article, and the article with an inferred date if it had none."""
    items = units(article.text, article.body_start)
    labels = classify(items)
    if "paragraph" not in labels:  # a one-liner or list of short lines: keep the text
        labels = ["paragraph" if lab in ("title", "heading", "widget") else lab for lab in labels]
    kept = [
        (u, lab)
        for u, lab in zip(items, labels, strict=True)
        if lab in ("paragraph", "heading", "title")
    ]
    title = article.title
    if title is None:
        title = next((u.text for u, lab in kept if lab == "title"), None)
    date, date_source = article.date, article.date_source
    if date is None:
        date = infer_date([u.text for u, lab in kept if lab == "paragraph"])
        date_source = "text" if date else None
    article = replace(article, title=title, date=date, date_source=date_source)

    passages: list[Passage] = []
    seen: Counter[str] = Counter()
    section: str | None = None
    paragraph = 0
    for unit, label in kept:
        if label == "heading":
            section = unit.text
            continue
        if label == "title":
            continue
        paragraph += 1
        spans = split_long(unit.text, unit.start, count_tokens, max_tokens)
        for part, (s, e) in enumerate(spans, start=1):
            text = article.text[s:e]
            key = normalise(text)
            pid = passage_id(article.source, text, seen[key], key)
            seen[key] += 1
            passages.append(
                Passage(
                    id=pid,
                    source=article.source,
                    paragraph=paragraph,
                    part=part,
                    section=section,
                    start=s,
                    end=e,
                    text=text,
                    date=date,
                    date_source=date_source,
                    title=title,
                    group=pid,
                    outlet=outlet_of(article.publisher, article.url),
                    url=safe_url(article.url),
                )
            )
    return article, passages
