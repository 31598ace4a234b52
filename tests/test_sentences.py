import numpy as np

from karabakh_qa.records import Passage
from karabakh_qa.sentences import passage_sentences
from karabakh_qa.service import SearchService
from karabakh_qa.sparse import tokenize

from .conftest import make_settings, write


def passage(pid: str, text: str) -> Passage:
    return Passage(pid, "a.txt", 1, 1, None, 0, len(text), text, None, None, None, pid)


def test_sentence_spans():
    texts = ["Rain fell on Monday. The bridge collapsed in the flood.", "Markets rallied."]
    spans = [passage_sentences(passage(f"p{i}", t)) for i, t in enumerate(texts)]
    assert spans == [[(0, 20), (21, 55)], [(0, 16)]]


def test_best_sentence_features_and_marked_span(tmp_path, embedder):
    settings = make_settings(tmp_path)
    text = "Rain fell on Monday. The bridge collapsed in the flood.\n\nMarkets rallied.\n\nSnow covered the hills.\n"
    write(settings.articles_dir, "a.txt", text)
    service = SearchService(settings, embedder)
    service.build()
    snap = service.index()
    rows = np.array([0, 1])
    q = snap.bm25.query(tokenize("bridge flood"))
    qidf = np.maximum(q.idf, 0)
    qvec = embedder.encode(["bridge flood"])[0]
    feats = snap.sentence_features(rows, qvec, q.terms, qidf, float(qidf.sum()))
    assert feats.coverage.tolist() == [1.0, 0.0]  # sentence 2 of passage 1 holds every term
    assert feats.best.tolist() == [1, 0]
    assert feats.cosine[0] > feats.cosine[1]
    assert snap.sentence_span(0, 1) == [21, 55] and snap.sentence_span(1, 0) == [0, 16]
    assert snap.segments[0].a["sent_codes"].dtype == np.uint8  # 8-bit sentence vectors
