"""Gradient-boosted trees as plain arrays: the answer-span model's scorer.

``benchmarks/train_spans.py`` trains LightGBM (lambdarank) on the SQuAD tuning
part and writes its trees to JSON in this module's layout: every node of every
tree in one set of arrays (``feature`` -1 marks a leaf and its ``value``), each
tree's ``roots`` index, children always after their parent. Scoring walks them
in a compiled loop (``store/embedded/kernels.py: forest_scores``) with LightGBM's
rule (left when the value is at most the threshold), so neither LightGBM nor a
pickle is needed at run time, and the script checks on writing that the scores
equal LightGBM's own. A logistic regression file (:class:`.rank.Ranker`) loads as
before: :func:`load_scorer` tells them apart by the file's ``kind``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import IndexUnavailable
from ..store.embedded import kernels
from .rank import Ranker

INDEXES = ("roots", "feature", "left", "right")  # the JSON's integer arrays
VALUES = ("threshold", "value")  # its float arrays


class Scorer(Protocol):
    """What a learned model offers the answer stages: a score per feature row."""

    @property
    def features(self) -> tuple[str, ...]: ...

    @property
    def about(self) -> str: ...

    @property
    def sentence_weight(self) -> float:
        """What a sentence's cosine + coverage adds to its best phrase's score when
        an answer's sentence is chosen (answer/extract.py: answer_in)."""
        ...

    def score(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Forest:
    """Trees over named features; :meth:`score` is their sum for each row."""

    roots: np.ndarray  # int64, one per tree
    feature: np.ndarray  # int64 per node: the feature split on, -1 at a leaf
    threshold: np.ndarray  # float64 per node
    left: np.ndarray  # int64 per node: the child when x[feature] <= threshold
    right: np.ndarray  # int64 per node
    value: np.ndarray  # float64 per node: a leaf's output
    features: tuple[str, ...]
    about: str = ""
    sentence_weight: float = 0.0  # see Scorer

    def score(self, x: np.ndarray) -> np.ndarray:
        """The forest's raw score for each row of ``x`` (rows x features)."""
        rows = np.ascontiguousarray(np.asarray(x, np.float64).reshape(-1, len(self.features)))
        out: np.ndarray = kernels.forest_scores(
            rows, self.roots, self.feature, self.threshold, self.left, self.right, self.value
        )
        return out

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": "forest",
                "features": list(self.features),
                "about": self.about,
                "sentence_weight": self.sentence_weight,
                **{name: getattr(self, name).tolist() for name in (*INDEXES, *VALUES)},
            },
            separators=(",", ":"),
        )

    @classmethod
    def of(cls, data: dict[str, Any], features: tuple[str, ...]) -> Forest:
        """A forest from its JSON fields; ValueError when they do not describe trees over
        ``features`` (a walk that could leave the arrays or never reach a leaf)."""
        if tuple(data["features"]) != features:
            raise ValueError(f"features {data['features']} are not {list(features)}")
        roots, feature, left, right = (np.asarray(data[k], np.int64).ravel() for k in INDEXES)
        threshold, value = (np.asarray(data[k], np.float64).ravel() for k in VALUES)
        n = len(feature)
        if not all(len(a) == n for a in (threshold, left, right, value)):
            raise ValueError("node arrays of different lengths")
        split = np.flatnonzero(feature >= 0)
        node = np.arange(n)
        if ((roots < 0) | (roots >= n)).any() or (feature >= len(features)).any():
            raise ValueError("a root or a feature out of range")
        for child in (left, right):  # children after their parent: every walk ends
            if ((child[split] <= node[split]) | (child[split] >= n)).any():
                raise ValueError("a child that is not after its parent")
        if not (np.isfinite(threshold[split]).all() and np.isfinite(value).all()):
            raise ValueError("a threshold or value that is not finite")
        weight = float(data.get("sentence_weight", 0.0))
        if not np.isfinite(weight):
            raise ValueError("a sentence weight that is not finite")
        about = str(data["about"])
        return cls(roots, feature, threshold, left, right, value, features, about, weight)


def load_scorer(path: Path, features: tuple[str, ...]) -> Scorer:
    """The model in ``path``: a forest, or a logistic regression (:class:`Ranker`);
    an unusable file, or one over other features, is IndexUnavailable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("kind") == "forest":
            return Forest.of(data, features)
        return Ranker.of(data, features)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexUnavailable(f"model {path} is unusable: {exc}") from None
