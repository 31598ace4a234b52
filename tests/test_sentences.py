import numpy as np

from karabakh_qa.records import Passage
from karabakh_qa.sentences import SentenceIndex, passage_sentences
from karabakh_qa.sparse import BM25Index, tokenize


def passage(pid: str, text: str) -> Passage:
    return Passage(pid, "a.txt", 1, 1, None, 0, len(text), text, None, None, None, pid)


def test_best_sentence_features_and_marked_span():
    ps = [
        passage("p0", "Rain fell on Monday. The bridge collapsed in the flood."),
        passage("p1", "Markets rallied."),
        passage("p2", "Snow covered the hills."),
    ]
    spans = [passage_sentences(p) for p in ps]
    assert spans == [[(0, 20), (21, 55)], [(0, 16)], [(0, 23)]]
    vectors = np.array([[1, 0], [0.6, 0.8], [0, 1], [0, 1]], dtype=np.float32)  # per sentence
    bm25 = BM25Index.fit([tokenize(p.text) for p in ps])
    index = SentenceIndex.build(ps, spans, vectors, ["k0", "k1", "k2", "k3"], bm25.term_ids)
    assert index.bounds.tolist() == [0, 2, 3, 4]
    terms = tokenize("bridge flood")
    cols, _ = bm25.query_vector(terms)
    idf = bm25.idf[cols]
    cos, cover, best = index.features(np.array([0, 1]), np.array([1.0, 0.0]), cols, idf, idf.sum())
    assert cos.tolist() == [1.0, 0.0]
    assert cover.tolist() == [1.0, 0.0]
    # Sentence 0 has cosine 1.0 and no terms; sentence 1 has 0.6 and every term: 1.6 wins.
    assert best.tolist() == [1, 0]
    assert index.span(0, 1) == [21, 55] and index.span(1, 0) == [0, 16]
    assert index.vectors.dtype == np.float16
