"""Versions, copies and corroboration between two articles, and what changed."""

import pytest

from karabakh_qa.chunk import normalise
from karabakh_qa.records import Passage
from karabakh_qa.relations.figures import amounts
from karabakh_qa.relations.versions import (
    MIN_AGREEMENT,
    article_sentences,
    article_signatures,
    compare,
    differing_figures,
    figure_changes,
    named_amounts,
)

BASE = [
    "The storm hit the coast on Monday night.",
    "Officials said 12 people were killed and 40 injured.",
    "Power was cut to 30,000 homes across the region.",
    "Schools will stay closed until Thursday.",
    "The mayor asked residents to stay indoors.",
    "Rescue teams from three towns joined the search.",
]


def article(name: str, sentences: list[str]) -> list:
    text = " ".join(sentences)
    return article_sentences([Passage("x", name, 1, 1, None, 0, len(text), text, None, None)])


def test_a_copy_an_update_and_a_shared_quote_are_told_apart():
    a = article("a.txt", BASE)
    copy = compare(a, article("b.txt", BASE))
    assert copy.kind() == "duplicate" and copy.shared == 6 and not copy.changes
    update = article(
        "c.txt",
        [
            BASE[0],
            "Officials said 15 people were killed and 40 injured.",
            *BASE[2:5],
            "A second storm is expected on Friday.",
        ],
    )
    cmp = compare(a, update)
    assert cmp.kind() == "version" and cmp.shared == 4
    assert [(c.op, c.before and c.before.text, c.after and c.after.text) for c in cmp.changes] == [
        ("changed", BASE[1], "Officials said 15 people were killed and 40 injured."),
        ("removed", BASE[5], None),  # not a rewording of the new last sentence
        ("added", None, "A second storm is expected on Friday."),
    ]
    quote = article(
        "d.txt", ["A football report.", "Nothing else matches here at all today.", BASE[3]]
    )
    assert compare(a, quote).kind() == "corroborates"
    assert compare(a, article("e.txt", ["Unrelated words entirely."])).kind() is None


def test_changed_figures_are_paired_with_their_quotes_and_offsets():
    a = article("a.txt", BASE)
    b = article(
        "b.txt", [BASE[0], "Officials said 15 people were killed and 40 injured.", *BASE[2:]]
    )
    (change,) = figure_changes(compare(a, b))
    assert change["measure"] == "killed"
    assert (change["before"]["value"], change["after"]["value"]) == (12, 15)
    text = " ".join(BASE)
    assert text[change["before"]["start"] : change["before"]["end"]] == "12"


def test_amounts_are_scaled_and_paired_in_order():
    assert [(f.measure, f.value) for f in amounts("worth $20m (£10.5 million), later £9.4m; up 4.75%")] == [
        ("dollars", 20_000_000), ("pounds", 10_500_000), ("pounds", 9_400_000), ("percent", 4.75),
    ]  # fmt: skip
    a = article("a.txt", ["It was worth $20m (£10.5m) in 2004 and will be £9.4m by 2009.", *BASE])
    b = article("b.txt", ["It was worth $20m (£10.5m) in 2004 and will be £94m by 2009.", *BASE])
    (change,) = figure_changes(compare(a, b))
    assert (change["measure"], change["before"]["value"], change["after"]["value"]) == (
        "pounds", 9_400_000, 94_000_000,
    )  # fmt: skip


def test_light_edits_with_nothing_added_or_removed_are_a_copy():
    """Same sentences in the same order, two of them reworded by a word: a copy
    although the shingle Jaccard is far below DUPLICATE_JACCARD; the same edits
    plus one sentence added make an update."""
    a = article("a.txt", BASE)
    edited = [
        *BASE[:3],
        "Schools will remain closed until Thursday.",
        "The mayor urged residents to stay indoors.",
        BASE[5],
    ]
    light = compare(a, article("b.txt", edited))
    assert light.jaccard < 0.93 and light.edited == 4 / 47
    assert light.kind() == "duplicate"
    longer = compare(a, article("c.txt", [*edited, "A second storm is expected on Friday."]))
    assert longer.edited is None and longer.kind() == "version"
    heavy = [s.replace(" the ", " a ").replace("were", "are") for s in edited]
    reworded = compare(a, article("d.txt", heavy))  # every sentence edited: 11 of 47 words
    assert reworded.edited == 11 / 47 and reworded.kind(linked=True) == "corroborates"


