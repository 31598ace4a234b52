"""Stage 1: both retrievers' candidates, scored by every feature."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from karabakh_qa.answer.query import Query
from karabakh_qa.answer.retrieve import allowed_rows, retrieve
from karabakh_qa.sparse import tokenize


def test_candidates_are_both_top_lists_and_representatives_in_id_order(seed_service):
    index = seed_service.index()
    question = "Ganja missile attack"
    qvec = seed_service.embedder.encode([question])[0]
    c = retrieve(index, tokenize(question), qvec, 3, None, "exact")
    assert list(c.ids) == sorted(c.ids)  # every ordering breaks ties by passage id
    assert sorted(c.bm25_rank[c.bm25_rank > 0].tolist()) == [1, 2, 3]
    assert sorted(c.dense_rank[c.dense_rank > 0].tolist()) == [1, 2, 3]
    assert set(c.reps.tolist()) <= set(c.rows.tolist())  # representatives are candidates
    assert c.features.shape == (4, len(c.rows))
    # a candidate neither retriever ranked is there as a group's representative
    unranked = (c.bm25_rank == 0) & (c.dense_rank == 0)
    assert set(c.rows[unranked].tolist()) <= set(c.reps.tolist())


def test_allowed_rows_are_none_without_a_filter(seed_service):
    index = seed_service.index()
    assert allowed_rows(index, Query("q", 5)) is None
    name = index.article_names()[0]
    assert allowed_rows(index, Query("q", 5, (name,))).tolist() == index.article(name)[1]


@pytest.mark.parametrize("allowed", [None, "first article"])
def test_dense_search_in_a_helper_thread_gives_the_same_candidates(seed_service, allowed):
    """A large index runs dense search beside BM25; the candidates are the same."""
    index = seed_service.index()
    rows = None if allowed is None else np.asarray(index.article(index.article_names()[0])[1])
    question = "How many houses have been destroyed in the shelling?"
    qvec = seed_service.embedder.encode([question])[0]
    alone = retrieve(index, tokenize(question), qvec, 20, rows, "exact")
    with ThreadPoolExecutor(1) as pool:
        beside = retrieve(index, tokenize(question), qvec, 20, rows, "exact", pool)
    assert len(alone.rows) > 0
    for field in ("rows", "reps", "ids", "features", "bm25_rank", "dense_rank", "best_sentence"):
        assert np.array_equal(getattr(alone, field), getattr(beside, field)), field


def test_each_candidate_carries_every_sentences_score(seed_service):
    """Cosine + coverage per sentence: the marked sentence has the highest, and no
    sentence beats the best cosine and the best coverage taken together."""
    from karabakh_qa.sentences import passage_sentences

    index = seed_service.index()
    question = "How many houses have been destroyed in the shelling?"
    qvec = seed_service.embedder.encode([question])[0]
    c = retrieve(index, tokenize(question), qvec, 20, None, "exact")
    assert len(c.sentence_scores) == len(c.rows) > 0
    several = 0
    for k, row in enumerate(c.rows.tolist()):
        each = c.sentence_scores[k]
        assert len(each) == len(passage_sentences(index.passage(row)))
        assert each[c.best_sentence[k]] == each.max()  # the first best on ties
        assert each.max() <= c.features[2, k] + c.features[3, k] + 1e-12
        several += len(each) > 1
    assert several > 0
