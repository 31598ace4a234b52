"""Stage 4: a result becomes a cited Hit: verbatim passage, copies, corroboration."""

from karabakh_qa.answer.decorate import Decorator, copies_of, figures_of, matched_terms
from karabakh_qa.answer.judge import KeyTerm
from karabakh_qa.answer.retrieve import retrieve
from karabakh_qa.sparse import tokenize


def test_matched_terms_are_offsets_of_query_terms():
    assert matched_terms("Missiles hit Ganja; a missile fell.", {"missil", "ganja"}) == [
        [0, 8], [13, 18], [22, 29],
    ]  # fmt: skip


def test_a_hit_is_decorated_once_and_its_copies_name_every_other_article(seed_service):
    index = seed_service.index()
    question = "How many people were killed in the missile attack on Ganja?"
    terms = tokenize(question)
    c = retrieve(index, terms, seed_service.embedder.encode([question])[0], 20, None, "exact")
    fused = c.fused("zscore", (1.0, 1.0, 1.0, 1.0))
    grouped = [j for j, (r, rep) in enumerate(zip(c.rows, c.reps, strict=True)) if r == rep]
    j = max(grouped, key=lambda j: len(index.groups.members(int(c.rows[j]))))
    decorate = Decorator(index, c, fused, {}, "number", set(terms))
    first, again = decorate.one(j, j, 1), decorate.one(j, j, 7)
    assert again.rank == 7 and again.passage is first.passage  # made once
    row = int(c.rows[j])
    members = set(index.groups.members(row))
    assert len(members) >= 2
    copies = copies_of(index, row, first.passage)
    assert {x["id"] for x in copies} == {index.passage(m).id for m in members - {row}}
    assert first.corroboration["articles"] == len(
        {first.passage.source, *(x["file"] for x in copies)}
    )
    raw = (seed_service.settings.articles_dir / first.passage.source).read_text()
    assert raw[first.passage.start : first.passage.end] == first.passage.text


def test_figures_are_given_only_when_the_values_differ(seed_service):
    index = seed_service.index()
    question = "How many people were killed in the missile attack on Ganja?"
    c = retrieve(
        index, tokenize(question), seed_service.embedder.encode([question])[0], 50, None, "exact"
    )
    results = [(i, i) for i in range(len(c.rows))]
    keys = [KeyTerm("ganja", "Ganja", 3)]
    (figures,) = figures_of(index, c, results, question, keys)
    assert figures["measure"] == "killed"
    assert sorted({v["value"] for v in figures["values"]}) == [5, 9, 13]
    texts = [index.passage(int(r)).text for r in c.rows]
    one = [(i, i) for i, t in enumerate(texts) if "13 " in t and "killed" in t]
    assert one  # a passage that reports 13 killed: alone, nothing differs
    assert figures_of(index, c, one, question, keys) is None
    assert figures_of(index, c, results, "Who was killed in Ganja?", keys) is None


def test_a_casualty_question_is_answered_by_the_figure_of_its_measure(seed_service):
    """The span shown for "How many … killed/wounded" is the sentence's figure of that
    measure with what it counts; a figure of another measure is not shown as one."""

    def spans(question):
        hits = seed_service.search(question, 10).hits
        return {(h.passage.source[:3], h.passage.paragraph): h.answer_span for h in hits}

    killed = spans("How many people were killed in the missile attack on Ganja?")
    assert killed[("003", 2)]["text"] == "nine people"
    assert killed[("003", 13)]["text"] == "40 civilians"
    assert killed[("004", 2)]["text"] == "five civilians"
    wounded = spans("How many people were wounded in Ganja?")
    assert wounded[("003", 3)]["text"] == "34 others"
    assert wounded[("004", 2)]["text"] == "17 others"
    assert wounded[("003", 2)] is None  # "killing nine people": a toll of the dead
