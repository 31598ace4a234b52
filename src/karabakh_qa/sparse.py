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


def term_spans(text: str, wanted: set[str]) -> list[list[int]]:
    """[start, end] of every token of ``text`` whose term is in ``wanted`` (highlights)."""
    terms = _terms
    return [list(m.span()) for m in _TOKEN.finditer(text) if terms[m.group()] in wanted]


def tokenize(text: str) -> list[str]:
    """The terms of ``text``; the same function serves passages and queries."""
    terms = _terms
    return [t for t in (terms[w] for w in _TOKEN.findall(text)) if t]
