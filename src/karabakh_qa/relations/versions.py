"""Versions of one story: two articles that share most sentences, with some changed.

Newsrooms publish a story, then an update: the same paragraphs, a figure revised,
a sentence added, or the story rewritten around a new lede. Two articles are
compared on their words (5-word shingles, case and punctuation folded away):

* ``duplicate``: word-shingle Jaccard >= ``DUPLICATE_JACCARD`` (a copy, maybe
  with a word or a line changed), or the same sentences in the same order where
  the differing ones are rewordings of each other that change at most
  ``DUPLICATE_EDITS`` of the shorter article's words (a copy with a few light
  edits: "BBC2" for "BBC Two", a trimmed clause; nothing added or removed);
* ``version``: not a duplicate, and the containment of the shorter article's
  shingles in the longer's >= ``VERSION_CONTAINMENT`` (an update); below
  ``VERSION_SURE`` only when the two also open alike (``continuity``: the word
  Jaccard of their headlines or of their first sentences >= ``CONTINUITY``): an
  update keeps its headline or its lede, while a follow-up story that repeats the
  background of the first (the same summit a day later, a second charity record)
  opens on new news under a new headline;
* ``corroborates``: they share a sentence or a near-duplicate paragraph, no more
  (one quotes the other, or both quote the same agency copy).

Which sentences changed is a diff of the two sentence sequences (difflib's
matching blocks), given verbatim with offsets into each article, never
paraphrased; a changed sentence pair whose figures differ for the same measure
(:mod:`.figures`) is a ``differs-on-figure``, and so are two articles that give
one name's amount differently in sentences that are no rewording of each other
("with Altria rising 5%" against "sent ... Altria shares up 5.11%":
:func:`named_differences`). The thresholds are chosen on
``tests/data/bbc_pairs.json`` (README, "Across sources"): there, copies have a
Jaccard of 0.955 or more and versions 0.82 or less; versions a containment of
0.498 or more and unrelated look-alikes 0.496 or less, but for three follow-up
stories (0.517-0.603) whose headlines and ledes share at most 0.21 of their words,
where every version below 0.67 shares 0.33 or more.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..chunk import normalise, sentences
from ..dedup import minhash_signatures
from ..records import Passage
from ..sparse import STOPWORDS
from .figures import Figure, amounts, figures, money_and_percent

# Candidates beyond shared paragraphs: MinHash LSH over each article's content-word
# bigrams (stopwords dropped: a rewrite keeps the names, numbers and key phrases
# in order but not the words between them), 32 bands of 2 rows. Their Jaccard for
# the labelled BBC versions is 0.29-0.90 (word 5-grams: 0.18-0.91): a pair at 0.29
# is a candidate with probability 0.94 (at 5-gram 0.18: 0.59; business/010 and
# 291 were missed so), at 0.05 with 0.08. A synthetic archive made of shared
# sentences gets 2.5x the candidate pairs of 5-grams.
ARTICLE_BANDS, ARTICLE_ROWS = 32, 2
ARTICLE_SHINGLE = 2  # content words
# A candidate is compared only when at least this many of the 64 MinHash values
# agree (an estimated Jaccard of 0.125; rewritten versions have 0.29 or more): an
# archive built from a pool of sentences shares single sentences everywhere.
MIN_AGREEMENT = 8


def may_be_version(agreement: int, words_a: int, words_b: int) -> bool:
    """Whether two articles whose 64 MinHash values agree ``agreement`` times, of
    ``words_a`` and ``words_b`` words, can be a version (or a copy) of each other:
    the containment their estimated Jaccard (with a margin of four values) allows
    for their lengths reaches 0.4. Below, the exact comparison is skipped."""
    j = min(1.0, (agreement + 4) / 64)
    small = max(1, min(words_a, words_b))
    return j * (words_a + words_b) / ((1 + j) * small) >= 0.4


DUPLICATE_JACCARD = 0.93
DUPLICATE_EDITS = 0.1  # words changed in reworded sentences, share of the shorter article
VERSION_CONTAINMENT = 0.51
VERSION_SURE = 0.65  # from here containment alone makes a version
CONTINUITY = 0.27  # below VERSION_SURE: headline or lede word Jaccard needed
SHINGLE = 5  # words
REWORDED = 0.5  # a replaced sentence this similar (word Jaccard) is "changed", not new
KINDS = ("duplicate", "version", "corroborates")


@dataclass(frozen=True)
class Sentence:
    """A sentence of an article: ``article_text[start:end] == text``."""

    text: str
    start: int
    end: int
    paragraph: int = 0
    key: str = ""  # the text with case, punctuation and spacing folded away

    @property
    def words(self) -> frozenset[str]:
        return frozenset(self.key.split())


def article_sentences(passages: list[Passage]) -> list[Sentence]:
    """The sentences of an article's passages (Passage objects, in order), with
    offsets into the article; furniture the chunker dropped is not there."""
    out = []
    for p in passages:
        for s, e in sentences(p.text):
            text = p.text[s:e]
            out.append(Sentence(text, p.start + s, p.start + e, p.paragraph, normalise(text)))
    return [s for s in out if s.key]


@dataclass(frozen=True)
class Change:
    """One difference between versions: ``before`` in a, ``after`` in b."""

    op: str  # "changed", "removed" (only in a) or "added" (only in b)
    before: Sentence | None
    after: Sentence | None

    def to_dict(self) -> dict[str, Any]:
        def side(s: Sentence | None) -> dict[str, Any] | None:
            if s is None:
                return None
            return {"text": s.text, "start": s.start, "end": s.end, "paragraph": s.paragraph}

        return {"op": self.op, "before": side(self.before), "after": side(self.after)}


@dataclass(frozen=True)
class Comparison:
    shared: int  # sentences in both, in the same order
    a: int  # sentences of a
    b: int
    changes: tuple[Change, ...]
    jaccard: float = 0.0  # of the two articles' word shingles
    containment: float = 0.0  # of the smaller shingle set in the other
    # words changed when every differing sentence is a rewording of its counterpart
    # (nothing added or removed), as a share of the shorter article; None otherwise
    edited: float | None = None
    # how alike they open: word Jaccard of the headlines or of the first sentences,
    # the larger (1.0 when not measured: the containment rule alone)
    continuity: float = 1.0

    def kind(self, linked: bool = False) -> str | None:
        """duplicate, version, corroborates or None (nothing shared); ``linked``:
        they share a near-duplicate paragraph (the group overlay says so)."""
        if self.jaccard >= DUPLICATE_JACCARD:
            return "duplicate"
        if self.edited is not None and self.edited <= DUPLICATE_EDITS:
            return "duplicate"
        if self.containment >= VERSION_SURE or (
            self.containment >= VERSION_CONTAINMENT and self.continuity >= CONTINUITY
        ):
            return "version"
        return "corroborates" if self.shared or linked else None


def shingle_set(sents: list[Sentence], size: int = SHINGLE) -> set[int]:
    """The article's word ``size``-grams (hashed), across sentence boundaries: each
    word hashed once, a shingle the polynomial of its words' hashes (mod 2**64)."""
    words = " ".join(s.key for s in sents).split()
    if len(words) < size:
        return {hash(" ".join(words))} if words else set()
    h = np.fromiter((hash(w) for w in words), np.int64, len(words)).view(np.uint64)
    n = len(words) - size + 1
    acc = h[:n].copy()
    with np.errstate(over="ignore"):
        for k in range(1, size):
            acc = acc * np.uint64(1_000_003) + h[k : k + n]
    return set(acc.tolist())