def test_a_follow_up_that_repeats_the_background_under_a_new_headline_is_no_version():
    a = article("a.txt", BASE)
    follow_up = article(
        "b.txt",
        [
            "Clean-up crews began clearing fallen trees from the roads on Wednesday.",
            *BASE[1:5],
            "Insurers expect claims to top five million pounds.",
        ],
    )
    plain = compare(a, follow_up, diff=False)
    assert 0.51 <= plain.containment < 0.65  # what containment alone calls a version
    assert plain.continuity == 1.0 and plain.kind() == "version"
    new_headline = compare(a, follow_up, False, ("Storm kills 12", "Clean-up after the storm"))
    assert round(new_headline.continuity, 4) == 0.1429  # "storm": 1 of 7 headline words
    assert new_headline.kind() == "corroborates"
    same_headline = compare(a, follow_up, False, ("Storm kills 12", "Storm kills 12"))
    assert same_headline.continuity == 1.0 and same_headline.kind() == "version"


def test_one_names_amount_given_differently_in_reworded_sentences_differs():
    """No changed sentence pair (the two sentences share too few words), yet both
    give Altria's rise: 5% against 5.11%. Reynolds' 4.5% agrees; a sentence's first
    word names nothing ("Shares rose 2%" against "Shares rose 3%")."""
    a = article(
        "a.txt",
        ["Shares closed higher, with Altria rising 5% and Reynolds showing gains of 4.5%.",
         "Shares rose 2% in Asia."],
    )  # fmt: skip
    b = article(
        "b.txt",
        ["The ruling sent Reynolds shares up 4.5% and Altria shares up 5.11%.",
         "Shares rose 3% in Europe on a busy day of trading."],
    )  # fmt: skip
    cmp = compare(a, b)
    assert not figure_changes(cmp)
    (diff,) = differing_figures(cmp, (named_amounts(a), named_amounts(b)))
    assert diff["measure"] == "percent"
    assert (diff["before"]["value"], diff["after"]["value"]) == (5, 5.11)
    text_a = "Shares closed higher, with Altria rising 5% and Reynolds showing gains of 4.5%."
    text_b = "The ruling sent Reynolds shares up 4.5% and Altria shares up 5.11%."
    assert text_a[diff["before"]["start"] : diff["before"]["end"]] == "5"
    assert text_b[diff["after"]["start"] : diff["after"]["end"]] == "5.11"


def test_a_name_given_both_values_by_both_articles_does_not_differ():
    a = article("a.txt", ["Altria rose 5% on Monday.", "Over the year Altria gained 8%."])
    b = article("b.txt", ["Over the year Altria gained 8%.", "On Monday Altria rose 5%."])
    assert differing_figures(compare(a, b), (named_amounts(a), named_amounts(b))) == []


@pytest.mark.parametrize(
    ("sentence", "owned"),
    [
        ("Allied Domecq shares in London rose 4% by noon.", [("Domecq", 4)]),  # not London's
        ('"But growth of 0.1% is weak," he said.', []),  # the sentence's first word
        ("Time Warner said on Friday that it now owns 8% of the firm.", []),  # a day
        ("It sold a stake to Italian bank Mediobanca for 775m euros ($1bn).", []),  # conversion
        (
            "Profits at Barclaycard rose by 5% to £801m.",
            [("Barclaycard", 5), ("Barclaycard", 801e6)],
        ),
    ],
)
def test_an_amount_belongs_to_the_name_just_before_it_in_its_clause(sentence, owned):
    found = named_amounts(article("a.txt", [sentence]))
    assert [(n.name, n.figure.value) for n in found] == owned


def test_a_rewrite_that_shares_no_five_words_in_a_row_is_still_a_candidate():
    """Article signatures are built from content-word bigrams: a rewrite that changes
    the little words between every name and number (no word 5-gram in common) shares
    LSH bands and MinHash values with its original; an unrelated story shares none."""
    texts = [
        " ".join(BASE),
        "A storm hit a coast late on Monday night, and officials now said 12 people had"
        " been killed with 40 injured. Power had been cut to some 30,000 homes in the"
        " region, while schools would stay closed till Thursday. Their mayor then asked"
        " all of the residents to stay indoors as rescue teams of three towns joined in"
        " the search.",
        "The central bank held interest rates at 4.75% on Thursday. Analysts had expected"
        " the decision after a slowdown in house prices. The pound fell against the"
        " dollar. Retail sales rose by 0.3% in March, figures showed.",
    ]
    bands, values = article_signatures([normalise(t) for t in texts], [1, 1, 1])
    assert (bands[0] == bands[1]).sum() >= 8
    assert (values[0] == values[1]).sum() >= 3 * MIN_AGREEMENT
    for other in (0, 1):
        assert (bands[other] == bands[2]).sum() == 0
        assert (values[other] == values[2]).sum() < MIN_AGREEMENT
