"""Gradient-boosted trees read from JSON arrays (answer/forest.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from karabakh_qa.answer.extract import DEFAULT_MODEL as SPAN_MODEL
from karabakh_qa.answer.extract import FEATURES as SPAN_FEATURES
from karabakh_qa.answer.forest import Forest, load_scorer
from karabakh_qa.answer.rank import DEFAULT_MODEL as RANK_MODEL
from karabakh_qa.answer.rank import FEATURES as RANK_FEATURES
from karabakh_qa.answer.rank import Ranker
from karabakh_qa.errors import IndexUnavailable

FEATURES = ("a", "b")
# tree 1: a <= 0.5 ? (b <= 2 ? 1.0 : 2.0) : 3.0      tree 2: b <= 1 ? -0.5 : 0.25
TREES = {
    "kind": "forest",
    "features": list(FEATURES),
    "about": "two trees",
    "roots": [0, 5],
    "feature": [0, 1, -1, -1, -1, 1, -1, -1],
    "threshold": [0.5, 2.0, 0, 0, 0, 1.0, 0, 0],
    "left": [1, 2, -1, -1, -1, 6, -1, -1],
    "right": [4, 3, -1, -1, -1, 7, -1, -1],
    "value": [0, 0, 1.0, 2.0, 3.0, 0, -0.5, 0.25],
}


def write(tmp_path, data, name="model.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_each_row_sums_its_leaves_and_a_value_on_the_threshold_goes_left(tmp_path):
    forest = load_scorer(write(tmp_path, TREES), FEATURES)
    x = np.array([[0.5, 2.0], [0.4, 3.0], [0.6, 0.0], [0.6, 1.5]])
    assert forest.score(x).tolist() == [1.0 + 0.25, 2.0 + 0.25, 3.0 - 0.5, 3.0 + 0.25]
    assert forest.score(np.zeros((0, 2))).tolist() == []


def test_its_json_reads_back_to_the_same_scores(tmp_path):
    forest = load_scorer(write(tmp_path, TREES), FEATURES)
    assert isinstance(forest, Forest)
    again = load_scorer(write(tmp_path, json.loads(forest.to_json()), "again.json"), FEATURES)
    x = np.random.default_rng(0).uniform(-1, 4, size=(50, 2))
    assert np.array_equal(again.score(x), forest.score(x)) and again.about == "two trees"


@pytest.mark.parametrize(
    "change,message",
    [
        ({"features": ["a", "c"]}, "features"),
        ({"left": [1, 0, -1, -1, -1, 6, -1, -1]}, "not after its parent"),  # a loop
        ({"right": [4, 3, -1, -1, -1, 9, -1, -1]}, "not after its parent"),  # off the end
        ({"roots": [0, 8]}, "out of range"),
        ({"feature": [0, 2, -1, -1, -1, 1, -1, -1]}, "out of range"),
        ({"value": [0, 0, 1.0, 2.0, 3.0]}, "different lengths"),
        ({"threshold": [0.5, float("nan"), 0, 0, 0, 1.0, 0, 0]}, "not finite"),
        ({"roots": None}, "unusable"),
        ({"sentence_weight": float("inf")}, "sentence weight that is not finite"),
        ({"sentence_weight": "heavy"}, "unusable"),
    ],
)
def test_a_file_that_does_not_describe_trees_is_refused(tmp_path, change, message):
    data = {**TREES, **change}
    with pytest.raises(IndexUnavailable, match=message):
        load_scorer(write(tmp_path, data), FEATURES)


def test_a_logistic_regression_file_loads_as_before():
    model = load_scorer(RANK_MODEL, RANK_FEATURES)
    assert isinstance(model, Ranker) and model.features == RANK_FEATURES
    assert model.sentence_weight == 0.0  # as a span model: a sentence's phrase alone


def test_a_forest_file_without_a_sentence_weight_loads_with_none(tmp_path):
    assert load_scorer(write(tmp_path, TREES), FEATURES).sentence_weight == 0.0
    with_weight = load_scorer(write(tmp_path, {**TREES, "sentence_weight": 2.5}), FEATURES)
    assert with_weight.sentence_weight == 2.5


def test_the_shipped_span_model_is_a_forest_over_the_span_features():
    model = load_scorer(SPAN_MODEL, SPAN_FEATURES)
    assert isinstance(model, Forest) and "LightGBM" in model.about
    assert (
        len(model.roots) == 200
        and model.sentence_weight == 8.0
        and model.score(np.zeros((1, len(SPAN_FEATURES)))).shape == (1,)
    )
