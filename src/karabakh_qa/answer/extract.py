"""The answer span a hit shows: a learned choice among its sentence's short phrases.

The rules of :mod:`.spans` find names, numbers and dates and take the one nearest
the question's words; on SQuAD that picks a span overlapping the answer (token
F1 >= 0.5) for 38 % of questions when it is given the right sentence. As the
feature-based SQuAD baselines did (Rajpurkar et al. 2016, logistic regression
over candidate phrases), every run of one to ``MAX_WORDS`` words of the sentence
that neither starts nor ends with a stop word is a candidate, described by
features a person would look at: what kind of words it holds against what the
question asks, how far it sits from the question's words and on which side, the
word before it (a preposition?) and after it, whether the question's head noun
("What *station*…") is next to it, whether the rules picked it, and where
it stands against the question's words as a statement of the question would
order them (:class:`Frame`: "What did X found?" is answered after "found").
Gradient-
boosted trees trained on the SQuAD tuning part only (``benchmarks/train_spans.py``;
their arrays in ``spans.json``, read by :mod:`.forest`) score the phrases a question
may show; the best one is shown (a logistic-regression file, as shipped before,
still loads). The second-phase ranker keeps the rules' span as its feature (it
was trained on that).

Offsets are the passage's, as for every span: the verbatim invariant holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..sparse import STOPWORDS, term_of, tokenize
from .forest import Scorer
from .spans import NAMES, SCORE, TYPES, Span, best_span, find_spans

MAX_WORDS = 5
NEAR = 8  # a candidate is at most this many words from the question's, or the rules' span
DEFAULT_MODEL = Path(__file__).with_name("spans.json")

# a number keeps its scale and sign ("$40m", "1.8bn", "5%"): "$40" alone misquotes it
_TOKEN = re.compile(
    r"[£$€]?\d+(?:[,.:]\d+)*(?:(?:bn|tn|m|k)(?![^\W\d_]))?½?%?|[^\W\d_]+(?:['’.-][^\W\d_]+)*|\S"
)
# "59.2 trillion rupiah ($6.58bn; £3.5bn)": what is in brackets after an amount is
# its conversion, not another answer
_AFTER_AMOUNT = re.compile(
    r"(?:\d|\b(?:bn|tn|m|k|million|billion|trillion|rupiah|dollars|euros|pounds|yen|yuan))\s*$"
)
_BRACKETS = re.compile(r"\(([^()]*)\)")
_PREPOSITIONS = frozenset(
    "in at on by of from to as for with than called named into under over after before".split()
)
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred hundreds thousand thousands million millions billion dozen "
    "dozens zero".split()
)
_WH = ("what", "which", "who", "whom", "whose", "when", "where", "why", "how", "other")
SHAPES = ("capitalised", "number", "lower", "mixed")


def _names() -> tuple[str, ...]:
    out = [f"{kind}*{shape}" for kind in TYPES for shape in SHAPES]
    out += [f"words={n}" for n in range(1, MAX_WORDS + 1)]
    out += ["near_left", "near_right", "near", "question_words_4", "question_words_8"]
    out += ["question_words", "overlap", "after_question_word", "before_question_word"]
    out += ["after_preposition", "before_punctuation", "before_stop_word"]
    out += ["rule_exact", "rule_overlap", "rule_inside", "first_question_word"]
    out += ["last_question_word", "verb_like", "and_between"]
    out += [f"first_numeric*{kind}" for kind in TYPES]
    out += [f"rule_exact*{kind}" for kind in TYPES] + [f"rule_overlap*{kind}" for kind in TYPES]
    out += [f"near*{kind}" for kind in TYPES] + [f"words*{kind}" for kind in TYPES]
    out += ["head_near", "head_next", "position", "inner_stop_word"]
    out += ["capitalised_before", "capitalised_after", "mean_word_length"]
    out += [f"{wh}*capitalised" for wh in _WH] + [f"{wh}*number" for wh in _WH]
    out += ["left_terms", "right_terms", "aux_question", "aux*left_terms", "plain*right_terms"]
    out += ["gap_left", "gap_right", "gap", "after_last_word", "wh_at_end", "wh_at_end*before_left"]
    out += ["wh_position", "left_weight", "right_weight", "clause_left", "clause_right"]
    out += ["punctuation_before", "punctuation_after", "first_left", "first_right"]
    out += ["last_left", "last_right"]
    return tuple(out)


FEATURES = _names()
_FLAG_NAMES = (
    "word",  # letters or a number (the pattern makes a token letters, a number from a
    "stop",  # digit or currency sign, or one symbol)
    "content",
    "letters",
    "capitalised",
    "number",
    "lower",
    "preposition",
    "alphanumeric",
    "verb_like",  # a lower-case word ending in -ing or -ed: answers seldom hold one
    "numeric",  # digits or a number word ("nine", "dozens")
)


class _Flags(dict[str, tuple[bool, ...]]):
    """Raw token -> its :data:`_FLAG_NAMES`, worked out once per distinct token (the
    same few thousand words make up most text; see sparse._Terms)."""

    def __missing__(self, w: str) -> tuple[bool, ...]:
        low = w.lower()
        found = (
            w[0].isalnum() or w[0] in "£$€",
            low in STOPWORDS,
            bool(term_of(w)) if w[0].isalnum() else w[0] in "£$€",  # "£960m" is content
            w[0].isalpha(),
            w[0].isupper(),
            w[0].isdigit() or w[0] in "£$€",
            w.islower(),
            low in _PREPOSITIONS,
            w[0].isalnum(),
            w.islower() and len(w) > 4 and (low.endswith("ing") or low.endswith("ed")),
            w[0].isdigit() or w[0] in "£$€" or low in _NUMBER_WORDS,
        )
        if len(self) < 200_000:
            self[w] = found
        return found


_TOKEN_FLAGS = _Flags()
_COLUMN = {name: c for c, name in enumerate(FEATURES)}


@dataclass(frozen=True)
class Candidates:
    """Candidate phrases of one or more sentences: which ``sentence`` (an index into
    the sentences asked for), character ``starts`` and ``ends`` (into that sentence's
    passage text) and one feature row each (:data:`FEATURES`)."""

    sentence: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    x: np.ndarray

    def allowed(self, kind: str) -> np.ndarray:
        """Which candidates may answer a question of ``kind``: for a number, one with
        digits or inside the rules' span; for a name, a capitalised one or inside the
        rules' span; anything otherwise ("How many…" is never answered "city",
        though a phrase with no number may score best there). A time needs no digit
        ("after the election", "the following spring", "during the Ming dynasty"):
        five two-fold splits of the SQuAD tuning part's articles, served sentences,
        0.4956 -> 0.5005 when a date question may show any phrase (stop 33)."""
        shapes = _ALLOWED_SHAPES.get(kind)
        if shapes is None:
            return np.ones(len(self.starts), bool)
        k = TYPES.index(kind) * len(SHAPES)
        fits = self.x[:, [k + SHAPES.index(shape) for shape in shapes]].any(axis=1)
        inside: np.ndarray = fits | (self.x[:, _COLUMN["rule_inside"]] > 0)
        return inside


@dataclass(frozen=True)
class Sentence:
    """A sentence to find the answer in: ``text[within[0]:within[1]]``, with the
    rules' span there (:func:`.spans.best_span`; None: they find none)."""

    text: str
    within: tuple[int, int]
    rule: Span | None

    @classmethod
    def of(cls, text: str, within: tuple[int, int], question: str, kind: str) -> Sentence:
        """The sentence ``within`` of ``text``, its rules' span found here."""
        return cls(text, within, best_span(text, kind, set(tokenize(question)), within))


