import pytest

from karabakh_qa.chunk import chunk_article, classify, passage_id, split_long, units
from karabakh_qa.ingest import parse_article, read_articles

from .conftest import SEEDS


def labels_of(text: str) -> list[tuple[str, str]]:
    items = units(text)
    return [(lab, u.text) for u, lab in zip(items, classify(items), strict=True)]


def passages_of(text: str):
    return chunk_article(parse_article("t.txt", text.encode()))[1]


BODY = "A full paragraph of reporting that ends with a period."


@pytest.mark.parametrize(
    "line,label",
    [
        ("READ MORE: Azerbaijan: Ganja city targeted", "read_more"),
        ("READ MORE:\xa0Something else", "read_more"),
        ("Related: other story here", "read_more"),
        ("Loading...", "ui"),
        ("Advertisement", "ui"),
        ("Source: TRTWorld and agencies", "source"),
        ("Reporting by Jane Doe; Editing by John Roe", "source"),
    ],
)
def test_furniture_lines_are_dropped(line, label):
    text = f"{BODY}\n\n{line}\n\n{BODY.replace('full', 'second')}\n"
    assert labels_of(text)[1] == (label, line)
    assert [p.text for p in passages_of(text)] == [BODY, BODY.replace("full", "second")]


def test_lone_credit_under_a_caption_and_repeated_caption():
    caption = "Rescuers work at the scene of a damaged building after the attack on Sunday."
    text = f"{BODY}\n\n{caption}\nAP\n\n{caption}\n\n{BODY.replace('full', 'last')}\n"
    labs = labels_of(text)
    assert [lab for lab, _ in labs] == ["paragraph", "paragraph", "credit", "repeat", "paragraph"]
    assert [p.text for p in passages_of(text)].count(caption) == 1


def test_caption_repeated_with_agency_suffix_keeps_first():
    caption = (
        "Azerbaijani army has retaken 13 more villages in Jabrayil region, says President Aliyev."
    )
    text = f"{BODY}\n\n{caption}\n{caption} (AA)\n\n{BODY.replace('full', 'last')}\n"
    texts = [p.text for p in passages_of(text)]
    assert caption in texts and caption + " (AA)" not in texts


def test_heading_becomes_section_and_trailing_widgets_are_dropped():
    nxt = BODY.replace("full", "next")
    text = f"Title of the story\n\n{BODY}\n\nTemporary ceasefire\n\n{nxt}\n\nRoute 6"
    labs = [lab for lab, _ in labels_of(text)]
    assert labs == ["title", "paragraph", "heading", "paragraph", "widget"]
    ps = passages_of(text)
    assert [(p.paragraph, p.section) for p in ps] == [(1, None), (2, "Temporary ceasefire")]
    assert ps[0].title == "Title of the story"


@pytest.mark.parametrize(
    "first, label",
    [
        ("Rank 'set to sell off film unit'", "title"),  # a quote alone ends no sentence
        ("Call centre users \u2018lose patience\u2019", "title"),
        ('He said: "We will not go back."', "paragraph"),  # punctuation, then the quote
        ("Will the talks resume?", "paragraph"),
    ],
)
def test_a_headline_in_quotes_is_the_title(first, label):
    text = f"{first}\n\n{BODY}\n"
    assert labels_of(text)[0] == (label, first)
    title = passages_of(text)[0].title
    assert title == (first if label == "title" else None)


def test_two_short_lines_in_a_row_only_last_can_be_heading():
    widget = "Press Armenia, Turkey asks Russia"
    text = f"{BODY}\n\n{widget}\n\nReal heading\n\n{BODY.replace('full', 'x')}\n"
    assert [lab for lab, _ in labels_of(text)] == ["paragraph", "widget", "heading", "paragraph"]


def test_hard_wrapped_paragraph_is_one_passage():
    text = (
        "This paragraph was wrapped by the site at a fixed width and\ncontinues on the next line.\n"
    )
    ps = passages_of(text)
    assert len(ps) == 1 and ps[0].text == text.strip()


def test_long_paragraph_split_at_sentence_boundaries():
    sentence = "The ministry said the shelling continued through the night near the city. "
    text = sentence * 30
    spans = split_long(text.strip(), 0, lambda s: len(s.split()), 60)
    assert len(spans) == 6
    for s, e in spans:
        assert text[s:e].endswith(".") and text[s:e].startswith("The")
        assert len(text[s:e].split()) <= 60
    ps = chunk_article(parse_article("l.txt", text.encode()), lambda s: len(s.split()), 62)[1]
    assert [(p.paragraph, p.part) for p in ps] == [(1, i) for i in range(1, 7)]


def test_every_seed_passage_is_a_verbatim_span():
    articles, skipped = read_articles(SEEDS)
    assert skipped == [] and len(articles) == 5
    total = 0
    for article in articles:
        raw = (SEEDS / article.source).read_bytes().decode("utf-8")
        for p in chunk_article(article)[1]:
            assert raw[p.start : p.end] == p.text
            assert p.text == p.text.strip()
            total += 1
    assert total == 86


def test_seed_furniture_never_becomes_a_passage():
    articles, _ = read_articles(SEEDS)
    texts = [p.text for a in articles for p in chunk_article(a)[1]]
    for bad in ("READ MORE", "Loading...", "Route 6", "Press Armenia", "Source: TRT"):
        assert not any(t.startswith(bad) for t in texts), bad
    assert "AP" not in texts
    caption = "Rescuers work at the scene of a damaged building"
    assert sum(t.startswith(caption) for t in texts) == 1
    sections = {p.section for a in articles for p in chunk_article(a)[1]}
    assert {
        "Temporary ceasefire",
        "Latest fighting",
        "Infrastructure damaged",
        "Attacks on Ganja",
    } <= sections


def test_passage_ids_are_stable_and_content_derived():
    assert passage_id("a.txt", "Hello,  World") == passage_id("a.txt", "hello world")
    assert passage_id("a.txt", "hello") != passage_id("b.txt", "hello")
    first = passages_of(f"{BODY}\n\nAnother paragraph, also complete.\n")
    second = passages_of(
        f"New opening paragraph, inserted.\n\n{BODY}\n\nAnother paragraph, also complete.\n"
    )
    assert {p.id for p in first} <= {p.id for p in second}


def test_run_on_sentence_is_cut_between_words_within_budget():
    text = " ".join(f"word{i}" for i in range(130))  # no sentence end at all
    spans = split_long(text, 10, lambda s: len(s.split()) + 2, 52)
    assert [(e - s) > 0 for s, e in spans] == [True] * 3
    assert [len(text[s - 10 : e - 10].split()) for s, e in spans] == [50, 50, 30]
    assert " ".join(text[s - 10 : e - 10] for s, e in spans) == text


def test_one_line_article_is_kept_even_without_final_punctuation():
    ps = passages_of("Floods hit the valley of Zangilan\n")
    assert [p.text for p in ps] == ["Floods hit the valley of Zangilan"]