def compare(
    a: list[Sentence],
    b: list[Sentence],
    diff: bool = True,
    headlines: tuple[str, str] | None = None,
    shingles: tuple[set[int], set[int]] | None = None,
) -> Comparison:
    """The sentence diff of article a against article b (``diff`` False: counts and
    shingle similarity only, no pairing of reworded sentences: what the kind needs);
    with the articles' ``headlines``, how alike they open (``continuity``);
    ``shingles``: their :func:`shingle_set` when the caller keeps them."""
    keys_a, keys_b = [s.key for s in a], [s.key for s in b]
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    shared, changes = 0, []
    opcodes = matcher.get_opcodes()
    for op, i1, i2, j1, j2 in opcodes:
        if op == "equal":
            shared += i2 - i1
        elif op == "delete":
            changes += [Change("removed", s, None) for s in a[i1:i2]]
        elif op == "insert":
            changes += [Change("added", None, s) for s in b[j1:j2]]
        elif diff:
            changes += _paired(a[i1:i2], b[j1:j2])
    sa, sb = shingles if shingles is not None else (shingle_set(a), shingle_set(b))
    common = len(sa & sb)
    jaccard = common / len(sa | sb) if sa or sb else 0.0
    containment = common / min(len(sa), len(sb)) if sa and sb else 0.0
    edited = _edited(a, b, opcodes)
    opening = 1.0
    if headlines is not None:
        heads = (frozenset(normalise(h).split()) for h in headlines)
        ledes = _jaccard(a[0].words, b[0].words) if a and b else 0.0
        opening = max(_jaccard(*heads), ledes)
    return Comparison(shared, len(a), len(b), tuple(changes), jaccard, containment, edited, opening)