def question_head(question: str) -> tuple[str, str]:
    """The question word and, after "what/which/whose", the term of the first content
    word that follows it ("What station aired…" -> ("what", "station"))."""
    words = re.findall(r"\w+", question.lower())
    for i, w in enumerate(words):
        if w in ("what", "which", "whose"):
            rest = [x for x in words[i + 1 : i + 4] if x not in STOPWORDS]
            return w, term_of(rest[0]) if rest else ""
        if w in _WH:
            return w, ""
    return "other", ""


_AUXILIARIES = frozenset(
    "do does did is was are were has have had can could will would should may might".split()
)
_CLAUSE_MARKS = frozenset(",;:()—–")


@dataclass(frozen=True)
class Frame:
    """Where a question's answer would stand in the sentence that states it. "Who
    founded X?" keeps a statement's order ("[Y] founded X": the answer before the
    words after "who"); "What did X found?" has an auxiliary after the wh-phrase and
    the answer after them ("X founded [Y]"); "…more of what?" ends on the gap, after
    the words before it ("…more of [Y]"), and "transmit in?" asks for what follows
    "in". As in the feature-based SQuAD baselines' alignment of question and
    sentence, but by word order, without a parser."""

    aux: bool  # an auxiliary within three words after the wh-word
    first: frozenset[str]  # the first two content terms after the wh-word
    last: frozenset[str]  # the last two content terms after it
    before: frozenset[str]  # the last two content terms before it
    last_word: str  # the question's last word when a stop word ("in"), else ""
    at_end: bool  # the wh-word is among the last two words
    position: float  # the wh-word's place in the question, 0 to 1
    first_term: str  # the first content term after the wh-word
    last_term: str  # the last one

    @classmethod
    def of(cls, question: str) -> Frame:
        words = re.findall(r"[\w'’-]+", question)
        low = [w.lower() for w in words]
        wh = next((i for i, w in enumerate(low) if w in _WH[:-1]), None)
        content = [
            (i, t) for i, w in enumerate(words) if w.lower() not in STOPWORDS and (t := term_of(w))
        ]
        last_word = low[-1] if low and low[-1] in STOPWORDS and low[-1] not in _WH else ""
        if wh is None:
            return cls(False, frozenset(), frozenset(), frozenset(), last_word, False, 0.0, "", "")
        k = wh + 1
        while k < len(low) and k < wh + 4 and low[k] not in _AUXILIARIES:
            k += 1
        after = [t for i, t in content if i > wh]
        before = [t for i, t in content if i < wh]
        return cls(
            aux=k < len(low) and low[k] in _AUXILIARIES,
            first=frozenset(after[:2]),
            last=frozenset(after[-2:]),
            before=frozenset(before[-2:]),
            last_word=last_word,
            at_end=wh >= len(low) - 2,
            position=wh / len(low),
            first_term=after[0] if after else "",
            last_term=after[-1] if after else "",
        )


