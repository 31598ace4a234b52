"""Whether the archive answers a question, judged on the question's key content.

A look-alike question (the same company's results in another year, the same
tournament another season) shares its topic with the archive and scores a high
cosine; what it does not share is its key content: a name, a number, a rare
term. So an answer is found only when a top passage covers those, and what the
archive never mentions at all is reported (``missing_terms``: "The archive
never mentions: 2016").

Key terms are the question's words that carry a number (years, figures), that
are capitalised inside the question (names), or that are rare in the archive
(in at most ``RARE_SHARE`` of its passages). The coverage threshold is
calibrated on data (README, "No answer").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..sparse import tokenize

RARE_SHARE = 0.002  # a term in at most 0.2 % of passages is rare
_WORD = re.compile(r"[\w][\w'’.&-]*\w|\w")


@dataclass(frozen=True)
class KeyTerm:
    term: str  # as indexed (lowercased, stemmed)
    surface: str  # as the question wrote it
    df: int  # live passages that hold it


def key_terms(question: str, df_of, n: int) -> list[KeyTerm]:
    """The key content terms of ``question``, in order, each once; ``df_of(terms)``
    gives their document frequencies over the ``n`` live passages."""
    picked: list[tuple[str, str, bool]] = []  # (term, surface, a name or a number)
    for i, m in enumerate(_WORD.finditer(question)):
        word = m.group()
        terms = tokenize(word)
        if terms:
            sure = (i > 0 and word[0].isupper()) or any(c.isdigit() for c in word)
            picked.append((terms[0], word, sure))
    if not picked:
        return []
    df = df_of([term for term, _, _ in picked])
    out: dict[str, KeyTerm] = {}
    for (term, surface, sure), freq in zip(picked, df, strict=True):
        if sure or freq <= max(1, RARE_SHARE * n):
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
        have = set(weight) & set(tokenize(text))
        best = max(best, sum(weight[t] for t in have) / total)
    return best