def _edited(a: list[Sentence], b: list[Sentence], opcodes: list[Any]) -> float | None:
    """Words changed between a and b as a share of the shorter article's words, when
    their sentences correspond one to one and each differing pair is a rewording
    (word Jaccard >= REWORDED); None when a sentence is added, removed or rewritten."""
    changed = 0
    for op, i1, i2, j1, j2 in opcodes:
        if op == "equal":
            continue
        if op != "replace" or i2 - i1 != j2 - j1:
            return None
        for s, t in zip(a[i1:i2], b[j1:j2], strict=True):
            mine, theirs = s.words, t.words
            if (mine or theirs) and _jaccard(mine, theirs) < REWORDED:
                return None
            changed += len(mine ^ theirs)
    words = min(sum(len(s.key.split()) for s in a), sum(len(s.key.split()) for s in b))
    return changed / max(1, words)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Word Jaccard of two sentences (0 for two empty ones)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def _paired(before: list[Sentence], after: list[Sentence]) -> list[Change]:
    """A replaced run: each sentence of ``before`` paired, in order, with the most
    similar unpaired one of ``after`` when they are rewordings of each other (word
    Jaccard >= REWORDED)."""
    out: list[Change] = []
    words_after = [t.words for t in after]
    j = 0
    for s in before:
        mine = s.words
        best, best_score = None, REWORDED
        for k in range(j, len(after)):
            score = _jaccard(mine, words_after[k])
            if score >= best_score:
                best, best_score = k, score
        if best is None:
            out.append(Change("removed", s, None))
            continue
        out += [Change("added", None, t) for t in after[j:best]]
        out.append(Change("changed", s, after[best]))
        j = best + 1
    out += [Change("added", None, t) for t in after[j:]]
    return out


def figure_changes(cmp: Comparison) -> list[dict[str, Any]]:
    """Changed sentences whose figure of one measure differs:
    ``{measure, before: {value, text, start, end}, after: {...}}``. The figures of a
    measure are paired in the order the two sentences give them ("$20m (£10.5m)
    ... £9.4m" against "... £94m": the second pounds figure differs)."""
    out = []
    for c in cmp.changes:
        if c.op != "changed" or c.before is None or c.after is None:
            continue
        was, now = _by_measure(c.before.text), _by_measure(c.after.text)
        for measure, values in now.items():
            for old, new in zip(was.get(measure, []), values, strict=False):
                if old.value != new.value:
                    out.append(
                        {
                            "measure": measure,
                            "before": _figure(c.before, old),
                            "after": _figure(c.after, new),
                        }
                    )
    return out


# An amount's clause: the words since the last comma, colon, "and", "while",
# "which", "but", "after" or "before" it; the amount is the clause's last name's
# when at most NAMED_WORDS words come between them ("Altria shares up 5.11%",
# "Reynolds showing gains of 4.5%"). A name is a capitalised word that does not
# open the sentence and is no month, day or function word ("But", "Mr"); a name
# after a preposition owns it only when no other does ("Allied Domecq shares in
# London rose 4%" is Domecq's rise, "Profits at Barclaycard rose 5%" Barclaycard's).
_CLAUSE = re.compile(r"[,;:]|\b(?:and|while|which|but|after|before)\b")
_NAME = re.compile(r"\b[A-Z][A-Za-z&'-]+\b")
_NOT_NAMES = frozenset(
    "The A An This That These Those It He She They We I You His Her Its Their Our But And "
    "Or If In On At For From To By With As Mr Mrs Ms Dr Sir Lord Lady Shares January "
    "February March April May June July August September October November December "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
)
_AFTER_PREPOSITION = re.compile(r"\b(?:in|at|from|on|since|by|to|of|for|until)\s+$")
_OPENING = re.compile(r"[^\w]*$")  # nothing but quotes, brackets or spaces before
NAMED_WORDS = 4
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Named:
    """An amount given for a name ("Altria" in "with Altria rising 5%")."""

    measure: str
    name: str
    figure: Figure
    sentence: Sentence


