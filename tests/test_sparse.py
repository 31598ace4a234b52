from karabakh_qa.sparse import tokenize, tokenize_spans


def test_tokenizer_lowercases_stems_drops_stopwords_and_joins_thousands():
    assert tokenize("The Attacks destroyed 1,165 houses in Ganja's") == [
        "attack",
        "destroy",
        "1165",
        "hous",
        "ganja",
    ]
    text = "Shelling of Ganja"
    assert [(t, text[s:e]) for t, s, e in tokenize_spans(text)] == [
        ("shell", "Shelling"),
        ("ganja", "Ganja"),
    ]


def test_term_spans_find_every_token_whose_stem_is_wanted_and_no_other():
    """The fast scan (stem beginnings, then the tokenizer) equals checking every
    token, on the seeds with random wanted terms and on stems that change a word's
    ending."""
    import random

    from karabakh_qa.config import PROJECT_ROOT
    from karabakh_qa.sparse import _TOKEN, _terms, term_spans

    def every_token(text: str, wanted: set[str]) -> list[list[int]]:
        return [list(m.span()) for m in _TOKEN.finditer(text) if _terms[m.group()] in wanted]

    text = "Ratings rated; the rating's rate. Skies, sky-high; possibility, possibly. 1,165 fled"
    for words in ("rate", "sky", "possibl", "1165", "fled", "rate sky possibl"):
        wanted = set(words.split())
        assert term_spans(text, wanted) == every_token(text, wanted)
    assert [text[a:b] for a, b in term_spans(text, {"sky"})] == ["Skies", "sky"]
    assert [text[a:b] for a, b in term_spans(text, {"1165"})] == ["1,165"]
    rng = random.Random(7)
    for path in sorted((PROJECT_ROOT / "seeds").glob("*.txt")):
        article = path.read_text(encoding="utf-8")
        terms = sorted(set(tokenize(article)))
        for _ in range(20):
            wanted = set(rng.sample(terms, rng.randint(1, 6)))
            assert term_spans(article, wanted) == every_token(article, wanted)
    assert term_spans(text, set()) == []
