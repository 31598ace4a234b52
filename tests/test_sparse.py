import numpy as np
from rank_bm25 import BM25Okapi

from karabakh_qa.chunk import chunk_article
from karabakh_qa.ingest import read_articles
from karabakh_qa.sparse import BM25Index, tokenize, tokenize_spans

from .conftest import SEEDS


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


def assert_parity(docs, queries):
    ours = BM25Index.fit(docs, k1=1.2, b=0.75, epsilon=0.25)
    ref = BM25Okapi(docs, k1=1.2, b=0.75, epsilon=0.25)
    worst = 0.0
    for q in queries:
        worst = max(worst, float(np.max(np.abs(ours.scores(q) - ref.get_scores(q)))))
    assert worst < 1e-6


def test_bm25_matrix_matches_rank_bm25_on_seeds():
    articles, _ = read_articles(SEEDS)
    docs = [tokenize(p.text) for a in articles for p in chunk_article(a)[1]]
    queries = [
        tokenize(q)
        for q in (
            "How many houses have been destroyed?",
            "ceasefire Moscow talks",
            "Su-25 jet shot down",
            "bread recipe",
            "Ganja Ganja attack",  # repeated term counts twice, as in rank-bm25
        )
    ]
    assert_parity(docs, queries)


def test_bm25_matrix_matches_rank_bm25_on_generated_corpus():
    rng = np.random.default_rng(7)
    vocab = [f"w{i}" for i in range(400)]
    weights = 1.0 / np.arange(1, 401)  # Zipf-like, so some terms get the idf floor
    weights /= weights.sum()
    docs = [list(rng.choice(vocab, size=int(rng.integers(3, 60)), p=weights)) for _ in range(1000)]
    queries = [list(rng.choice(vocab, size=int(rng.integers(1, 6)))) for _ in range(50)]
    assert_parity(docs, queries + [["unknown"], ["w0", "w0", "w1"]])


def test_empty_corpus_and_unknown_terms_score_zero():
    assert BM25Index.fit([]).scores(["x"]).shape == (0,)
    index = BM25Index.fit([["a", "b"], ["b", "c"]])
    assert index.scores(["zzz"]).tolist() == [0.0, 0.0]
