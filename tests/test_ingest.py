from pathlib import Path

import pytest

from karabakh_qa.chunk import chunk_article, infer_date
from karabakh_qa.errors import ArticleError
from karabakh_qa.ingest import parse_article, read_articles

from .conftest import SEEDS, write


def seed(name: str):
    path = next(SEEDS.glob(name + "*"))
    return chunk_article(parse_article(path.name, path.read_bytes()))[0]


def test_seed_dates_follow_precedence_and_never_invent_a_year():
    assert (seed("000").date, seed("000").date_source) == (None, None)
    assert (seed("001").date, seed("001").date_source) == ("2020-10-11", "text")  # caption
    assert (seed("002").date, seed("002").date_source) == (None, None)  # "October 18", no year
    assert (seed("003").date, seed("003").date_source) == ("2020-10-11", "header")
    assert (seed("004").date, seed("004").date_source) == (None, None)


def test_front_matter_beats_marker_and_text():
    raw = (
        b"---\ntitle: Ceasefire holds\ndate: 2021-01-02\nsource: Wire\nurl: http://x\n---\n"
        b"date 2020-05-05 Body text on Sunday, October 11, 2020 here.\n"
    )
    article = parse_article("a.txt", raw)
    assert (article.date, article.date_source, article.title) == (
        "2021-01-02",
        "metadata",
        "Ceasefire holds",
    )
    assert article.publisher == "Wire" and article.url == "http://x"
    assert article.text[article.body_start :].startswith("Body text")


def test_date_marker_is_stripped_from_passage_text():
    article, passages = chunk_article(
        parse_article("m.txt", b" date 2020-10-11 First paragraph here.\n")
    )
    assert article.date_source == "header"
    assert passages[0].text == "First paragraph here."
    assert passages[0].start == 17


def test_invalid_front_matter_date_is_ignored_then_text_date_used():
    raw = b"---\ndate: yesterday\n---\nIt happened on 3 March 2019 in town.\n"
    article, _ = chunk_article(parse_article("d.txt", raw))
    assert (article.date, article.date_source) == ("2019-03-03", "text")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("on Sunday, October 11, 2020.", "2020-10-11"),
        ("on 11 October 2020 the", "2020-10-11"),
        ("published 2020-10-11.", "2020-10-11"),
        ("on October 11 the", None),
        ("February 30, 2020", None),
        ("in 1994 a ceasefire", None),
    ],
)
def test_infer_date(text, expected):
    assert infer_date([text]) == expected


def test_bad_files_are_skipped_with_reasons(tmp_path: Path):
    folder = tmp_path / "a"
    write(folder, "good.txt", "A real paragraph about the ceasefire.\n")
    write(folder, "empty.txt", "")
    write(folder, "blank.md", " \n\n \n")
    write(folder, "latin1.txt", "Caf\xe9 au lait".encode("latin-1"))
    write(folder, "binary.txt", b"\x89PNG\x00\x00\x01")
    write(folder, "notes.pdf", b"ignored: not an article type")
    write(folder, ".hidden.txt", "ignored")
    articles, skipped = read_articles(folder)
    assert [a.source for a in articles] == ["good.txt"]
    assert {s.source: s.reason for s in skipped} == {
        "binary.txt": "binary file (contains NUL bytes)",
        "blank.md": "empty file (whitespace only)",
        "empty.txt": "empty file",
        "latin1.txt": "not UTF-8 (invalid byte 0xe9 at offset 3)",
    }


def test_missing_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ArticleError, match="does not exist"):
        read_articles(tmp_path / "nope")


def test_crlf_and_bom_keep_exact_offsets():
    raw = (
        "\ufeffHeadline here\r\n\r\nFirst para, with words.\r\nSecond line ends here.\r\n".encode()
    )
    article, passages = chunk_article(parse_article("w.txt", raw))
    for p in passages:
        assert article.text[p.start : p.end] == p.text
    assert [p.text for p in passages] == ["First para, with words.", "Second line ends here."]