def named_amounts(sents: list[Sentence]) -> list[Named]:
    """The percentages and money amounts of an article that its sentences attach to
    a name, in order."""
    out = []
    for s in sents:
        if not _DIGIT.search(s.text):
            continue
        for f in money_and_percent(s.text):
            if s.text[: f.start].rstrip().endswith("("):
                continue  # "775m euros ($1bn)": a conversion of the amount before it
            clause_at = max((m.end() for m in _CLAUSE.finditer(s.text, 0, f.start)), default=0)
            clause = s.text[clause_at : f.start]
            names = [
                m for m in _NAME.finditer(clause) if _is_name(s.text, clause_at + m.start(), m)
            ]
            free = [m for m in names if not _AFTER_PREPOSITION.search(clause[: m.start()])]
            owner = (free or names)[-1] if names else None
            if owner and len(clause[owner.end() :].split()) <= NAMED_WORDS:
                out.append(Named(f.measure, owner.group(), f, s))
    return out


def _is_name(sentence: str, at: int, word: re.Match[str]) -> bool:
    """Whether capitalised ``word``, at ``at`` in ``sentence``, can own an amount."""
    return word.group() not in _NOT_NAMES and not _OPENING.fullmatch(sentence[:at])


def named_differences(a: list[Named], b: list[Named]) -> list[dict[str, Any]]:
    """Amounts of one measure for one name that the two articles give differently:
    each value of a that b never gives for that name and measure, paired with the
    first such value of b (as :func:`figure_changes` gives them). A name given two
    values in each of them ("up 5% in January ... 8% a year") differs only on the
    value one of them lacks."""
    by_key: dict[tuple[str, str], list[Named]] = {}
    for n in b:
        by_key.setdefault((n.measure, n.name), []).append(n)
    given_a = {(n.measure, n.name, n.figure.value) for n in a}
    out, seen = [], set()
    for n in a:
        theirs = by_key.get((n.measure, n.name), [])
        if not theirs or any(t.figure.value == n.figure.value for t in theirs):
            continue
        other = next(
            (t for t in theirs if (t.measure, t.name, t.figure.value) not in given_a), None
        )
        if other is None or (n.measure, n.name) in seen:
            continue
        seen.add((n.measure, n.name))
        out.append(
            {
                "measure": n.measure,
                "before": _figure(n.sentence, n.figure),
                "after": _figure(other.sentence, other.figure),
            }
        )
    return out


def differing_figures(
    cmp: Comparison, named: tuple[list[Named], list[Named]]
) -> list[dict[str, Any]]:
    """:func:`figure_changes` of the changed sentences, then the :func:`named_differences`
    of the two articles' ``named`` amounts they do not already give."""
    out = figure_changes(cmp)
    before = {c["before"]["start"] for c in out}
    after = {c["after"]["start"] for c in out}
    for c in named_differences(*named):
        if c["before"]["start"] not in before and c["after"]["start"] not in after:
            out.append(c)
    return out


def _by_measure(text: str) -> dict[str, list[Figure]]:
    """Every figure of ``text`` by measure, in text order."""
    out: dict[str, list[Figure]] = {}
    for f in sorted([*figures(text), *amounts(text)], key=lambda f: f.start):
        out.setdefault(f.measure, []).append(f)
    return out


def _figure(s: Sentence, f: Figure) -> dict[str, Any]:
    return {"value": f.value, "text": s.text, "start": s.start + f.start, "end": s.start + f.end}


def article_signatures(normalised: list[str], counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Each article's LSH bands of its content-word bigrams, (articles, ARTICLE_BANDS)
    uint32, and 64 of its MinHash values cut to 8 bits, (articles, 64) uint8 (their
    agreement estimates the Jaccard: :data:`MIN_AGREEMENT`), from its passages'
    normalised texts (``counts`` passages per article, in order)."""
    keys, at = [], 0
    for n in counts:
        words = " ".join(normalised[at : at + n]).split()
        keys.append(" ".join(w for w in words if w not in STOPWORDS))
        at += n
    return minhash_signatures(keys, ARTICLE_SHINGLE, ARTICLE_BANDS, ARTICLE_ROWS)
