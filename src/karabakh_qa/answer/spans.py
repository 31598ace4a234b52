"""What kind of answer a question wants, and the spans of a passage that could be it.

A reader asking "How many…", "Who…" or "When…" wants the passage that holds a
quantity, a name or a date, not the lede that restates the topic. Both steps
are small rule sets (no model, no service): the question's wording gives the
expected type (:func:`answer_type`); a passage's candidate spans are numbers
with their units, dates, and runs of capitalised words (names of people,
organisations and places), each with character offsets into the passage text
(:func:`find_spans`). A span that only repeats the question's own words is not
an answer. Offsets are the passage's, so ``passage.start + span.start`` is the
article's: the verbatim invariant holds for spans too.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from ..sparse import tokenize, tokenize_spans

TYPES = ("person", "organisation", "place", "number", "date", "reason", "description")
NAMES = ("person", "organisation", "place")

# Question cues (lowercased question): the cue that starts earliest wins, then the
# first listed ("Who was coaching Safin when he won?" asks for a person).
_ORG_NOUNS = (
    "company|companies|firm|firms|group|bank|club|team|organi[sz]ation|party|body|union|"
    "network|channel|newspaper|paper|agency|broadcaster|studio|label|maker|manufacturer|"
    "airline|retailer|carrier|operator|watchdog|regulator|court|council|government|"
    "department|ministry|band|side|website|service|publisher|insurer|chain|brand|business|"
    "supermarket|charity|developer|producer|carmaker|bidder|rival|exchange|association|"
    "federation|league|commission|authority|institute|alliance|consortium|giant"
)
_PLACE_NOUNS = (
    "country|countries|city|cities|town|towns|venue|stadium|region|state|nation|capital|"
    "county|ground|arena|street|road|island|islands|river|mountains?|airport|village|"
    "district|province|continent|port|suburb|area|areas|site|sites|resort|beach|school|"
    "university|college|hospital|prison|jail|theatre|cinema|hotel|park|museum|gallery|"
    "church|cathedral|palace|castle|building|constituency|seat|borough|territory|border|"
    "coast|lake|sea|ocean|bay|valley|desert|forest|peninsula|circuit|course|oilfields?|"
    "plant|factory|mine|base|camp|zone|market|markets|location"
)
_PERSON_NOUNS = (
    "player|players|actor|actress|minister|singer|manager|chief|boss|star|director|author|"
    "writer|leader|man|woman|person|coach|judge|president|chairman|chairwoman|chair|"
    "executive|presenter|winner|spokesman|spokeswoman|spokesperson|economist|analyst|"
    "striker|midfielder|defender|goalkeeper|keeper|captain|winger|forward|batsman|bowler|"
    "chancellor|secretary|governor|mayor|senator|founder|editor|journalist|composer|"
    "prosecutor|lawyer|attorney|champion|politician|campaigner|rapper|comedian|"
    "speaker|architect|dj|qc|mp|mep|peer|official|officer|expert|scientist|researcher|"
    "professor|doctor|surgeon|psychologist|ambassador|envoy|king|queen|prince|princess|"
    "pope|bishop|designer|artist|musician|guitarist|drummer|frontman|producer|"
    "entrepreneur|tycoon|billionaire|businessman|businesswoman|banker|trader|commissioner|"
    "deputy|candidate|nominee|athlete|runner|sprinter|cyclist|boxer|golfer|jockey|referee|"
    "umpire|blogger|dancer|poet|novelist|playwright|filmmaker|host|correspondent|"
    "reporter|columnist|critic|commentator|adviser|advisor|aide|consultant|premier|"
    "monarch|widow|wife|husband|son|daughter|father|mother|victim|suspect|defendant|"
    "hacker|teenager|boy|girl|member|owner|investor|chef|successor|"
    "predecessor|heir"
)
# Words between "which" and the noun it asks about ("which Algerian energy minister",
# "what annual growth rate"): up to three, none of them a verb or a function word
# ("what did the company say" asks for a description, not a company); the noun may
# carry a hyphenated prefix ("co-chairman", "vice-president").
_MODS = (
    r"(?:(?!(?:did|does|do|is|are|was|were|be|been|has|have|had|will|would|can|could|should|"
    r"may|might|must|of|to|in|on|for|from|by|with|at|as|that|this|these|those|it|its|his|her|"
    r"their|and|or|not)\b)[\w'’-]+ ){0,3}(?:[a-z]+-)?"
)
_QUESTION_RULES: tuple[tuple[str, str], ...] = (
    (r"\bhow (many|much|long|old|far|big|large|high|fast|often)\b", "number"),
    (
        r"\b(what|which) " + _MODS + r"(percentage|proportion|share|number|amount|sum|price|"
        r"figure|rate|total|score|margin|fee|fine|value|cost|salary|level|size|height|"
        r"distance|age|population|budget|profit|loss|deficit|stake|tally)\b",
        "number",
    ),
    (r"\bby how\b|\bat what (price|rate|cost)\b", "number"),
    (
        r"\bwhen\b|\b(what|which) " + _MODS + r"(years?|dates?|days?|months?|time|season|"
        r"decades?|weeks?|deadline|period|century|hour)\b|since when",
        "date",
    ),
    (r"\bwhere\b|\b(what|which|in which|in what) " + _MODS + "(" + _PLACE_NOUNS + r")\b", "place"),
    (
        r"\bwhy\b|\bwhat (caused|led to|prompted|is the reason|was the reason|were the reasons)"
        r"|\bfor what reason\b|\bhow come\b|\b(what|which) " + _MODS + r"(cause|reason|"
        r"reasons|motive|explanation)\b",
        "reason",
    ),
    (r"\b(what|which|whose) " + _MODS + "(" + _ORG_NOUNS + r")\b", "organisation"),
    (r"\bwho(m|se)?\b|\b(what|which) " + _MODS + "(" + _PERSON_NOUNS + r")\b", "person"),
)
_QUESTION_CUES = tuple((re.compile(pattern), kind) for pattern, kind in _QUESTION_RULES)

MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_NUMBER = r"\d+(?:[.,]\d+)*"
_SCALE = r"(?:\s?(?:bn|m|k|trillion|billion|million|thousand|hundred)\b)?"
_UNIT = (
    r"(?:\s?%|\s?(?:per ?cent|percent|points?|pts|years?|months?|weeks?|days?|hours?|minutes?|"
    r"seconds?|people|jobs|workers|staff|copies|units|votes|seats|goals|runs|wickets|miles|"
    r"km|kilometres|metres|m|kg|tonnes|barrels|shares|pounds|dollars|euros|pence|cents)\b)?"
)
# "2-1", "3-6 7-6 (7-3) 6-1": a result, which only means anything whole
SCORE = re.compile(
    r"\b\d{1,3}-\d{1,3}(?:\s\(\d{1,2}-\d{1,2}\))?"
    r"(?:,?\s\d{1,2}-\d{1,2}(?:\s\(\d{1,2}-\d{1,2}\))?)*\b"
)
_SPAN_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("number", SCORE),  # a score, one or several sets with tie-breaks
    (
        "date",
        re.compile(
            rf"\b(?:(?:{DAYS}),?\s)?(?:\d{{1,2}}(?:st|nd|rd|th)?\s(?:{MONTHS})\.?(?:\s\d{{4}})?"
            rf"|(?:{MONTHS})\.?\s\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s\d{{4}})?"
            rf"|(?:{MONTHS})(?:\s\d{{4}})?|(?:{DAYS}))\b"
            r"|\b(?:1[89]|20)\d{2}\b(?:-\d{2})?"
            r"|\b(?:last|next|this) (?:year|month|week|season|weekend)\b"
        ),
    ),
    (
        "number",
        re.compile(
            rf"(?:[£$€¥]\s?{_NUMBER}{_SCALE}|\b{_NUMBER}{_SCALE}{_UNIT}"
            r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|"
            r"thirty|forty|fifty|hundred|dozens?|hundreds|thousands|millions)"
            rf"{_SCALE}{_UNIT})",
            re.IGNORECASE,
        ),
    ),
)
# Capitalised words in a row, joined by a connector; never across a full stop after
# a word ("Algeria. Chakib Khelil" is two names), but after an initial ("J. K.").
_CAPITALISED = re.compile(
    r"\b[A-Z][\w'’&.-]*(?:(?<![a-z]{2}\.)\s(?:of|de|van|von|der|du|la|le|al|bin|and|&)?\s?"
    r"[A-Z][\w'’&.-]*)*"
)
_ORG_CUES = re.compile(
    r"\b(?:Ltd|Inc|Corp|Corporation|Group|Bank|Party|Association|Council|Commission|"
    r"Company|Co|plc|PLC|FC|United|City|Rovers|Federation|Union|Agency|Institute|"
    r"University|Board|Authority|Office|Ministry|Department|Court|Airways|Airlines|Motors|"
    r"Records|Studios|Pictures|Networks?|Systems|Technologies|Software|Telecom)\b"
    r"|^[A-Z]{2,}$"
)
_IN_PLACE = re.compile(r"\b(?:in|at|near)\s$")
_PLACE_BEFORE = re.compile(r"\b(?:in|at|from|to|near|across|outside|inside)\s$")
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|[\"“‘(]\s*)$")
_NOT_NAMES = frozenset(
    "The A An This That These Those It He She They We I You His Her Its Their Our But And "
    "Or If In On At For From To By With As Mr Mrs Ms Dr Sir Lord Lady Prof".split()
)


@dataclass(frozen=True)
class Span:
    """A candidate answer: ``text == passage_text[start:end]``; ``type`` is one of
    ``TYPES`` (names: person, organisation or place, as far as the rules can tell)."""

    start: int
    end: int
    text: str
    type: str
    score: float = 0.0

    def to_dict(self, offset: int = 0) -> dict[str, Any]:
        """The JSON shape, offsets moved by ``offset`` (the passage's start in its article)."""
        return {
            "start": self.start + offset,
            "end": self.end + offset,
            "text": self.text,
            "type": self.type,
        }


def answer_type(question: str) -> str:
    """The kind of answer ``question`` asks for (one of ``TYPES``)."""
    q = " ".join(question.lower().split())
    found = [
        (m.start(), n, kind) for n, (cue, kind) in enumerate(_QUESTION_CUES) if (m := cue.search(q))
    ]
    return min(found)[2] if found else "description"


_PLACE_CUES = re.compile(
    r"\b(?:River|Sea|Lake|Mountains?|Valley|Region|Province|District|County|Street|"
    r"Square|Island|Islands|Bay|Gulf|Ocean|Desert|Airport|Peninsula|Coast|Strait|Corridor|"
    r"Road|Avenue|Lane|Stadium|Arena|Bridge)$"
)


def _name_type(text: str, before: str) -> str:
    if _ORG_CUES.search(text):
        return "organisation"
    if _PLACE_CUES.search(text):
        return "place"  # "Araz River", "Jabrayil Region": a place, though two words
    if " " in text:  # a name of two words after "in" or "at" is a place: "in San Francisco"
        return "place" if _IN_PLACE.search(before[-8:]) else "person"
    return "place" if _PLACE_BEFORE.search(before[-12:]) else "name"


def find_spans(text: str, question_terms: set[str] | frozenset[str] = frozenset()) -> list[Span]:
    """Candidate answer spans of ``text`` (numbers with units, dates, names), in text
    order, leaving out those whose every term is one of ``question_terms``."""
    out = []
    for span in _spans_of(text):
        terms = set(tokenize(span.text))
        if terms and terms <= question_terms:
            continue  # says back what the question said
        if span.type not in ("date", "number") and terms & question_terms:
            trimmed = _without_question_words(span, question_terms)
            if trimmed is None:
                continue  # a name the question already names
            span = trimmed
        out.append(span)
    return out


@functools.lru_cache(maxsize=8192)
def _spans_of(text: str) -> tuple[Span, ...]:
    """Every number, date and name of ``text``, in text order, whatever the question:
    kept for a text read again (one question reads a sentence for its ranking, its
    marking and its answer; many questions read the same popular passages)."""
    found: list[Span] = []
    taken = bytearray(len(text))
    for kind, pattern in _SPAN_RULES:
        for m in pattern.finditer(text):
            s, e = m.span()
            while e > s and text[e - 1] in " ,.":
                e -= 1
            if e <= s or any(taken[s:e]) or not any(c.isalnum() for c in text[s:e]):
                continue
            found.append(Span(s, e, text[s:e], kind))
            taken[s:e] = b"\x01" * (e - s)
    for m in _CAPITALISED.finditer(text):
        s, e = m.span()
        while e > s and text[e - 1] == ".":  # a full stop ends the sentence, not the name
            e -= 1
        words = text[s:e].split()
        while words and words[0].strip("'’") in _NOT_NAMES:
            s = text.index(words[1], s + len(words[0])) if len(words) > 1 else e
            words = words[1:]
        if not words or any(taken[s:e]):
            continue
        if len(words) == 1 and _SENTENCE_START.search(text[max(0, s - 3) : s]):
            continue  # one capitalised word opening a sentence is not a name
        found.append(Span(s, e, text[s:e], _name_type(text[s:e], text[:s])))
        taken[s:e] = b"\x01" * (e - s)
    return tuple(sorted(found, key=lambda x: x.start))


_CONNECTORS = frozenset("of de van von der du la le al bin and &".split())


def _without_question_words(span: Span, question_terms: set[str] | frozenset[str]) -> Span | None:
    """A name span less the words at its ends that the question says ("Finance Minister
    Jusuf Anwar" for "Who is the finance minister?" is "Jusuf Anwar"); None when
    nothing is left or the question's words remain inside it."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", span.text)]

    def said(w: tuple[int, int]) -> bool:
        word = span.text[w[0] : w[1]]
        terms = set(tokenize(word))
        return word.lower() in _CONNECTORS or bool(terms and terms <= question_terms)

    while words and said(words[0]):
        words.pop(0)
    while words and said(words[-1]):
        words.pop()
    if not words:
        return None
    lo, hi = words[0][0], words[-1][1]
    text = span.text[lo:hi]
    if set(tokenize(text)) & question_terms:
        return None
    return Span(span.start + lo, span.start + hi, text, span.type)


def matches(kind: str, span_type: str) -> float:
    """How well a span of ``span_type`` answers a question wanting ``kind`` (0..1)."""
    if kind == span_type or (kind == "description" and span_type == "phrase"):
        return 1.0
    if kind in NAMES and span_type in (*NAMES, "name"):
        return 0.6
    if kind == "number" and span_type == "date":
        return 0.3  # "how long" answered by a year range
    return 0.0


_PHRASE_WORD = re.compile(r"[\w][\w'’.-]*\w|\w")


def phrases(text: str, question_terms: set[str] | frozenset[str] = frozenset()) -> list[Span]:
    """Runs of content words of ``text`` that the question does not contain, split at
    punctuation, stop words and question terms: the candidates when a question wants
    a description ("What…"), as early extractive QA systems took them."""
    out: list[Span] = []
    start = end = -1
    term_at = {begin: term for term, begin, _ in tokenize_spans(text)}
    for m in _PHRASE_WORD.finditer(text):
        term = term_at.get(m.start())
        content = term is not None and term not in question_terms
        if start >= 0 and (not content or text[end : m.start()].strip()):
            out.append(Span(start, end, text[start:end], "phrase"))  # a stop word or punctuation
            start = -1
        if content:
            start = m.start() if start < 0 else start
            end = m.end()
    if start >= 0:
        out.append(Span(start, end, text[start:end], "phrase"))
    return out


def best_span(
    text: str,
    kind: str,
    question_terms: set[str],
    within: tuple[int, int] | None = None,
) -> Span | None:
    """The span of ``text`` (inside ``within``, a sentence, when given) that best answers
    a question of type ``kind``: the type match, then closeness to the question's
    terms in the text (the answer sits near what the question names)."""
    if kind == "reason":
        return None
    lo, hi = within or (0, len(text))
    part = text[lo:hi]  # only the sentence is read (at 30 candidates a query, it adds up)
    term_at = [begin for term, begin, _ in tokenize_spans(part) if term in question_terms]
    best: Span | None = None
    candidates = (
        phrases(part, question_terms) if kind == "description" else find_spans(part, question_terms)
    )
    for span in candidates:
        fit = matches(kind, span.type)
        if fit <= 0:
            continue
        near = min((abs(t - span.start) for t in term_at), default=len(text))
        score = fit + 1.0 / (1.0 + near / 40.0)
        if best is None or score > best.score:
            best = Span(span.start + lo, span.end + lo, span.text, span.type, round(score, 6))
    return best


TYPED = ("number", "date")  # kinds the rules tell reliably (names: any capital letter)


def holds_kind(
    text: str, kind: str, question_terms: set[str] | frozenset[str] = frozenset()
) -> bool:
    """Whether ``text`` holds a span that can answer a question wanting ``kind``
    (one the question does not already say): always True for other kinds."""
    if kind not in TYPED:
        return True
    return any(matches(kind, span.type) > 0 for span in find_spans(text, question_terms))


def typed_sentence(
    text: str,
    sentences: list[tuple[int, int]],
    marked: tuple[int, int],
    kind: str,
    question_terms: set[str],
) -> tuple[int, int]:
    """The sentence of a passage to mark for a question wanting a number or a date:
    the ``marked`` one (closest in meaning and terms) when it holds one, else the
    passage's sentence that does and holds most of the question's terms (nearest
    the marked one on a tie). "How much did Indonesia spend…" is answered by "It
    spent 59.2 trillion rupiah…", not by the sentence about why it pays subsidies."""
    if kind not in TYPED or holds_kind(text[marked[0] : marked[1]], kind, question_terms):
        return marked
    holding = [s for s in sentences if holds_kind(text[s[0] : s[1]], kind, question_terms)]
    if not holding:
        return marked

    def key(s: tuple[int, int]) -> tuple[int, int]:
        return len(set(tokenize(text[s[0] : s[1]])) & question_terms), -abs(s[0] - marked[0])

    return max(holding, key=key)
