"""The sign-bit ANN: which segments use it, what it returns, and that it never
scores a passage differently from exact search."""

import numpy as np
import pytest

from karabakh_qa.config import Settings
from karabakh_qa.errors import BadRequest
from karabakh_qa.store.embedded import ann, vectors


@pytest.fixture
def segment_vectors(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((400, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x *= 4  # spread over the code range, so that codes differ in many signs
    codes = vectors.encode(x, vectors.DEFAULT_CODEC)
    path = tmp_path / "vectors.faiss"
    vectors.write_index(path, codes, 384, vectors.DEFAULT_CODEC)
    return vectors.SegmentVectors(path, 400, 384, vectors.DEFAULT_CODEC), x


def test_which_segments_use_the_ann():
    assert not ann.uses_ann("exact", 10**7)
    assert ann.uses_ann("ann", 10)
    assert ann.uses_ann("auto", ann.ANN_MIN_ROWS) and not ann.uses_ann("auto", ann.ANN_MIN_ROWS - 1)
    assert ann.rescore_depth(400, 10) == 400  # small: every row is rescored
    assert ann.rescore_depth(10**6, 10) == 10_000  # 1 % of a large segment
    assert ann.rescore_depth(50_000, 200) == 2_000  # 10 x k


def test_a_bad_dense_mode_is_refused():
    with pytest.raises(BadRequest, match="dense must be one of exact, ann, auto, not 'fast'"):
        Settings(dense="fast")


def test_ann_returns_exact_scores_of_the_rows_its_bits_rank_first(segment_vectors, monkeypatch):
    seg, x = segment_vectors
    monkeypatch.setattr(ann, "RESCORE_MIN", 50)  # rescore 50 of 400 rows
    q = x[17] / np.linalg.norm(x[17])
    assert seg.signs.ready(wait=True)
    scores, rows = seg.search(q, 5, mode="ann")
    assert rows[np.argmax(scores)] == 17  # its own sign pattern scores best
    assert np.allclose(scores, seg.scores_for(q, rows))  # exactly the exact cosines
    exact_scores, exact_rows = seg.search(q, 5, mode="exact")
    assert set(rows.tolist()) <= set(range(400)) and len(rows) == 5
    assert int(exact_rows[np.argmax(exact_scores)]) == 17
    deleted = np.array([17])
    _, rows_d = seg.search(q, 5, deleted=deleted, mode="ann")
    assert 17 not in rows_d.tolist() and len(rows_d) == 5


def test_auto_mode_searches_exactly_until_the_bits_are_built(segment_vectors, monkeypatch):
    seg, x = segment_vectors
    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 100)
    calls = []
    monkeypatch.setattr(seg, "_search_ann", lambda *a: calls.append(a) or (None, None))
    monkeypatch.setattr(seg.signs, "ready", lambda wait: False)  # still building
    seg.search(x[0], 5, mode="auto")
    assert calls == []  # exact search answered
    monkeypatch.setattr(seg.signs, "ready", lambda wait: True)
    seg.search(x[0], 5, mode="auto")
    assert len(calls) == 1


def test_the_embedded_snapshot_implements_the_store_seam(seed_service):
    from karabakh_qa.store.protocol import StoreView

    snap = seed_service.index()
    assert isinstance(snap, StoreView)
    assert callable(snap.bm25.query) and callable(snap.groups.reps_of)


def test_a_failed_ann_build_leaves_exact_search_and_says_so(segment_vectors, caplog):
    seg, x = segment_vectors

    def broken(codes):
        raise MemoryError("no room")

    seg.signs = ann.SignIndex(seg.codes, broken)
    assert seg.signs.ready(wait=True) is False
    assert "could not be built" in caplog.text
    got = seg.search(x[3], 5, mode="ann")
    want = seg.search(x[3], 5, mode="exact")
    assert got[1].tolist() == want[1].tolist()


def test_opening_an_index_starts_the_ann_bits_of_large_segments(
    seed_settings, embedder, monkeypatch
):
    from karabakh_qa.service import SearchService

    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 50)  # the seeds' one segment has 86 rows
    service = SearchService(seed_settings, embedder)
    service.build()
    fresh = SearchService(seed_settings, embedder)
    (seg,) = fresh.index().segments
    assert seg.vectors.signs._thread is not None  # building before any question
    assert seg.vectors.signs.ready(wait=True)
    exact = SearchService(seed_settings.replace(dense="exact"), embedder)
    (seg,) = exact.index().segments
    assert seg.vectors.signs._thread is None  # "exact" never builds them
