import numpy as np
import pytest

from karabakh_qa.fuse import fuse, normalise, ranks_of


def test_normalisations():
    ref = np.array([1.0, 2.0, 3.0])
    assert normalise(np.array([3.0]), ref, "minmax").tolist() == [1.0]
    assert normalise(np.array([2.0]), ref, "zscore").tolist() == [0.0]
    assert normalise(np.array([5.0]), np.array([5.0, 5.0]), "zscore").tolist() == [0.0]


def test_ranks_of():
    assert ranks_of(np.array([7, 3, 9]), np.array([3, 9])).tolist() == [0, 1, 2]


def hand_made():
    # Sparse ranks 10 > 11 > 12; dense ranks 12 > 13 > 10.
    cands = np.array([10, 11, 12, 13])
    sparse = np.array([9.0, 5.0, 4.0, 0.0])
    dense = np.array([0.25, 0.0, 0.75, 0.625])
    s_top, d_top = np.array([9.0, 5.0, 4.0]), np.array([0.75, 0.625, 0.25])
    sr, dr = np.array([1, 2, 3, 0]), np.array([3, 0, 1, 2])
    return cands, sparse, dense, s_top, d_top, sr, dr


@pytest.mark.parametrize(
    "method,weight,expected",
    [
        ("zscore", 0.0, [10, 11, 12, 13]),
        ("zscore", 1.0, [12, 13, 10, 11]),
        ("zscore", 0.5, [12, 10, 13, 11]),
        ("minmax", 0.5, [10, 12, 13, 11]),  # 10 and 12 tie at 0.5: lower row first
        ("rrf", 0.5, [10, 12, 11, 13]),  # 1/61+1/63 twice, then 1/62 twice
    ],
)
def test_fusion_orders_hand_made_rankings(method, weight, expected):
    cands, *rest = hand_made()
    scores = fuse(cands, *rest, method=method, dense_weight=weight, rrf_k=60)
    assert cands[np.lexsort((cands, -scores))].tolist() == expected


def test_unknown_fusion_is_rejected():
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse(*hand_made(), method="max")
