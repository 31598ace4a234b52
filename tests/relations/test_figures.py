"""Figures across sources: the number rules (figures.py), exact spans."""

import pytest

from karabakh_qa.relations.figures import across, asked_measure, figures


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (
            "came early on Sunday, killing nine people including four women.",
            [("killed", 9, "nine")],
        ),
        (
            "at least 13 civilians were killed, including four women, and nearly 50 others injured",
            [("killed", 13, "13"), ("wounded or injured", 50, "50")],
        ),
        (
            "which killed five civilians and injured 17 others.",
            [("killed", 5, "five"), ("wounded or injured", 17, "17")],
        ),
        ("Baku says 22 civilians have died since then.", [("killed", 22, "22")]),
        ("rescue workers carrying one dead person from the ruins", []),
        (
            "As many as 34 others – among them 16 women and six children – were wounded.",
            [("wounded or injured", 34, "34")],
        ),
        (
            "As many as 34 others, among them 16 women and six children, were wounded.",
            [("wounded or injured", 34, "34")],
        ),
        ("destroyed 1,165 houses and 57 buildings", []),
    ],
)
def test_figures_read_the_first_value_of_each_measure(text, found):
    assert [(f.measure, f.value, text[f.start : f.end]) for f in figures(text)] == found


def test_only_how_many_questions_about_a_measure_ask_for_figures():
    assert asked_measure("How many people were killed in Ganja?") == "killed"
    assert asked_measure("What was the death toll? How many died?") == "killed"
    assert asked_measure("How many were injured?") == "wounded or injured"
    assert asked_measure("Who was killed in Ganja?") is None
    assert asked_measure("How many houses were destroyed?") is None


def test_a_figure_after_a_sentence_naming_the_place_counts_unless_it_names_its_own():
    from karabakh_qa.records import Passage

    def passage(text: str) -> Passage:
        return Passage("x", "a.txt", 2, 1, None, 100, 100 + len(text), text, "2020-10-11", None)

    lede = "The missile attack on Ganja killed nine people."
    after = passage("As many as 34 others were wounded, it said.")
    values = across("wounded or injured", [after], ["Ganja"], lambda i: lede)
    assert [(v["value"], v["start"], v["end"]) for v in values] == [(34, 111, 113)]
    assert across("wounded or injured", [after], ["Ganja"], lambda i: "") == []  # nothing before
    elsewhere = passage("Later 12 were wounded in Tartar.")
    assert across("wounded or injured", [elsewhere], ["Ganja"], lambda i: lede) == []


@pytest.mark.parametrize(
    ("sentence", "measure", "shown"),
    [
        ("The attack came on Sunday, killing nine people including four women.", "killed",
         "nine people"),
        ("At least 13 civilians were killed, including four women and three children, and "
         "nearly 50 others injured.", "killed", "13 civilians"),
        ("At least 13 civilians were killed, including four women and three children, and "
         "nearly 50 others injured.", "wounded or injured", "50 others"),
        ("As many as 34 others – among them 16 women and six children – were wounded.",
         "wounded or injured", "34 others"),
        ("Shells killed five civilians and injured 17 others.", "wounded or injured",
         "17 others"),
        ("Shells killed 5 and injured 17.", "killed", "5"),
        ("Shells fell on Ganja.", "killed", None),
    ],
)  # fmt: skip
def test_the_figure_of_a_measure_is_shown_with_what_it_counts(sentence, measure, shown):
    from karabakh_qa.relations.figures import figure_span

    found = figure_span(sentence, measure)
    assert (sentence[found[0] : found[1]] if found else None) == shown
