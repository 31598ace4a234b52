"""Whether the archive answers a question, judged on the question's key content.

A look-alike question (the same company's results in another year, the same
tournament another season) shares its topic with the archive and scores a high
cosine; what it does not share is its key content: a name, a number, a rare
term. So an answer is found only when a top passage covers those, and what the
archive never mentions at all is reported (``missing_terms``: "The archive
never mentions: 2016").

Key terms are the question's words that carry a number (years, figures) or a
capital letter inside the question (names), and in a large archive any word no
passage holds. Coverage weighs them by idf. The threshold is calibrated on the
dev sets (README, "No answer").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..config import Settings
from ..records import Hit
from ..sparse import tokenize, tokenize_spans
from .spans import holds_kind

ABSENCE_MIN_PASSAGES = 2_000  # from this size, an ordinary word no passage holds is key


@dataclass(frozen=True)
class KeyTerm:
    term: str  # as indexed (lowercased, stemmed)
    surface: str  # as the question wrote it
    df: int  # live passages that hold it


def key_terms(question: str, df_of: Callable[[list[str]], np.ndarray], n: int) -> list[KeyTerm]:
    """The key content terms of ``question``, in order, each once: its names (a word
    with a capital letter, past the first word) and numbers, and, in an archive of
    ``ABSENCE_MIN_PASSAGES`` or more, any other word no passage holds (there,
    ordinary words all occur somewhere, so absence means the subject is not
    covered; in a small archive it means nothing). ``df_of(terms)`` gives document
    frequencies over the ``n`` live passages."""
    picked: list[tuple[str, str, bool]] = []  # (term, surface, a name or a number)
    for term, start, end in tokenize_spans(question):
        word = question[start:end]
        first = not question[:start].strip()
        sure = (not first and any(c.isupper() for c in word)) or any(c.isdigit() for c in word)
        picked.append((term, word, sure))
    if not picked:
        return []
    df = df_of([term for term, _, _ in picked])
    out: dict[str, KeyTerm] = {}
    for (term, surface, sure), freq in zip(picked, df, strict=True):
        if sure or (freq == 0 and n >= ABSENCE_MIN_PASSAGES):
            out.setdefault(term, KeyTerm(term, surface, int(freq)))
    return list(out.values())


def missing(keys: list[KeyTerm]) -> list[str]:
    """The surfaces of the key terms no live passage holds."""
    return [k.surface for k in keys if k.df == 0]


def coverage(keys: list[KeyTerm], texts: list[str], n: int) -> float:
    """The best idf-weighted share of the key terms one of ``texts`` holds (1.0 without
    key terms; ``n`` live passages). Weighted, because a common name ("Europe",
    "Bank") says little, and the rare one ("Chrysler", "2016") is the question."""
    if not keys:
        return 1.0
    weight = {k.term: max(0.1, math.log((n - k.df + 0.5) / (k.df + 0.5))) for k in keys}
    total = sum(weight.values())
    best = 0.0
    for text in texts:
        terms = _terms_of(text)
        have = [t for t in weight if not terms.isdisjoint(_forms(t))]
        best = max(best, sum(weight[t] for t in have) / total)
    return best


DEMONYM = ("ian", "an", "n", "i")  # Iran/Iranian, Armenia/Armenian, Azerbaijan/Azerbaijani


@functools.lru_cache(maxsize=4096)
def _forms(term: str) -> frozenset[str]:
    """A key name and the forms that name the same place or people: the question's
    "Azerbaijan" is held by a passage's "Azerbaijani army", its "Armenian" by
    "Armenia" (numbers stand for themselves)."""
    if any(c.isdigit() for c in term):
        return frozenset((term,))
    longer = {term + end for end in DEMONYM}
    shorter = {term[:-1] for end in ("n", "i") if term.endswith(end) and len(term) > 4}
    return frozenset({term, *longer, *shorter})


def numbers_held(keys: list[KeyTerm], texts: list[str]) -> bool:
    """Whether one of ``texts`` holds every number the question names (a year, a
    figure): a passage about the 2004 final does not answer a question about 2007's."""
    numbers = {k.term for k in keys if any(c.isdigit() for c in k.term)}
    return not numbers or any(numbers <= _terms_of(text) for text in texts)


def _in_context(hits: list[Hit], contexts: list[str] | None) -> list[str]:
    """Each hit's text with its context before it ("it said" names no one: the
    sentence before, the title and the section do)."""
    found = contexts or [""] * len(hits)
    return [
        f"{c}\n{h.passage.text}" if c else h.passage.text for h, c in zip(hits, found, strict=True)
    ]


@functools.lru_cache(maxsize=1024)
def _terms_of(text: str) -> frozenset[str]:
    """The terms of a passage's text: a question reads each of its top hits' up to
    four times (the rule for the top three, then for each hit of the page)."""
    return frozenset(tokenize(text))


@dataclass(frozen=True)
class AnswerRule:
    """Stage 5 of an answer: judge. Whether the top hits answer the question.

    Convincing when a top-3 passage holds enough of the question's key terms and is
    semantically close, or close enough and has a sentence covering most of the
    question's (idf-weighted) terms. Thresholds come from :class:`Settings` and are
    calibrated on tests/data/seed_dev.json and bbc_dev.json (README, "No answer")."""

    min_key_coverage: float
    min_dense_score: float
    min_dense_with_terms: float
    min_term_coverage: float

    @classmethod
    def of(cls, settings: Settings) -> AnswerRule:
        s = settings
        return cls(
            s.min_key_coverage, s.min_dense_score, s.min_dense_with_terms, s.min_term_coverage
        )

    def found(
        self, hits: list[Hit], keys: list[KeyTerm], n: int, contexts: list[str] | None = None
    ) -> bool:
        """The answer rule for the top 3 ``hits`` together (``n`` live passages), each
        read with its ``contexts`` entry (what a reader sees around it)."""
        texts = _in_context(hits[:3], contexts)
        return self._holds_keys(keys, texts, n) and any(self._close(h) for h in hits[:3])

    def answers(
        self, hit: Hit, keys: list[KeyTerm], n: int, context: str = "", kind: str = ""
    ) -> bool:
        """The answer rule for one hit alone: its text, read in its ``context``, holds
        the key terms, and for a question wanting a ``kind`` of number or date, holds
        one (a paragraph without a figure does not answer "How many…")."""
        held = self._holds_keys(keys, _in_context([hit], [context]), n)
        return held and self._close(hit) and holds_kind(hit.passage.text, kind)

    def _holds_keys(self, keys: list[KeyTerm], texts: list[str], n: int) -> bool:
        covered = coverage(keys, texts, n) >= self.min_key_coverage
        return covered and numbers_held(keys, texts)

    def _close(self, hit: Hit) -> bool:
        """Semantically close, or close enough with a sentence covering most terms."""
        dense, cover = hit.explain["dense_score"], hit.explain["term_coverage"]
        return bool(dense >= self.min_dense_score) or bool(
            dense >= self.min_dense_with_terms and cover >= self.min_term_coverage
        )
