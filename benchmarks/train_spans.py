"""Train the answer-span model (answer/extract.py) on the SQuAD tuning part only.

SQuAD v1.1 dev, tuning part (every 4th article's questions, as for the ranker;
the report part is never read here): for each question the sentence of its
paragraph that holds the first gold answer, every candidate phrase of it with its
features; a phrase is positive when its token F1 against a gold answer is >= 0.5.
Prints the share of questions whose best-scored phrase is positive, by two-fold
cross-validation over articles (against the rules' span on the same sentences).

``--model forest`` (the default): LightGBM lambdarank trees (``FOREST``), each
question's phrases one list; written in answer/forest.py's layout after checking
that those arrays score every training phrase exactly as LightGBM does.
``--model logistic``: a logistic regression for each L2 weight tried, the best
by the cross-validation. Either is fitted on the whole tuning part and written as
JSON to ``src/karabakh_qa/answer/spans.json``. LightGBM is needed here only:
``.venv/bin/pip install -e '.[train]'`` (its wheel is on PyPI).

Run: .venv/bin/python benchmarks/train_spans.py [--model forest|logistic] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "benchmarks" / "squad" / "dev-v1.1.json"


def examples(path: Path) -> list[dict]:
    """Per tuning question: its article, features, and each candidate's F1 and the rules'."""
    from karabakh_qa.answer.extract import Sentence, candidates
    from karabakh_qa.answer.spans import answer_type, best_span
    from karabakh_qa.chunk import sentences
    from karabakh_qa.evaluate import token_f1
    from karabakh_qa.sparse import tokenize

    out = []
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    for a, article in enumerate(data):
        if a % 4:  # the report part: never read
            continue
        for para in article["paragraphs"]:
            text = para["context"]
            spans = sentences(text)
            for qa in para["qas"]:
                golds = [x["text"] for x in qa["answers"]]
                at = qa["answers"][0]["answer_start"]
                within = next(((s, e) for s, e in spans if s <= at < e), None)
                if within is None:
                    continue
                question, kind = qa["question"], answer_type(qa["question"])
                rule = best_span(text, kind, set(tokenize(question)), within)
                found = candidates([Sentence(text, within, rule)], question, kind)
                f1 = [
                    max(token_f1(text[s:e], g) for g in golds)
                    for s, e in zip(found.starts.tolist(), found.ends.tolist(), strict=True)
                ]
                rule_f1 = max(token_f1(rule.text, g) for g in golds) if rule else 0.0
                allowed = found.allowed(kind)  # what the service may show
                out.append(
                    {"article": a, "x": found.x, "f1": np.array(f1), "rule": rule_f1, "ok": allowed}
                )
    return out


def stacked(rows: list[dict]) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """The questions that have phrases, their phrases' features stacked, and labels."""
    kept = [r for r in rows if len(r["f1"])]
    x = np.vstack([r["x"] for r in kept])
    y = np.concatenate([r["f1"] >= 0.5 for r in kept]).astype(int)
    return kept, x, y


def fit(rows: list[dict], l2: float):
    from karabakh_qa.answer.rank import train

    _, x, y = stacked(rows)
    return train(x, y.astype(float), l2=l2)


def regression(model) -> Callable[[np.ndarray], np.ndarray]:
    """The scores of :func:`fit`'s model."""
    w, b, mean, scale = model
    return lambda x: ((x - mean) / scale) @ w + b


def share(rows: list[dict], score: Callable[[np.ndarray], np.ndarray]) -> float:
    """The share of ``rows`` whose best-scored phrase, of those the service may show,
    has F1 >= 0.5."""
    good = 0
    for r in rows:
        if len(r["f1"]) and r["ok"].any():
            s = score(r["x"])
            s[~r["ok"]] = -np.inf
            good += r["f1"][int(np.argmax(s))] >= 0.5
    return good / max(1, len(rows))


def cross_validate(rows: list[dict], fold: list[int], fitted) -> float:
    """Two-fold :func:`share` over articles; ``fitted(rows)`` trains and gives its scores."""
    hits = 0.0
    for k in (0, 1):
        score = fitted([r for r, f in zip(rows, fold, strict=True) if f != k])
        held = [r for r, f in zip(rows, fold, strict=True) if f == k]
        hits += share(held, score) * len(held)
    return hits / len(rows)


