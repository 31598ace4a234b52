"""Stage 0: every parameter checked, exact messages, form blanks vs JSON values."""

import pytest

from karabakh_qa.answer.query import Query, flag, parse_query
from karabakh_qa.config import Settings
from karabakh_qa.errors import BadRequest


class Archive:
    names = ["a.txt", "b.txt"]

    def article(self, name):
        return {} if name in self.names else None

    def article_names(self):
        return list(self.names)


def parse(*args, **kw):
    return parse_query(Settings(), Archive(), *args, **kw)


def test_defaults_and_every_field_normalised():
    assert parse("  Who?  ") == Query("Who?", Settings().default_k)
    q = parse("q", "7", "a.txt", "2020-01-01", "2020-12-31", offset="10", sort="date")
    assert q == Query("q", 7, ("a.txt",), "2020-01-01", "2020-12-31", 10, "date")
    assert parse("q", facets="yes", include_undated="on").facets is True


def test_a_form_blank_means_absent_but_a_json_blank_is_an_error():
    assert parse("q", "", "", "", "", offset="", sort="") == Query("q", Settings().default_k)
    with pytest.raises(BadRequest, match="k must be a whole number from 1 to 50, got ''"):
        parse("q", "", blank_is_absent=False)
    with pytest.raises(BadRequest, match="since must be a date as YYYY-MM-DD, got ''"):
        parse("q", since="", blank_is_absent=False)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"offset": 1001}, "offset must be a whole number from 0 to 1000, got 1001"),
        ({"offset": -1}, "offset must be a whole number from 0 to 1000, got -1"),
        ({"sort": "best"}, "sort must be one of relevance, date, first_seen, got 'best'"),
        ({"sources": ["c.txt"]}, "unknown source 'c.txt'; indexed sources are: a.txt, b.txt"),
        ({"sources": "a.txt", "since": 20200101}, "since must be a date as YYYY-MM-DD"),
        ({"facets": "maybe"}, "facets must be true or false, got 'maybe'"),
        ({"k": 2.5}, "k must be a whole number from 1 to 50, got 2.5"),
    ],
)
def test_bad_values_say_what_is_allowed(kwargs, message):
    with pytest.raises(BadRequest) as err:
        parse("q", **kwargs)
    assert str(err.value.message).startswith(message)


def test_flag_words():
    assert [flag(v, "x") for v in (None, "", "0", "off", "No", True, "1", " yes ")] == [
        False, False, False, False, False, True, True, True,
    ]  # fmt: skip
