"""The one tokenizer shared by passages and questions (BM25 terms, highlights).

BM25 itself lives with the segments (:mod:`store.embedded.bm25`): raw postings
per segment, rank-bm25 ``BM25Okapi`` statistics computed over live passages.
"""

from __future__ import annotations

import re

import Stemmer

TOKENIZER_VERSION = "snowball-english-stop-v1"

# NLTK's English stopword list (public domain word list), plus the possessive "s".
STOPWORDS = frozenset(
    """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what
    which who whom this that these those am is are was were be been being have has had
    having do does did doing a an the and but if or because as until while of at by for
    with about against between into through during before after above below to from up
    down in out on off over under again further then once here there when where why how
    all any both each few more most other some such no nor not only own same so than too
    very s t can will just don should now d ll m o re ve y ain aren couldn didn doesn
    hadn hasn haven isn ma mightn mustn needn shan shouldn wasn weren won wouldn
    """.split()
)

_TOKEN = re.compile(r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[^\W\d_]+", re.U)
_stemmer = Stemmer.Stemmer("english")


_CACHE_LIMIT = 500_000


class _Terms(dict[str, str]):
    """Raw token -> term ("" for a stopword): lowercasing, stopword test and stemming
    done once per distinct token, since the same few words make up most text."""

    def __missing__(self, word: str) -> str:
        low = word.lower()
        if low in STOPWORDS:
            term = ""
        elif low[0].isdigit():
            term = low.replace(",", "")
        else:
            term = _stemmer.stemWord(low)
        if len(self) < _CACHE_LIMIT:
            self[word] = term
        return term


_terms = _Terms()


def term_of(word: str) -> str:
    """The term of one raw token ("" for a stopword)."""
    return _terms[word]


def tokenize_spans(text: str) -> list[tuple[str, int, int]]:
    """(term, start, end) for every indexed token of ``text``: lowercased,
    stopwords dropped, Snowball-stemmed, thousands separators removed."""
    out = []
    for match in _TOKEN.finditer(text):
        term = _terms[match.group()]
        if term:
            out.append((term, match.start(), match.end()))
    return out


def term_spans(text: str, wanted: set[str] | frozenset[str]) -> list[list[int]]:
    """[start, end] of every token of ``text`` whose term is in ``wanted`` (highlights).

    Only the tokens that can have such a term are looked at: a word whose stem is
    ``t`` starts with ``t`` less its last two letters (Snowball's English steps
    replace at most that much of a suffix: "rating" -> "rate", "possibility" ->
    "possibl", "skies" -> "sky"), so one scan of the text for those beginnings,
    each match checked against the tokenizer, finds them all (at 1M passages the
    highlights had cost ~1 ms of a 15 ms question, one token at a time)."""
    if not wanted:
        return []
    terms = _terms
    return [
        list(m.span())
        for m in _finder(frozenset(wanted)).finditer(text)
        if terms[m.group()] in wanted
    ]


_FINDERS: dict[frozenset[str], re.Pattern[str]] = {}


def _finder(wanted: frozenset[str]) -> re.Pattern[str]:
    """A pattern matching exactly the tokens of :data:`_TOKEN` that may have a term of
    ``wanted`` (all tokens when a wanted term is a number: their separators move)."""
    found = _FINDERS.get(wanted)
    if found is None:
        if any(t[0].isdigit() for t in wanted):
            found = _TOKEN
        else:
            heads = sorted({t[: max(1, len(t) - 2)] for t in wanted}, key=len, reverse=True)
            words = "|".join(re.escape(h) for h in heads)
            # a run of letters (as _TOKEN takes it), from its start, opening with a head
            found = re.compile(rf"(?<![^\W\d_])(?:{words})[^\W\d_]*", re.IGNORECASE)
        if len(_FINDERS) >= 1024:
            _FINDERS.clear()
        _FINDERS[wanted] = found
    return found


def tokenize(text: str) -> list[str]:
    """The terms of ``text``; the same function serves passages and queries."""
    terms = _terms
    return [t for t in (terms[w] for w in _TOKEN.findall(text)) if t]
