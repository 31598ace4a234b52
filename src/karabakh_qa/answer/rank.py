"""Second-phase ranking: the first phase's best candidates re-scored by a small
learned model over answer-bearing features.

As in Vespa's phased ranking, the features that need a passage's text (its
answer span, its title, its place in the article) are computed for the
``TOP`` best candidates of the fixed-weight fusion only. A logistic
regression (weights, means and scales in a JSON file, no pickle) then orders
those; the others keep their first-phase order below them. It is trained on
the SQuAD tuning part and SciFact train only (``benchmarks/train_ranker.py``).
``Settings.ranker`` "fixed" keeps the fixed-weight fusion alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexUnavailable
from ..sparse import tokenize
from ..store.protocol import StoreView
from .retrieve import Candidates
from .spans import Span, answer_type, best_span, matches

TOP = 10
FEATURES = ("fused", "span", "type_match", "title", "lede", "bm25", "dense", "sentence", "coverage")
DEFAULT_MODEL = Path(__file__).with_name("ranker.json")


@dataclass(frozen=True)
class Ranker:
    """A logistic regression over named features (standardised): the second phase's
    over :data:`FEATURES` (and, in older files, the answer span's over
    ``extract.FEATURES``: :func:`.forest.load_scorer` reads both kinds)."""

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    top: int = TOP
    about: str = ""
    features: tuple[str, ...] = FEATURES

    @property
    def sentence_weight(self) -> float:
        """0: as an answer-span model, a sentence's best phrase alone chooses it."""
        return 0.0

    def score(self, x: np.ndarray) -> np.ndarray:
        """The model's logit for each row of ``x`` (candidates x FEATURES)."""
        logit: np.ndarray = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return logit

    def to_json(self) -> str:
        return json.dumps(
            {
                "features": list(self.features),
                "weights": self.weights.round(6).tolist(),
                "bias": round(float(self.bias), 6),
                "mean": self.mean.round(6).tolist(),
                "scale": self.scale.round(6).tolist(),
                "top": self.top,
                "about": self.about,
            },
            indent=1,
        )

    @classmethod
    def load(cls, path: Path, features: tuple[str, ...] = FEATURES) -> Ranker:
        """A model file over ``features``; one for other features, or unreadable, is
        IndexUnavailable."""
        try:
            return cls.of(json.loads(path.read_text(encoding="utf-8")), features)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexUnavailable(f"ranker model {path} is unusable: {exc}") from None

    @classmethod
    def of(cls, data: dict[str, Any], features: tuple[str, ...] = FEATURES) -> Ranker:
        """A model from its JSON fields; ValueError (or KeyError, TypeError) when they
        are not a regression over ``features``."""
        if tuple(data["features"]) != features:
            raise ValueError(f"features {data['features']} are not {list(features)}")
        return cls(
            np.array(data["weights"], float),
            float(data["bias"]),
            np.array(data["mean"], float),
            np.array(data["scale"], float),
            int(data.get("top", TOP)),
            str(data.get("about", "")),
            features,
        )


def phase_two(
    index: StoreView, cands: Candidates, fused: np.ndarray, question: str, top: int = TOP
) -> tuple[np.ndarray, np.ndarray, dict[int, Span | None]]:
    """(positions of the first phase's ``top`` candidates, best first; their features
    as a (top, len(FEATURES)) array; the answer span found for each, by position)."""
    order = cands.order(fused)[:top]
    kind = answer_type(question)
    qterms = set(tokenize(question))
    rows = []
    spans: dict[int, Span | None] = {}
    first = fused[order]
    spread = float(first.std()) or 1.0
    for n, i in enumerate(order.tolist()):
        row = int(cands.rows[i])
        passage = index.passage(row)
        s, e = index.sentence_span(row, int(cands.best_sentence[i]))
        span = spans[i] = best_span(passage.text, kind, qterms, (s, e))
        title = set(tokenize(passage.title or ""))
        rows.append(
            [
                (first[n] - float(first.mean())) / spread,
                span.score if span else 0.0,
                matches(kind, span.type) if span else 0.0,
                len(qterms & title) / max(1, len(qterms)),
                1.0 if passage.paragraph <= 1 else 0.0,
                *cands.features[:, i].tolist(),
            ]
        )
    return order, np.array(rows, float).reshape(len(order), len(FEATURES)), spans


def reorder(
    index: StoreView, cands: Candidates, fused: np.ndarray, question: str, ranker: Ranker
) -> tuple[np.ndarray, dict[int, Span | None]]:
    """Every candidate position, best first (the top by ``ranker``, then the rest), and
    the answer spans the second phase found, by position (the hits reuse them)."""
    order, x, spans = phase_two(index, cands, fused, question, ranker.top)
    full = cands.order(fused)
    if not len(order):
        return full, spans
    logit = ranker.score(x)
    top = order[np.lexsort((cands.ids[order], -logit))]
    return np.concatenate([top, full[len(order) :]]), spans


def train(
    x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Logistic regression by Newton's method with an L2 penalty: (weights, bias, mean,
    scale) on standardised features."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        grad = z.T @ (p - y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1]), mean, scale