# LightGBM's settings, chosen by the two-fold cross-validation below on the tuning
# part: 150 trees of 15 leaves 0.5224, 200 0.5228, 100 0.5132; 100 of 31 and 300 of 7
# 0.5193. 150, for the time a question's spans take (~0.4 ms a page at 200 trees).
# With the alignment features (extract.Frame, stop 33), more trees pay: the mean of
# five random two-fold splits of the articles, 150 of 15 leaves 0.5424, 200 of 15
# 0.5468, 250 of 15 0.5512, 200 of 23 0.5545, 250 of 23 0.5541, 300 of 23 0.5534,
# 200 of 31 0.5517, 300 of 31 0.5536: 200 of 23, the cheapest at the plateau.
FOREST = {
    "objective": "lambdarank",
    "n_estimators": 200,
    "num_leaves": 23,
    "learning_rate": 0.05,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "random_state": 0,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


# What a sentence's cosine + coverage adds to its best phrase's score when a passage's
# answer sentence is chosen among its best three (extract.answer_in), on this scale of
# scores: chosen two-fold by article over the tuning part's served passages (study in
# README "Stop 33"): 5 -> 0.511, 8 -> 0.514, 12 -> 0.511, marked sentence only 0.499.
SENTENCE_WEIGHT = 8.0


def fit_forest(rows: list[dict]):
    """LightGBM lambdarank over ``rows``' phrases, a list per question."""
    try:
        import lightgbm
    except ImportError:
        raise SystemExit("LightGBM is missing: .venv/bin/pip install -e '.[train]'") from None
    kept, x, y = stacked(rows)
    model = lightgbm.LGBMRanker(**FOREST)
    model.fit(x, y, group=[len(r["f1"]) for r in kept])
    return model


def raw_scores(model) -> Callable[[np.ndarray], np.ndarray]:
    """The scores of a LightGBM model."""
    return lambda x: model.predict(x, raw_score=True)


def to_forest(booster, features: tuple[str, ...], about: str):
    """LightGBM's trees in answer/forest.py's arrays (each node after its parent)."""
    from karabakh_qa.answer.forest import Forest

    nodes: dict[str, list] = {k: [] for k in ("feature", "threshold", "left", "right", "value")}

    def add(node: dict) -> int:
        i = len(nodes["feature"])
        for key, empty in (("feature", -1), ("threshold", 0.0), ("left", -1), ("right", -1)):
            nodes[key].append(empty)
        nodes["value"].append(float(node.get("leaf_value", 0.0)))
        if "split_index" in node:
            if node["decision_type"] != "<=":
                raise SystemExit(f"a split of kind {node['decision_type']!r}: not supported")
            nodes["feature"][i] = int(node["split_feature"])
            nodes["threshold"][i] = float(node["threshold"])
            nodes["left"][i] = add(node["left_child"])
            nodes["right"][i] = add(node["right_child"])
        return i

    roots = [add(tree["tree_structure"]) for tree in booster.dump_model()["tree_info"]]
    data = {"features": list(features), "about": about, "roots": roots, **nodes}
    data["sentence_weight"] = SENTENCE_WEIGHT
    return Forest.of(data, features)


def write_forest(rows: list[dict], args: argparse.Namespace, rules: float, fold: list[int]) -> None:
    from karabakh_qa.answer.extract import FEATURES

    cv = cross_validate(rows, fold, lambda part: raw_scores(fit_forest(part)))
    print(f"forest: two-fold CV F1>=0.5 {cv:.4f}")
    model = fit_forest(rows)
    about = (
        f"answer-span LightGBM lambdarank ({FOREST['n_estimators']} trees of "
        f"{FOREST['num_leaves']} leaves), SQuAD v1.1 dev tuning part ({len(rows)} questions, "
        f"gold sentences), two-fold CV F1>=0.5 {cv:.4f} (rules {rules:.4f})"
    )
    forest = to_forest(model.booster_, FEATURES, about)
    _, x, _ = stacked(rows)
    gap = float(np.abs(forest.score(x) - model.predict(x, raw_score=True)).max())
    if gap > 1e-9:
        raise SystemExit(f"the arrays score differently from LightGBM (by {gap}): not written")
    args.out.write_text(forest.to_json() + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {about}; equal to LightGBM's scores (max gap {gap:.1e})")


def main() -> None:
    from karabakh_qa.answer.extract import DEFAULT_MODEL, FEATURES
    from karabakh_qa.answer.rank import Ranker

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["forest", "logistic"], default="forest")
    ap.add_argument("--l2", type=float, nargs="*", default=[1.0, 10.0, 100.0])
    ap.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    args = ap.parse_args()
    rows = examples(SQUAD)
    fold = [(r["article"] // 4) % 2 for r in rows]
    rules = np.mean([r["rule"] >= 0.5 for r in rows])
    print(f"{len(rows)} tuning questions; the rules' span F1>=0.5: {rules:.4f}")
    if args.model == "forest":
        write_forest(rows, args, float(rules), fold)
        return
    best = None
    for l2 in args.l2:
        cv = cross_validate(rows, fold, lambda part, l2=l2: regression(fit(part, l2)))
        print(f"l2 {l2}: two-fold CV F1>=0.5 {cv:.4f}")
        if best is None or cv > best[1]:
            best = (l2, cv)
    assert best is not None
    w, b, mean, scale = fit(rows, best[0])
    scale = np.where(scale < 1e-9, 1.0, scale)
    about = (
        f"answer-span logistic regression, SQuAD v1.1 dev tuning part ({len(rows)} questions, "
        f"gold sentences), l2 {best[0]}, two-fold CV F1>=0.5 {best[1]:.4f} (rules {rules:.4f})"
    )
    model = Ranker(w, b, mean, scale, 0, about, FEATURES)
    args.out.write_text(model.to_json() + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {about}")


if __name__ == "__main__":
    main()