def candidates(sentences: list[Sentence], question: str, kind: str) -> Candidates:
    """Every candidate phrase of each sentence, with its features, in one pass over
    all of them (a page of hits costs one round of array operations, not ten).

    Sentences are laid end to end in one coordinate space (each moved by a base
    beyond the previous one's end), so phrases never cross a sentence; distances,
    windows and neighbours are cut at each sentence's bounds."""
    qterms = set(tokenize(question))
    toks: list[tuple[int, int, str, int]] = []
    bases, base = [], 0
    for k, sent in enumerate(sentences):
        lo, hi = sent.within
        shift = base - lo  # sentence k's offsets + shift: its place in the joint space
        bases.append(shift)
        toks += [
            (m.start() + base, m.end() + base, m.group(), k)
            for m in _TOKEN.finditer(sent.text[lo:hi])
        ]
        base += hi - lo + 2  # a gap of two: no token is "joined" across it
    n = len(toks)
    if n == 0:
        return _EMPTY
    start = np.array([t[0] for t in toks], np.int64)
    end = np.array([t[1] for t in toks], np.int64)
    seg = np.array([t[3] for t in toks], np.int64)
    words = [t[2] for t in toks]
    known = _TOKEN_FLAGS
    flags = np.array([known[w] for w in words], bool).reshape(n, len(_FLAG_NAMES))
    word, stop, content, alpha, cap, digit, lower, preposition, alnum, verb, numeric = flags.T
    terms = [term_of(w) if w[0].isalnum() else "" for w in words]
    isq = np.array([bool(t) and t in qterms for t in terms], bool)
    joined = np.ones(n, bool)  # token t follows t-1 after at most one space
    joined[1:] = start[1:] - end[:-1] <= 1
    first = np.searchsorted(seg, seg, side="left")  # each token's sentence: first token
    stop_at = np.searchsorted(seg, seg, side="right")  # ... and one past its last

    sums = _prefix_sums
    s_word, s_joined, s_stop = sums(word), sums(joined), sums(stop)
    s_q, s_content, s_isq = sums(isq & content), sums(content), sums(isq)
    s_alpha, s_capalpha, s_digit = sums(alpha), sums(alpha & cap), sums(digit)
    s_lower = sums(lower | ~word)
    sizes = [k for k in range(1, MAX_WORDS + 1) if k <= n]  # every run of 1..MAX_WORDS
    i = np.concatenate([np.arange(n - k + 1) for k in sizes])
    length = np.concatenate([np.full(n - k + 1, k) for k in sizes])
    j = i + length
    ok = (s_word[j] - s_word[i] == length) & (s_joined[j] - s_joined[i + 1] == length - 1)
    ok &= ~stop[i] & ~stop[j - 1]
    n_content = s_content[j] - s_content[i]
    n_q = s_q[j] - s_q[i]
    ok &= (n_content > 0) & (n_q < n_content)  # not only the question's words
    i, j, length, n_content, n_q = i[ok], j[ok], length[ok], n_content[ok], n_q[ok]
    if not len(i):
        return _EMPTY
    lo_tok, hi_tok = first[i], stop_at[i]  # the candidate's sentence, as token bounds
    qpos = np.flatnonzero(isq)
    far = 99
    d_left = d_right = np.full(len(i), far)
    if len(qpos):
        before = np.searchsorted(qpos, i) - 1  # the last question word before i
        q_before = qpos[np.maximum(before, 0)]
        d_left = np.where((before >= 0) & (q_before >= lo_tok), i - q_before, far)
        after = np.searchsorted(qpos, j)  # the first at or after j
        q_after = qpos[np.minimum(after, len(qpos) - 1)]
        d_right = np.where((after < len(qpos)) & (q_after < hi_tok), q_after - (j - 1), far)
    near = np.minimum(d_left, d_right)
    windows = [  # the rules' spans, in the joint space
        (s.rule.start + bases[k], s.rule.end + bases[k])
        for k, s in enumerate(sentences)
        if s.rule is not None
    ]
    s0, s1 = start[i], end[j - 1]
    keep = near <= NEAR
    for a, b in windows:
        keep |= (s0 < b) & (a < s1)
    i, j, length, n_content, n_q = i[keep], j[keep], length[keep], n_content[keep], n_q[keep]
    lo_tok, hi_tok, s0, s1 = lo_tok[keep], hi_tok[keep], s0[keep], s1[keep]
    d_left, d_right, near = d_left[keep], d_right[keep], near[keep]
    if not len(i):
        return _EMPTY
    n_alpha = s_alpha[j] - s_alpha[i]
    shape = np.full(len(i), 3)  # mixed
    shape[(s_lower[j] - s_lower[i]) == length] = 2
    shape[(s_digit[j] - s_digit[i]) > 0] = 1
    shape[(n_alpha > 0) & ((s_capalpha[j] - s_capalpha[i]) == n_alpha)] = 0

    def around(w: int) -> np.ndarray:
        """Question words within ``w`` tokens either side, in the same sentence."""
        left: np.ndarray = s_isq[i] - s_isq[np.maximum(i - w, lo_tok)]
        right: np.ndarray = s_isq[np.minimum(j + w, hi_tok)] - s_isq[j]
        both: np.ndarray = left + right
        return both

    distinct = [len({terms[p] for p in qpos if seg[p] == k}) for k in range(len(sentences))]
    x = np.zeros((len(i), len(FEATURES)), order="F")  # columns are written one by one
    col = _COLUMN
    rows = np.arange(len(i))
    x[rows, TYPES.index(kind) * len(SHAPES) + shape] = 1.0
    x[rows, col["words=1"] + length - 1] = 1.0
    x[:, col["near_left"]] = 1 / (1 + d_left)
    x[:, col["near_right"]] = 1 / (1 + d_right)
    x[:, col["near"]] = 1 / (1 + near)
    x[:, col["question_words_4"]] = around(4)
    x[:, col["question_words_8"]] = around(8)
    x[:, col["question_words"]] = np.array(distinct)[seg[i]]
    x[:, col["overlap"]] = n_q / n_content
    inside_before, inside_after = i > lo_tok, j < hi_tok
    prev, nxt = np.maximum(i - 1, 0), np.minimum(j, n - 1)
    x[:, col["after_question_word"]] = inside_before & isq[prev]
    x[:, col["before_question_word"]] = inside_after & isq[nxt]
    x[:, col["after_preposition"]] = inside_before & preposition[prev]
    x[:, col["before_punctuation"]] = ~inside_after | ~alnum[nxt]
    x[:, col["before_stop_word"]] = inside_after & stop[nxt]
    for a, b in windows:
        for name, hit in (("exact", (s0 == a) & (s1 == b)), ("overlap", (s0 < b) & (a < s1))):
            x[hit, col[f"rule_{name}"]] = 1.0
            x[hit, col[f"rule_{name}*{kind}"]] = 1.0
        x[(s0 >= a) & (s1 <= b), col["rule_inside"]] = 1.0
    x[:, col[f"near*{kind}"]] = 1 / (1 + near)
    x[:, col[f"words*{kind}"]] = length
    wh, head = question_head(question)
    heads = np.array([p for p, t in enumerate(terms) if head and t == head], np.int64)
    if len(heads):
        gap, _ = _nearest(heads, i, j, seg, far)
        x[:, col["head_near"]] = np.where(gap < far, 1 / (1 + gap), 0.0)  # none: 0
        x[:, col["head_next"]] = gap <= 1
    x[:, col["position"]] = (i - lo_tok) / np.maximum(1, hi_tok - lo_tok)
    x[:, col["first_question_word"]] = isq[i]
    x[:, col["last_question_word"]] = isq[j - 1]
    s_verb, s_and = sums(verb), sums(np.array([w in ("and", "or", "&") for w in words]))
    x[:, col["verb_like"]] = (s_verb[j] - s_verb[i]) > 0
    x[:, col["and_between"]] = (s_and[j] - s_and[i]) > 0
    x[:, col[f"first_numeric*{kind}"]] = numeric[i]
    x[:, col["inner_stop_word"]] = (s_stop[j] - s_stop[i]) > 0
    capword = cap & alpha & word  # a name cut in two leaves a capitalised word beside it
    x[:, col["capitalised_before"]] = inside_before & capword[prev]
    x[:, col["capitalised_after"]] = inside_after & capword[nxt]
    x[:, col["mean_word_length"]] = (s1 - s0 - (length - 1)) / length
    x[:, col[f"{wh}*capitalised"]] = shape == 0
    x[:, col[f"{wh}*number"]] = shape == 1
    _alignment(x, question, (i, j, lo_tok, hi_tok, seg), terms, words, (s_isq, qpos, far))
    shifts = np.array(bases, np.int64)[seg[i]]
    return Candidates(seg[i], s0 - shifts, s1 - shifts, x)


