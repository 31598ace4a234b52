"""Figures across sources: the same measure reported with different values.

Reports of one event disagree on numbers (9 killed in one article, 13 in another,
5 in a third) and a reader of the top hit never learns it. For a question that
asks for a casualty count ("How many people were killed...?"), the figures of that
measure are read from every sentence of the results that names what the question
names (its key names, e.g. "Ganja"), each with its verbatim quote, file, offsets and
date; when the values differ they are shown side by side. Nothing is merged or
judged: each value stands with its source. Rules, not a model: a number (digits
or words) next to the verb or adjective of the measure, in either order
("killing nine people", "13 civilians were killed"); the first figure of a measure
in a sentence is taken (later ones are usually parts of it: "including four women").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..records import Passage

MEASURES = {  # the measure a word reports
    "killed": "killed",
    "killing": "killed",
    "dead": "killed",
    "died": "killed",
    "die": "killed",
    "deaths": "killed",
    "wounded": "wounded or injured",
    "wounding": "wounded or injured",
    "injured": "wounded or injured",
    "injuring": "wounded or injured",
    "injuries": "wounded or injured",
}
WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
}  # fmt: skip
_NUM = r"(?P<num>\d{1,3}(?:,\d{3})+|\d+|" + "|".join(WORDS) + r")"
_VERB = "|".join(sorted(MEASURES, key=len, reverse=True))
# "killing nine people", "killed five civilians", "injured 17 others"
_VERB_FIRST = re.compile(
    rf"\b(?P<verb>{_VERB})\s+(?:at least |nearly |about |some )?{_NUM}\b", re.I
)
# "13 civilians were killed", "nearly 50 others injured", "22 civilians have died",
# "34 others – among them 16 women – were wounded" (an aside between the two)
_NUM_FIRST = re.compile(
    rf"\b{_NUM}\s+(?:(?!(?:and|or|but)\b)[A-Za-z-]+\s+){{0,2}}?"
    r"(?:(?:[A-Za-z-]+)?(?:\s?[–—]\s[^–—.]{1,80}\s[–—]\s|,\s(?:among|including)\s[^,.]{1,60},\s))?"
    r"(?:(?:were|was|are|have been|had been|have|had)\s+)?"
    rf"(?P<verb>{_VERB})\b(?!\s+(?:person|people|man|woman|child|body|bodies)\b)",
    re.I,
)  # not "one dead person": a body counted, not a toll
_SENTENCE = re.compile(r"[^.!?]+[.!?]?")


# Amounts: "5%", "4.75 per cent", "£9.4m", "$280bn", "€1.2 billion"
_SCALE = {"m": 1e6, "bn": 1e9, "million": 1e6, "billion": 1e9, "k": 1e3, "": 1.0}
_AMOUNT = re.compile(
    r"(?P<cur>[£$€])(?P<num>\d+(?:,\d{3})*(?:\.\d+)?)(?:\s?(?P<scale>bn|m|k|million|billion)\b)?"
    r"|(?P<pnum>\d+(?:\.\d+)?)(?:%|\s?per\s?cent\b|\s?percent\b)",
    re.I,
)
CURRENCIES = {"£": "pounds", "$": "dollars", "€": "euros"}
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
}  # fmt: skip
_ORDINAL = re.compile(
    r"\b(?:(?P<word>" + "|".join(ORDINALS) + r")|(?P<digits>\d+)(?:st|nd|rd|th))\b", re.I
)


@dataclass(frozen=True)
class Figure:
    """A value of a measure: ``text[start:end]`` is the number as written."""

    measure: str
    value: float
    start: int
    end: int


def amounts(text: str) -> list[Figure]:
    """Percentages, money amounts and ordinals in ``text``, each with its measure
    ("percent", "pounds", "dollars", "euros", "ordinal") and its value (scaled:
    "£9.4m" is 9,400,000; "ninth" is 9)."""
    out = []
    for m in _ORDINAL.finditer(text):
        word = m.group("word")
        rank = ORDINALS[word.lower()] if word else int(m.group("digits"))
        out.append(Figure("ordinal", rank, *m.span()))
    return out + money_and_percent(text)


def money_and_percent(text: str) -> list[Figure]:
    """The percentages and money amounts of :func:`amounts`."""
    out = []
    for m in _AMOUNT.finditer(text):
        if m.group("cur"):
            scale = _SCALE[(m.group("scale") or "").lower()]
            value = float(m.group("num").replace(",", "")) * scale
            out.append(Figure(CURRENCIES[m.group("cur")], _plain(value), *m.span()))
        else:
            out.append(Figure("percent", _plain(float(m.group("pnum"))), *m.span("pnum")))
    return out


def _plain(value: float) -> float:
    """A whole value as an int (9.0 shows as 9)."""
    return int(value) if value == int(value) else value


def number(word: str) -> int:
    return int(word.replace(",", "")) if word[0].isdigit() else WORDS[word.lower()]


def figures(text: str) -> list[Figure]:
    """The first figure of each measure in ``text`` (one sentence), in text order."""
    found: dict[str, Figure] = {}
    verb_first = list(_VERB_FIRST.finditer(text))
    taken = {m.span("num") for m in verb_first}  # "killed five ... and injured 17": 5 killed
    hits = [*verb_first, *(m for m in _NUM_FIRST.finditer(text) if m.span("num") not in taken)]
    for m in sorted(hits, key=lambda m: m.start("num")):
        measure = MEASURES[m.group("verb").lower()]
        if measure not in found:
            s, e = m.span("num")
            found[measure] = Figure(measure, number(m.group("num")), s, e)
    return sorted(found.values(), key=lambda f: f.start)


_COUNTED = re.compile(r"\s(?!(?:were|was|are|have|had|and|or|in|on|at)\b)([a-z]+)\b")


def with_counted(sentence: str, figure: Figure) -> tuple[int, int]:
    """Where ``figure`` of ``sentence`` is, with the word it counts when one follows
    ("nine people", "13 civilians", "34 others")."""
    counted = _COUNTED.match(sentence, figure.end)
    return figure.start, counted.end() if counted else figure.end


def figure_span(sentence: str, measure: str) -> tuple[int, int] | None:
    """Where ``sentence`` gives its figure of ``measure`` (:func:`with_counted`), or
    None. The first figure of the measure, as :func:`figures` takes it."""
    found = next((f for f in figures(sentence) if f.measure == measure), None)
    return None if found is None else with_counted(sentence, found)


def asked_measure(question: str) -> str | None:
    """The measure a "how many" question asks about, if it names one."""
    q = question.lower()
    if not re.search(r"\bhow many\b|\bnumber of\b|\bdeath toll\b|\btoll\b", q):
        return None
    for word in re.findall(r"[a-z]+", q):
        if word in MEASURES:
            return MEASURES[word]
    return None


def sentences(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if m.group().strip()]


def across(
    measure: str,
    passages: list[Passage],
    names: list[str],
    before: Callable[[int], str] | None = None,
) -> list[dict[str, Any]]:
    """Each value of ``measure`` reported by ``passages`` (Passage objects, best
    first) in a sentence that names every one of ``names``, or that follows one
    naming them ("…Ganja… killing nine people. As many as 34 others … were
    wounded"); ``before(i)``: the last sentence of the paragraph before passage
    ``i`` in its article, read only for a first sentence that needs it. One entry
    per (value, file)."""
    out, seen = [], set()
    for i, p in enumerate(passages):
        previous: str | None = None  # the sentence before; None: not read yet
        for s, e in sentences(p.text):
            sentence = p.text[s:e]
            found = [f for f in figures(sentence) if f.measure == measure]
            if found and not _names_all(sentence, names):
                if previous is None:
                    previous = before(i) if before else ""
                if not _names_all(previous, names) or _names_other_place(sentence):
                    found = []
            previous = sentence
            for f in found:
                if (f.value, p.source) in seen:
                    continue
                seen.add((f.value, p.source))
                out.append(
                    {
                        "value": f.value,
                        "text": sentence.strip(),
                        "file": p.source,
                        "paragraph": p.paragraph,
                        "start": p.start + s + f.start,
                        "end": p.start + s + f.end,
                        "date": p.date,
                    }
                )
    return out


def _names_all(text: str, names: list[str]) -> bool:
    return all(n.lower() in text.lower() for n in names)


_PLACE = re.compile(r"\b(?:in|at|near|on)\s+(?:the\s+)?[A-Z][a-z]+")


def _names_other_place(sentence: str) -> bool:
    """A sentence that names a place of its own ("in Tartar") reports that place."""
    return bool(_PLACE.search(sentence))


def last_sentence(text: str) -> str:
    """The last sentence of ``text`` (a paragraph), or ""."""
    spans = sentences(text)
    return text[spans[-1][0] : spans[-1][1]] if spans else ""
