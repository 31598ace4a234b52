import numpy as np
import pytest

from karabakh_qa.answer.fuse import fuse, normalise, ranks_of, rrf


def test_normalisations():
    v = np.array([1.0, 2.0, 3.0])
    assert normalise(v, "minmax").tolist() == [0.0, 0.5, 1.0]
    assert normalise(v, "zscore").tolist() == pytest.approx([-1.224745, 0.0, 1.224745])
    assert normalise(np.array([5.0, 5.0]), "zscore").tolist() == [0.0, 0.0]


def test_ranks_of_and_rrf():
    assert ranks_of(np.array([7, 3, 9]), np.array([3, 9])).tolist() == [0, 1, 2]
    assert rrf([np.array([1, 0]), np.array([2, 1])], k=60).tolist() == [1 / 61 + 1 / 62, 1 / 61]


# Candidates 10..13. bm25 ranks 10 > 11 > 12 > 13; passage cosine 12 > 13 > 10 > 11;
# best-sentence cosine 11 > 10 > 12 = 13; coverage all equal (normalises to 0).
FEATURES = np.array(
    [
        [8.0, 4.0, 2.0, 0.0],
        [0.25, 0.0, 0.75, 0.5],
        [0.5, 0.75, 0.25, 0.25],
        [0.5, 0.5, 0.5, 0.5],
    ]
)
RANKS = [np.array([1, 2, 3, 0]), np.array([3, 0, 1, 2])]


@pytest.mark.parametrize(
    "method,weights,expected",
    [
        ("zscore", (1, 0, 0, 0), [10, 11, 12, 13]),
        ("zscore", (0, 1, 0, 0), [12, 13, 10, 11]),
        ("zscore", (0, 0, 1, 0), [11, 10, 12, 13]),  # 12 and 13 tie: lower row first
        ("zscore", (0, 0, 0, 1), [10, 11, 12, 13]),  # all zero: row order
        ("minmax", (1, 1, 0, 0), [10, 12, 13, 11]),  # 1+1/3, 0.25+1, 0+2/3, 0.5+0
        ("minmax", (1, 1, 1, 0), [10, 11, 12, 13]),  # 1.33+0.5, 0.5+0+1, 1.25+0, 0.67+0
        ("rrf", (0, 0, 0, 0), [10, 12, 11, 13]),  # 1/61+1/63, 1/63+1/61, 1/62, 1/62
    ],
)
def test_fusion_orders_hand_made_rankings(method, weights, expected):
    rows = np.array([10, 11, 12, 13])
    scores = fuse(FEATURES, weights, method, RANKS, rrf_k=60)
    assert rows[np.lexsort((rows, -scores))].tolist() == expected


def test_bad_fusion_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse(FEATURES, (1, 1, 1, 1), "max")
    with pytest.raises(ValueError, match="need 4 weights"):
        fuse(FEATURES, (1, 1), "zscore")
    with pytest.raises(ValueError, match="rrf needs"):
        fuse(FEATURES, (1, 1, 1, 1), "rrf")
