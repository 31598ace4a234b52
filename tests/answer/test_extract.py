"""The learned answer span (answer/extract.py) with the shipped model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from karabakh_qa.answer.extract import (
    DEFAULT_MODEL,
    FEATURES,
    Frame,
    Reading,
    Sentence,
    answer_in,
    candidates,
    extract,
    extract_many,
)
from karabakh_qa.answer.forest import Scorer, load_scorer
from karabakh_qa.answer.spans import answer_type
from karabakh_qa.errors import IndexUnavailable

GANJA = (
    "Shortly after midnight on 11 October, a missile struck a residential building in "
    "Ganja, killing nine people and wounding 34, the prosecutor's office said."
)
OTHER = "The city council met on Monday. Officials from Baku said the shelling went on."


@pytest.fixture(scope="module")
def model() -> Scorer:
    return load_scorer(DEFAULT_MODEL, FEATURES)


def test_a_number_question_gets_the_count_verbatim(model):
    q = "How many people were killed in the missile attack on Ganja?"
    span = extract(GANJA, (0, len(GANJA)), q, answer_type(q), model)
    assert (span.text, span.type) == ("nine", "number")
    assert GANJA[span.start : span.end] == span.text


def test_a_number_question_without_a_number_gets_no_span(model):
    q = "How many people were killed in the missile attack on Ganja?"
    within = (32, len(OTHER))  # the second sentence: no number, nothing the rules find
    assert extract(OTHER, within, q, answer_type(q), model) is None


def test_a_page_of_sentences_in_one_batch_equals_one_at_a_time(model):
    q = "Who said the shelling went on?"
    kind = answer_type(q)
    sentences = [
        Sentence.of(GANJA, (0, len(GANJA)), q, kind),
        Sentence.of(OTHER, (0, 31), q, kind),
        Sentence.of(OTHER, (32, len(OTHER)), q, kind),
    ]
    batch = extract_many(sentences, q, kind, model)
    alone = [extract(s.text, s.within, q, kind, model) for s in sentences]
    # "Officials from Baku said…": the officials said it
    assert batch == alone and batch[2] is not None and batch[2].text == "Officials"
    assert all(
        s.within[0] <= x.start and x.end <= s.within[1]
        for s, x in zip(sentences, batch, strict=True)
        if x is not None
    )
    joint = candidates(sentences, q, kind)  # no phrase crosses a sentence
    for k, s in enumerate(sentences):
        mine = joint.sentence == k
        assert (joint.starts[mine] >= s.within[0]).all() and (joint.ends[mine] <= s.within[1]).all()


def test_candidates_are_runs_without_stop_words_at_their_ends(model):
    q = "What did the office say?"
    found = candidates([Sentence.of(GANJA, (0, len(GANJA)), q, answer_type(q))], q, answer_type(q))
    texts = {GANJA[a:b] for a, b in zip(found.starts.tolist(), found.ends.tolist(), strict=True)}
    assert {"nine people", "wounding 34", "prosecutor's"} <= texts
    assert not {"people and", "and wounding", "office"} & texts  # "office": the question's
    assert "midnight" not in texts  # 25 words from the question's: too far (NEAR)
    assert found.x.shape == (len(texts), len(FEATURES)) and np.isfinite(found.x).all()


def test_a_model_for_other_features_is_refused(tmp_path):
    data = json.loads(DEFAULT_MODEL.read_text(encoding="utf-8"))
    data["features"] = data["features"][:-1]
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IndexUnavailable, match="unusable"):
        load_scorer(path, FEATURES)


def test_an_amount_keeps_its_scale_and_its_conversion_is_not_the_answer(model):
    text = "Gordon Brown pledged £960m ($1.8bn) over 15 years to the vaccination scheme."
    q = "How much did Gordon Brown pledge to the scheme?"
    found = candidates([Sentence.of(text, (0, len(text)), q, "number")], q, "number")
    texts = {text[a:b] for a, b in zip(found.starts.tolist(), found.ends.tolist(), strict=True)}
    assert "£960m" in texts and "£960" not in texts and "$1.8bn" in texts
    converted = "It cost $40m ($21m), officials said."
    span = extract(converted, (0, len(converted)), "How much did it cost?", "number", model)
    assert span is not None and span.text == "$40m"  # "$21m" in brackets: its conversion


def test_a_name_is_shown_whole(model):
    text = "Mr Donaldson made the offer in a speech at the London School of Economics."
    q = "Where did SEC chairman William Donaldson give the speech?"
    span = extract(text, (0, len(text)), q, answer_type(q), model)
    assert span is not None and span.text == "London School of Economics"


def test_a_score_is_shown_whole(model):
    """The rules read "7-5 6-4" as one result; a part of it ("7") is never shown."""
    text = (
        "Daniela Hantuchova moved into the quarter-finals of the Dubai Open, after beating "
        "Elene Likhotseva of Russia 7-5 6-4, and now faces Serena Williams."
    )
    q = "By what score did Daniela Hantuchova beat Elene Likhotseva?"
    span = extract(text, (0, len(text)), q, answer_type(q), model)
    assert (span.text, text[span.start : span.end]) == ("7-5 6-4", "7-5 6-4")


@pytest.mark.parametrize(
    ("question", "aux", "last_word", "at_end", "first", "last"),
    [
        # an auxiliary after the wh-phrase: the answer follows the question's verb
        (
            "What format do Hearst's affiliates transmit in?",
            True,
            "in",
            False,
            "format",
            "transmit",
        ),
        # no auxiliary: "[Y] founded the city", the answer before the words after "who"
        ("Who founded the city of Ganja?", False, "", False, "found", "ganja"),
        # the gap at the end: the answer follows the words before it
        ("The land a country controls is its greatest what?", False, "", True, "", ""),
    ],
)
def test_a_question_frame_says_where_its_answer_stands(
    question, aux, last_word, at_end, first, last
):
    frame = Frame.of(question)
    assert (frame.aux, frame.last_word, frame.at_end) == (aux, last_word, at_end)
    assert (frame.first_term, frame.last_term) == (first, last)


def test_alignment_features_of_a_phrase_after_the_questions_verb():
    text = "ABC stations air in 720p, while Hearst's affiliates transmit in 1080i HD."
    q = "What format do Hearst's affiliates transmit in?"
    found = candidates([Sentence.of(text, (0, len(text)), q, answer_type(q))], q, answer_type(q))
    spans = list(zip(found.starts.tolist(), found.ends.tolist(), strict=True))
    col = {name: c for c, name in enumerate(FEATURES)}

    def row(phrase: str) -> np.ndarray:
        at = text.index(phrase)
        return found.x[spans.index((at, at + len(phrase)))]

    hd, early = row("1080i HD"), row("720p")
    assert hd[col["after_last_word"]] == 1 and hd[col["gap_left"]] == 1 and hd[col["gap"]] == 1
    assert early[col["after_last_word"]] == 1 and early[col["gap_left"]] == 0
    # "hearst", "affiliat", "transmit" on its left (of the question's 4 terms), none after
    assert hd[col["left_terms"]] == 3 / 4 and hd[col["right_terms"]] == 0
    assert hd[col["last_left"]] == 1 / 3 and hd[col["first_right"]] == 0
    assert early[col["clause_right"]] == 1  # the comma after "720p", before "Hearst's"
    assert hd[col["clause_left"]] == 0 and hd[col["punctuation_after"]] == 0


EELS = (
    "A deadly shock from the river can stun or kill a horse. "
    "Electric eels produce it, as Humboldt saw in Venezuela in 1800."
)


@pytest.mark.parametrize(
    ("scores", "within", "shown"),
    [
        ([1.0, 0.9], (56, 119), "1800"),  # the next sentence is close enough to be read
        ([1.0, 0.5], (0, 55), None),  # too far behind (NEAR_SENTENCE): the marked one
        ([], (0, 55), None),  # no scores: the marked sentence alone
    ],
)
def test_the_answer_sentence_is_chosen_with_its_span(model, scores, within, shown):
    q = "When did Humboldt see the eels?"
    reading = Reading(EELS, [(0, 55), (56, 119)], np.array(scores), (0, 55))
    [(sentence, span)] = answer_in([reading], q, answer_type(q), model)
    assert sentence.within == within
    assert (span.text if span else None) == shown
    if span:
        assert EELS[span.start : span.end] == span.text


def test_without_a_model_the_marked_sentence_keeps_the_rules_span():
    q = "When did Humboldt see the eels?"
    reading = Reading(EELS, [(0, 55), (56, 119)], np.array([0.9, 1.0]), (56, 119))
    [(sentence, span)] = answer_in([reading], q, answer_type(q), None)
    assert sentence.within == (56, 119) and span == sentence.rule and span.text == "1800"


def test_a_time_needs_no_digit_but_a_count_does():
    text = "The vote was put off until after the election, officials said."
    q = "When will the vote be held?"
    found = candidates([Sentence.of(text, (0, len(text)), q, "date")], q, "date")
    phrases = [text[a:b] for a, b in zip(found.starts.tolist(), found.ends.tolist(), strict=True)]
    at = phrases.index("election")
    assert found.allowed("date")[at] and not found.allowed("number")[at]
    assert not found.allowed("person")[at]  # a name question still wants a capital
