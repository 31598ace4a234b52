"""Stage 4 of an answer: decorate. A ranked result becomes a cited Hit.

Each hit gets its passage (verbatim, with offsets into its article), the sentence
to mark, its answer span, the other articles that carry it (``also_in``), what
those say across sources (corroboration: how many articles and outlets, which
reported it first) and the evidence of its rank. For a question that asks for a
figure, the values the results report for it are gathered across sources.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np

from ..chunk import normalise
from ..records import Hit, Passage
from ..relations.corroboration import corroboration
from ..relations.figures import across, asked_measure, figures, last_sentence, with_counted
from ..relations.versions import compare, differing_figures, named_amounts
from ..sentences import passage_sentences
from ..sparse import term_spans
from ..store.protocol import StoreView
from .collapse import Result
from .extract import Reading, Sentence, answer_in
from .forest import Scorer
from .judge import KeyTerm
from .retrieve import Candidates
from .spans import Span, best_span, typed_sentence


def copies_of(index: StoreView, shown: int, passage: Passage) -> tuple[dict[str, Any], ...]:
    """The other members of ``shown``'s near-duplicate group, as a hit's ``also_in``."""
    key: str | None = None  # the shown text folded, once another member needs it
    out = []
    for row in index.groups.members(shown):
        if row == shown:
            continue
        key = normalise(passage.text) if key is None else key
        p = index.passage(row)
        out.append(
            {
                "id": p.id,
                "file": p.source,
                "source": p.source,  # deprecated alias of "file"
                "outlet": p.outlet,
                "paragraph": p.paragraph,
                "date": p.date,
                "date_source": p.date_source,
                "start": p.start,
                "end": p.end,
                "identical": normalise(p.text) == key,
            }
        )
    return tuple(sorted(out, key=lambda c: (c["source"], c["paragraph"])))


class Decorator:
    """Turns ranked candidates into Hits: passage, marked sentence, answer span,
    copies, evidence; each candidate once, however often it is asked for."""

    def __init__(
        self,
        index: StoreView,
        cands: Candidates,
        fused: np.ndarray,
        spans: dict[int, Span | None],
        kind: str,
        query_terms: set[str],
        question: str = "",
        span_model: Scorer | None = None,
    ) -> None:
        self.index, self.cands, self.fused = index, cands, fused
        self.spans, self.kind, self.terms = spans, kind, query_terms
        self.question, self.span_model = question, span_model
        self._done: dict[int, Hit] = {}
        self._answers: dict[int, tuple[Span | None, Span | None]] = {}  # (rules', shown)
        self._marked: dict[int, list[int]] = {}  # the sentence each hit marks
        self._contexts: dict[int, str] = {}  # what a reader sees around each hit

    def many(self, results: list[tuple[int, int]], first_rank: int = 1) -> list[Hit]:
        self.prepare(results)
        return [self.one(i, j, first_rank + n) for n, (i, j) in enumerate(results)]

    def prepare(self, results: list[tuple[int, int]]) -> None:
        """Find the answer spans of ``results`` (those not made yet) in one batch."""
        self._find_answers([j for _, j in results if j not in self._done])

    def _find_answers(self, wanted: list[int]) -> None:
        """The rules' answer span (the ranking's evidence, "why") and the span a reader
        sees (the learned choice when there is a model, in one batch for a page)."""
        todo = [j for j in dict.fromkeys(wanted) if j not in self._answers]
        readings, rules = [], []
        for j in todo:
            row = int(self.cands.rows[j])
            passage = self.index.passage(row)
            text = passage.text
            s, e = self.index.sentence_span(row, int(self.cands.best_sentence[j]))
            rule = (
                self.spans[j] if j in self.spans else best_span(text, self.kind, self.terms, (s, e))
            )
            rules.append(rule)  # the ranking's evidence: of the sentence it ranked by
            known = {(s, e): rule}  # not found twice
            readings.append(
                reading_of(passage, (s, e), self.cands, j, self.kind, self.terms, known)
            )
        chosen = shown_answers(readings, self.question, self.kind, self.span_model) if todo else []
        for j, rule, (sentence, seen) in zip(todo, rules, chosen, strict=True):
            self._answers[j] = (rule, seen)
            self._marked[j] = list(sentence.within)

    def context(self, j: int) -> str:
        """What a reader sees around candidate ``j``'s passage: its title, its section
        and the last sentence of the paragraph before it (the answer rule reads the
        key terms there too: "34 others were wounded, it said" names no city)."""
        if j not in self._contexts:
            row = int(self.cands.rows[j])
            p = self.index.passage(row)
            around = (p.title, p.section, _paragraph_before(self.index, row))
            self._contexts[j] = "\n".join(x for x in around if x)
        return self._contexts[j]

    def one(self, i: int, j: int, rank: int) -> Hit:
        hit = self._done.get(j)
        if hit is None:
            hit = self._done[j] = self._make(i, j)
        return replace(hit, rank=rank)

    def _make(self, i: int, j: int) -> Hit:
        index, cands = self.index, self.cands
        shown = int(cands.rows[j])
        passage = index.passage(shown)
        self._find_answers([j])
        sentence = self._marked[j]
        span, seen = self._answers[j]
        copies = copies_of(index, shown, passage)
        corroborated = corroboration(passage, copies)
        versions = index.memo(
            "versions", passage.source, lambda: versions_of(index, passage.source)
        )
        return Hit(
            rank=0,
            score=float(self.fused[i]),
            passage=passage,
            also_in=copies,
            highlights={"sentence": sentence, "terms": matched_terms(passage.text, self.terms)},
            explain=cands.explain(j, span),
            answer_span=seen.to_dict(passage.start) if seen else None,
            corroboration=corroborated,
            first_seen=first_of(corroborated),
            versions=versions,
        )


VERSION_KINDS = ("version", "duplicate")
MAX_CHANGES = 40  # sentence changes listed per version (the counts cover them all)


def versions_of(index: StoreView, name: str) -> tuple[dict[str, Any], ...]:
    """The other versions (and copies) of article ``name``, as the relation table
    links them, each with what changed from ``name`` to it, sentence by sentence
    (``before``: in ``name``, ``after``: in the other), and which figures differ;
    also a report that only corroborates it when the two differ on a figure."""
    out = []
    rels = index.relations_of(name)
    differ = {r["file"] for r in rels if r["kind"] == "differs-on-figure"}
    for rel in rels:
        shown = rel["kind"] in VERSION_KINDS or (
            rel["kind"] == "corroborates" and rel["file"] in differ
        )
        found = index.article(rel["file"]) if shown else None
        if found is None:
            continue
        meta = found[0]
        mine, theirs = index.article_sentences(name), index.article_sentences(rel["file"])
        cmp = compare(mine, theirs)
        ops = Counter(c.op for c in cmp.changes)
        out.append(
            {
                "file": rel["file"],
                "relation": rel["kind"],
                "title": meta.get("title"),
                "date": meta.get("date"),
                "date_source": meta.get("date_source"),
                "shared": cmp.shared,
                "changed": ops["changed"],
                "added": ops["added"],
                "removed": ops["removed"],
                "changes": [c.to_dict() for c in cmp.changes[:MAX_CHANGES]],
                "figures": differing_figures(cmp, (named_amounts(mine), named_amounts(theirs))),
            }
        )
    return tuple(out)


def first_of(corroborated: dict[str, Any]) -> dict[str, Any] | None:
    """The earliest dated copy of a story as ``first_seen`` gives it: {file, date}."""
    first = corroborated["first"]
    return None if first is None else {"file": first["file"], "date": first["date"]}


def matched_terms(text: str, terms: set[str]) -> list[list[int]]:
    """Offsets within ``text`` of every token whose term is in the query."""
    return term_spans(text, terms)


FIGURE_DEPTH = 100  # results whose sentences are read for the asked measure


def shown_answers(
    readings: list[Reading], question: str, kind: str, model: Scorer | None
) -> list[tuple[Sentence, Span | None]]:
    """What a reader sees of each passage: the sentence marked and the answer span in
    it (:func:`.extract.answer_in`), a count asked for by the figures' rule
    (:func:`_counted`). The service's hits and ``eval`` both show these."""
    measure = asked_measure(question)
    found = answer_in(readings, question, kind, model)
    return [(sentence, _counted(sentence, measure, seen)) for sentence, seen in found]


