"""Key terms of a question, what the archive never mentions, and their coverage."""

import numpy as np
import pytest

from karabakh_qa.answer.judge import AnswerRule, KeyTerm, coverage, key_terms, missing
from karabakh_qa.config import Settings
from karabakh_qa.records import Hit, Passage

DF = {"googl": 40, "profit": 300, "2016": 0, "quarter": 120, "iphon": 0, "15": 2, "rise": 900}


def df_of(terms):
    return np.array([DF.get(t, 5000) for t in terms])


def test_key_terms_are_names_numbers_and_absent_words_of_a_large_archive():
    keys = key_terms("How much did Google's profit rise in 2016?", df_of, 10_000)
    assert [(k.surface, k.df) for k in keys] == [("Google", 40), ("2016", 0)]
    large = key_terms("how did the iphone sell", df_of, 10_000)
    assert [k.surface for k in large] == ["iphone"]  # not capitalised, but in no passage
    assert key_terms("how did the iphone sell", df_of, 500) == []  # a small archive: no sign


def test_missing_names_what_no_passage_holds():
    keys = key_terms("Did the iPhone 15 sell well in 2016?", df_of, 10_000)
    assert missing(keys) == ["iPhone", "2016"]


def test_coverage_is_the_best_share_of_key_terms_in_one_text():
    keys = key_terms("How much did Google's profit rise in 2016?", df_of, 10_000)
    texts = ["Google's profit rose", "profits in 2016 at Google"]
    assert coverage(keys, texts, 10_000) == 1.0
    assert (
        coverage(keys, texts[:1], 10_000) < 0.5 < coverage(keys, texts[1:], 10_000)
    )  # "2016" weighs most
    assert coverage([], [], 10_000) == 1.0


def test_every_number_of_the_question_must_be_in_one_passage():
    from karabakh_qa.answer.judge import numbers_held

    keys = key_terms("Who won the marathon in 2007 by 12 seconds?", df_of, 10_000)
    assert not numbers_held(keys, ["won the marathon in 2004", "12 seconds in 2007 alone"][:1])
    assert numbers_held(keys, ["won the marathon in 2004", "in 2007 by 12 seconds"])
    assert not numbers_held(keys, ["2007 marathon", "12 seconds"])  # not in one passage
    assert numbers_held(key_terms("Who won the marathon?", df_of, 10_000), [])


def hit(text: str, dense: float, cover: float) -> Hit:
    p = Passage("x", "a.txt", 1, 1, None, 0, len(text), text, None, None)
    return Hit(1, 0.0, p, explain={"dense_score": dense, "term_coverage": cover})


RULE = AnswerRule.of(Settings())  # 0.65 key coverage; cosine 0.40, or 0.25 with 0.5 terms
KEYS = [KeyTerm("googl", "Google", 40), KeyTerm("2016", "2016", 3)]


def test_the_rule_wants_the_key_terms_and_closeness_in_one_top_hit():
    good = hit("Google's profit rose in 2016.", 0.41, 0.0)
    assert RULE.found([good], KEYS, 1000) and RULE.answers(good, KEYS, 1000)
    assert not RULE.found([hit("Google's profit rose in 2015.", 0.9, 1.0)], KEYS, 1000)
    assert not RULE.found([hit("Google's profit rose in 2016.", 0.39, 0.49)], KEYS, 1000)
    assert RULE.found([hit("Google's profit rose in 2016.", 0.25, 0.5)], KEYS, 1000)
    # the terms in one hit, the closeness in another: found, but neither answers alone
    split = [hit("Google in 2016.", 0.1, 0.0), hit("Profits rose.", 0.9, 0.0)]
    assert RULE.found(split, KEYS, 1000)
    assert not any(RULE.answers(h, KEYS, 1000) for h in split)
    # only the top 3 count
    assert not RULE.found([hit("Other.", 0.9, 1.0)] * 3 + [good], KEYS, 1000)


def test_a_hit_is_read_with_its_context_and_must_hold_the_kind_asked_for():
    """ "34 others were wounded, it said" names no city: the sentence before it does.
    And a paragraph without a figure does not answer "How many…"."""
    from karabakh_qa.answer.spans import holds_kind

    keys = [KeyTerm("ganja", "Ganja", 3)]
    said = hit("As many as 34 others were wounded, it said.", 0.45, 0.5)
    assert not RULE.answers(said, keys, 1000)
    before = "The missile attack on Ganja city killed nine people."
    assert RULE.answers(said, keys, 1000, before, "number")
    assert RULE.found([said], keys, 1000, [before]) and not RULE.found([said], keys, 1000)
    topic = hit("It was the deadliest assault on Ganja in a week.", 0.67, 0.2)
    assert RULE.answers(topic, keys, 1000) and RULE.answers(topic, keys, 1000, "", "person")
    assert not RULE.answers(topic, keys, 1000, "", "number")
    assert not RULE.answers(topic, keys, 1000, "", "date")
    assert holds_kind("It began on 19 March.", "date") and not holds_kind("It began.", "date")
    assert holds_kind("Nine died.", "number") and holds_kind("No figure.", "reason")


def test_a_name_is_held_by_its_demonym_and_back():
    keys = [KeyTerm("azerbaijan", "Azerbaijan", 30), KeyTerm("armenian", "Armenian", 40)]
    assert coverage(keys, ["Azerbaijani army and Armenia's forces"], 1000) == 1.0
    assert coverage(keys, ["Azerbaijan's army"], 1000) == pytest.approx(0.5, abs=0.05)
    assert coverage(keys, ["the army of Azerbaijanistan and Armen"], 1000) == 0.0
    years = [KeyTerm("2004", "2004", 3)]
    assert coverage(years, ["in 20041"], 1000) == 0.0  # numbers stand for themselves
