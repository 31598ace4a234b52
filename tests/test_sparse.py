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