def _counted(sentence: Sentence, measure: str | None, seen: Span | None) -> Span | None:
    """The answer span for a question asking a ``measure`` ("How many were killed?"):
    the marked sentence's figure of it ("13 civilians" in "at least 13 civilians were
    killed, including four women"), by the figures' rule, which knows what a number
    counts; no span when ``seen`` (the span found otherwise) is a figure of another
    measure ("killing nine" does not answer "How many were wounded?")."""
    if measure is None:
        return seen
    lo, hi = sentence.within
    part = sentence.text[lo:hi]
    found = figures(part)
    asked = next((f for f in found if f.measure == measure), None)
    if asked is not None:
        a, b = (lo + x for x in with_counted(part, asked))
        return Span(a, b, sentence.text[a:b], "number", 1.0)
    if seen and any(lo + f.start < seen.end and seen.start < lo + f.end for f in found):
        return None  # every figure here is of another measure
    return seen


def reading_of(
    passage: Passage,
    marked: tuple[int, int],
    cands: Candidates,
    j: int,
    kind: str,
    terms: set[str],
    known: dict[tuple[int, int], Span | None] | None = None,
) -> Reading:
    """Candidate ``j``'s passage to answer from: its sentences and their scores, the
    one to mark being ``marked`` (the closest in meaning and terms) unless another
    holds the number or date asked for (spans.typed_sentence); ``known``: rules' spans
    of its sentences already found (for the ranking), by sentence."""
    spans = passage_sentences(passage)
    scores = cands.sentence_scores[j] if j < len(cands.sentence_scores) else np.zeros(0)
    typed = typed_sentence(passage.text, spans, marked, kind, terms)
    return Reading(passage.text, spans, scores, typed, dict(known or {}))


def _paragraph_before(index: StoreView, row: int) -> str:
    """The last sentence of the passage before ``row``'s in its article, or "" for an
    article's first passage."""
    prior = index.previous_passage(row)
    return last_sentence(prior.text) if prior is not None else ""


def figures_of(
    index: StoreView,
    cands: Candidates,
    results: list[Result],
    question: str,
    keys: list[KeyTerm],
) -> list[dict[str, Any]] | None:
    """The asked measure's values across the results, when they differ (figures.py):
    ``[{measure, values: [{value, text, file, paragraph, start, end, date}]}]``."""
    measure = asked_measure(question)
    if measure is None:
        return None
    names = [k.surface for k in keys if not k.surface.isdigit()]
    rows = [int(cands.rows[j]) for _, j in results[:FIGURE_DEPTH]]
    passages = [index.passage(r) for r in rows]
    values = across(measure, passages, names, lambda i: _paragraph_before(index, rows[i]))
    if len({v["value"] for v in values}) < 2:
        return None  # one figure everywhere: nothing differs
    values.sort(key=lambda v: (v["date"] or "9999", v["file"], v["start"]))
    return [{"measure": measure, "values": values}]