def _prefix_sums(flags: np.ndarray) -> np.ndarray:
    """Counts of ``flags`` before each position (one more than there are flags), so
    that a run ``a:b`` holds ``out[b] - out[a]``."""
    out = np.zeros(len(flags) + 1, np.int64)
    np.cumsum(flags, out=out[1:])
    return out


def _nearest(
    at: np.ndarray, i: np.ndarray, j: np.ndarray, seg: np.ndarray, far: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate (tokens ``i:j``, sentence ``seg[i]``): how many tokens from
    its nearer end to the nearest of the tokens ``at`` in its sentence (``far`` when
    none), and that token's position."""
    gap = np.minimum(np.abs(at[None, :] - i[:, None]), np.abs(at[None, :] - (j - 1)[:, None]))
    gap = np.where(seg[at][None, :] == seg[i][:, None], gap, far)
    nearest: np.ndarray = at[np.argmin(gap, axis=1)]
    return gap.min(axis=1), nearest


def _alignment(
    x: np.ndarray,
    question: str,
    where: tuple[np.ndarray, ...],
    terms: list[str],
    words: list[str],
    asked: tuple[np.ndarray, np.ndarray, int],
) -> None:
    """Write the candidates' alignment features (:class:`Frame`) into ``x``: how many
    of the question's words stand left and right of each (``where``: first token,
    one past its last, its sentence's token bounds and sentence), which ones stand
    right beside it, and how many clause marks lie between."""
    i, j, lo_tok, hi_tok, seg = where
    s_isq, qpos, far = asked
    frame, col, n = Frame.of(question), _COLUMN, len(terms)

    def within(of: frozenset[str], a: np.ndarray, b: np.ndarray) -> np.ndarray:
        s = _prefix_sums(np.array([t in of for t in terms], bool))
        found: np.ndarray = (s[b] - s[a]) > 0
        return found

    asked_n = max(1, len(set(tokenize(question))))
    left = (s_isq[i] - s_isq[lo_tok]) / asked_n
    right = (s_isq[hi_tok] - s_isq[j]) / asked_n
    x[:, col["left_terms"]], x[:, col["right_terms"]] = left, right
    x[:, col["aux_question"]] = frame.aux
    x[:, col["aux*left_terms"]] = frame.aux * left
    x[:, col["plain*right_terms"]] = (not frame.aux) * right
    gap_left = within(frame.last, np.maximum(i - 3, lo_tok), i)
    gap_right = within(frame.first, j, np.minimum(j + 3, hi_tok))
    x[:, col["gap_left"]], x[:, col["gap_right"]] = gap_left, gap_right
    x[:, col["gap"]] = gap_left if frame.aux else gap_right
    if frame.last_word:
        low = np.array([w.lower() == frame.last_word for w in words], bool)
        x[:, col["after_last_word"]] = (i > lo_tok) & low[np.maximum(i - 1, 0)]
    x[:, col["wh_at_end"]] = frame.at_end
    if frame.at_end:
        x[:, col["wh_at_end*before_left"]] = within(frame.before, np.maximum(i - 3, lo_tok), i)
    x[:, col["wh_position"]] = frame.position
    marks = _prefix_sums(np.array([w in _CLAUSE_MARKS for w in words], bool))
    x[:, col["punctuation_before"]] = marks[i] - marks[lo_tok]
    x[:, col["punctuation_after"]] = marks[hi_tok] - marks[j]
    x[:, col["clause_left"]] = x[:, col["clause_right"]] = -1.0  # no question word there
    if len(qpos):  # candidates x the question's words, in the candidate's sentence
        at, start, stop = qpos[None, :], i[:, None], j[:, None]
        same = seg[qpos][None, :] == seg[i][:, None]
        on_left, on_right = same & (at < start), same & (at >= stop)
        x[:, col["left_weight"]] = np.where(on_left, 1 / np.maximum(1, 1 + start - at), 0).sum(1)
        x[:, col["right_weight"]] = np.where(on_right, 1 / np.maximum(1, 2 + at - stop), 0).sum(1)
        nearest = np.where(on_left, at, -1).max(axis=1)
        x[:, col["clause_left"]] = np.where(nearest >= 0, marks[i] - marks[nearest + 1], -1)
        nearest = np.where(on_right, at, n).min(axis=1)
        x[:, col["clause_right"]] = np.where(
            nearest < n, marks[np.minimum(nearest, n)] - marks[j], -1
        )
    for name, term in (("first", frame.first_term), ("last", frame.last_term)):
        at = np.array([p for p, t in enumerate(terms) if term and t == term], np.int64)
        if not len(at):
            continue
        gap, d = _nearest(at, i, j, seg, far)
        found = gap < far
        x[:, col[f"{name}_left"]] = np.where(found & (d < i), 1 / np.maximum(1, 1 + i - d), 0.0)
        x[:, col[f"{name}_right"]] = np.where(found & (d >= j), 1 / np.maximum(1, 2 + d - j), 0.0)


_ALLOWED_SHAPES = {
    "number": ("number",),
    "person": ("capitalised",),
    "organisation": ("capitalised",),
    "place": ("capitalised",),
}

_EMPTY = Candidates(
    np.zeros(0, np.int64),
    np.zeros(0, np.int64),
    np.zeros(0, np.int64),
    np.zeros((0, len(FEATURES))),
)


def extract_many(
    sentences: list[Sentence], question: str, kind: str, model: Scorer
) -> list[Span | None]:
    """The best candidate phrase of each sentence by ``model`` (typed as the rules'
    span when it lies inside it, else "phrase"); None for a sentence without one."""
    found = candidates(sentences, question, kind)
    allowed = found.allowed(kind)
    scores = np.full(len(found.x), -np.inf)  # only what may be shown is scored
    if allowed.any():
        scores[allowed] = model.score(found.x[allowed])
    out: list[Span | None] = []
    for k, sent in enumerate(sentences):
        mine = np.flatnonzero((found.sentence == k) & allowed)
        if kind == "number" and len(mine):
            mine = mine[~_conversions(sent.text, found.starts[mine], found.ends[mine])]
        if not len(mine):
            out.append(None)
            continue
        best = int(mine[np.argmax(scores[mine])])
        a, b = int(found.starts[best]), int(found.ends[best])
        rule = sent.rule
        whole = kind in NAMES or (rule is not None and SCORE.fullmatch(rule.text) is not None)
        if whole and rule is not None and rule.start <= a and b <= rule.end:
            a, b = rule.start, rule.end  # whole: "London School of Economics", "7-5 6-4"
        out.append(Span(a, b, sent.text[a:b], _type_of(sent, a, b), round(float(scores[best]), 6)))
    return out


TOP_SENTENCES = 3  # a passage's sentences read for its answer: its best by meaning and terms
NEAR_SENTENCE = 0.2  # ... within this much cosine + coverage of its best (1.2 a passage, not
# 2.6, on SQuAD, with the same answers: a sentence further behind needs a phrase 1.6 better)


@dataclass(frozen=True)
class Reading:
    """A passage to answer from: its ``text`` and sentence ``spans``, each sentence's
    cosine + coverage (``scores``; empty when unknown) and the ``marked`` one (the
    best by them, or the one holding the number or date asked for)."""

    text: str
    spans: list[tuple[int, int]]
    scores: np.ndarray
    marked: tuple[int, int]
    known: dict[tuple[int, int], Span | None] = field(default_factory=dict)  # rules' spans found

    def sentences(self) -> list[tuple[tuple[int, int], float]]:
        """The marked sentence, then the others of the best :data:`TOP_SENTENCES` within
        :data:`NEAR_SENTENCE` of the best, with their scores (the marked one's 0 when
        the scores are unknown)."""
        if len(self.scores) != len(self.spans) or self.marked not in self.spans:
            return [(self.marked, 0.0)]
        top = np.argsort(-self.scores, kind="stable")[:TOP_SENTENCES]
        top = top[self.scores[top] >= self.scores.max() - NEAR_SENTENCE].tolist()
        mine = self.spans.index(self.marked)
        picked = [mine] + [k for k in sorted(top) if k != mine]
        return [(self.spans[k], float(self.scores[k])) for k in picked]


def answer_in(
    readings: list[Reading], question: str, kind: str, model: Scorer | None
) -> list[tuple[Sentence, Span | None]]:
    """For each passage, the sentence to mark and its answer span, chosen together:
    of its best few sentences, the one whose best phrase scores highest with
    ``model.sentence_weight`` times its cosine + coverage added. The sentence closest
    to the question is not always the one that answers it: "When did Humboldt see
    the eels?" is close to "A deadly shock from the river can stun…", while the year
    is in the next one ("…as Humboldt saw in Venezuela in 1800"). One batch of
    phrases for the whole page. Without a model: the
    marked sentence and the rules' span there."""
    if model is None:
        marked = [Sentence.of(r.text, r.marked, question, kind) for r in readings]
        return [(x, x.rule) for x in marked]
    terms = set(tokenize(question))
    sentences, owner, weight = [], [], []
    for n, reading in enumerate(readings):
        for within, score in reading.sentences():
            rule = (
                reading.known[within]
                if within in reading.known
                else best_span(reading.text, kind, terms, within)
            )
            sentences.append(Sentence(reading.text, within, rule))
            owner.append(n)
            weight.append(score * model.sentence_weight)
    found = extract_many(sentences, question, kind, model)
    best: dict[int, tuple[float, int]] = {}
    for k, (n, span) in enumerate(zip(owner, found, strict=True)):
        if k == 0 or owner[k - 1] != n:
            best.setdefault(n, (-np.inf, k))  # the marked sentence, when none has a span
        if span is not None and span.score + weight[k] > best[n][0]:
            best[n] = (span.score + weight[k], k)
    return [(sentences[best[n][1]], found[best[n][1]]) for n in range(len(readings))]


def _conversions(text: str, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which spans ``starts:ends`` of ``text`` lie in brackets right after an amount
    (a currency conversion: "£960m ($1.8bn)")."""
    out = np.zeros(len(starts), bool)
    for m in _BRACKETS.finditer(text):
        if _AFTER_AMOUNT.search(text[max(0, m.start() - 24) : m.start()]):
            out |= (starts >= m.start(1)) & (ends <= m.end(1))
    return out


def _type_of(sentence: Sentence, a: int, b: int) -> str:
    """The type of the span ``a:b`` of a sentence's text: the rules' span's when it lies
    inside it, else that of the first typed span in its own text ("20 homes": a
    number), else "phrase"."""
    rule = sentence.rule
    if rule is not None and rule.start <= a and b <= rule.end:
        return rule.type
    typed = find_spans(sentence.text[a:b])
    return typed[0].type if typed else "phrase"


def extract(
    text: str,
    within: tuple[int, int],
    question: str,
    kind: str,
    model: Scorer,
) -> Span | None:
    """:func:`extract_many` for one sentence (its rules' span found here)."""
    return extract_many([Sentence.of(text, within, question, kind)], question, kind, model)[0]
