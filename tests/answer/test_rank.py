"""The learned second phase: training, its JSON file, and the order it gives."""

import numpy as np
import pytest

from karabakh_qa.answer.rank import FEATURES, Ranker, reorder, train
from karabakh_qa.answer.retrieve import retrieve
from karabakh_qa.errors import IndexUnavailable
from karabakh_qa.sparse import tokenize


def test_training_finds_the_feature_that_separates(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, len(FEATURES)))
    y = (x[:, 2] + 0.1 * rng.normal(size=400) > 0).astype(float)
    w, b, mean, scale = train(x, y, l2=1.0)
    assert np.argmax(np.abs(w)) == 2 and w[2] > 0
    model = Ranker(w, b, mean, scale, about="test")
    path = tmp_path / "ranker.json"
    path.write_text(model.to_json())
    again = Ranker.load(path)
    assert np.allclose(again.score(x), model.score(x), atol=1e-4)


def test_a_model_for_other_features_is_refused(tmp_path):
    path = tmp_path / "ranker.json"
    path.write_text('{"features": ["bm25"], "weights": [1], "bias": 0, "mean": [0], "scale": [1]}')
    with pytest.raises(IndexUnavailable, match="ranker model .* is unusable"):
        Ranker.load(path)


def test_reorder_ranks_the_top_by_the_model_and_keeps_the_rest(seed_service):
    index = seed_service.index()
    question = "How many houses have been destroyed?"
    qvec = seed_service.embedder.encode([question])[0]
    cands = retrieve(index, tokenize(question), qvec, 20)
    fused = cands.fused("zscore", (1, 1, 2, 0.6))
    first = cands.order(fused)
    n = len(FEATURES)
    # A model that only looks at the first phase keeps its order ...
    keep = Ranker(np.eye(n)[0], 0.0, np.zeros(n), np.ones(n), top=5)
    assert reorder(index, cands, fused, question, keep)[0].tolist() == first.tolist()
    # ... one that prefers the lowest fused score reverses the top 5, and only it.
    flip = Ranker(-np.eye(n)[0], 0.0, np.zeros(n), np.ones(n), top=5)
    got, _spans = reorder(index, cands, fused, question, flip)
    assert got[:5].tolist() == first[:5][::-1].tolist() and got[5:].tolist() == first[5:].tolist()
