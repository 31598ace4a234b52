"""Train the second-phase ranker (answer/rank.py) on training data only.

SQuAD v1.1 dev, tuning part (every 4th article's questions; the report part is
never seen) and BEIR SciFact train: each collection indexed as the evaluation
indexes it, every question through ``retrieve`` and the fixed fusion, the top ``--top``
candidates' features from ``phase_two``; a candidate is positive when its
document is relevant. A logistic regression (Newton, L2) is written as JSON to
``src/karabakh_qa/answer/ranker.json``.

Run: .venv/bin/python benchmarks/train_ranker.py [--l2 1.0] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "benchmarks"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def examples(collection, settings, embedder, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from karabakh_qa.answer.rank import phase_two
    from karabakh_qa.answer.retrieve import retrieve
    from karabakh_qa.evaluate import EmbeddingCache
    from karabakh_qa.sparse import tokenize
    from karabakh_qa.store.embedded.build import build_from_articles

    cache = EmbeddingCache(settings.cache_dir / "embeddings", embedder.name)
    known = cache.load()
    xs, ys, used = [], [], 0
    with tempfile.TemporaryDirectory(prefix="karabakh-train-") as tmp:
        index = build_from_articles(
            settings.replace(index_dir=Path(tmp)), embedder, collection.docs, known
        )
        qids = sorted(collection.qrels)
        texts = [collection.queries[q] for q in qids]
        qvecs = embedder.encode(texts, batch_size=64)
        for qid, text, qvec in zip(qids, texts, qvecs, strict=True):
            cands = retrieve(index, tokenize(text), qvec, settings.depth, dense=settings.dense)
            fused = cands.fused(settings.fusion, settings.fusion_weights, settings.rrf_k)
            order, x, _spans = phase_two(index, cands, fused, text, top)
            relevant = collection.qrels[qid]
            y = np.array(
                [relevant.get(index.passage(int(cands.rows[i])).source, 0) > 0 for i in order]
            )
            if y.any() and not y.all():
                xs.append(x)
                ys.append(y.astype(float))
                used += 1
    groups = np.repeat(np.arange(len(xs)), [len(x) for x in xs])
    return np.vstack(xs), np.concatenate(ys), groups


def main() -> None:
    from karabakh_qa.answer.rank import DEFAULT_MODEL, FEATURES, TOP, Ranker, train
    from karabakh_qa.config import DEFAULT_MODEL as MODEL
    from karabakh_qa.config import Settings
    from karabakh_qa.embed import load_embedder
    from karabakh_qa.evaluate import load_beir, load_squad

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--l2", type=float, default=100.0)
    parser.add_argument("--top", type=int, default=TOP, help="candidates the second phase reads")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--save", type=Path, help="also save the examples (x, y, groups) here")
    args = parser.parse_args()
    settings = Settings(torch_threads=os.cpu_count() or 1)
    embedder = load_embedder(MODEL, settings.torch_threads)
    parts = []
    for name, collection in (
        ("squad-tune", load_squad(SHARED / "squad" / "dev-v1.1.json", "tune")),
        ("scifact-train", load_beir(SHARED / "scifact", "train")),
    ):
        x, y, groups = examples(collection, settings, embedder, args.top)
        used = len(np.unique(groups))
        print(
            f"{name}: {used} questions, {len(y)} candidates, {int(y.sum())} positive",
            file=sys.stderr,
        )
        parts.append((x, y))
        if args.save:
            np.savez(args.save.with_name(f"{args.save.name}.{name}.npz"), x=x, y=y, groups=groups)
    x = np.vstack([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    w, b, mean, scale = train(x, y, args.l2)
    about = (
        f"Logistic regression over the top {args.top} of the fixed fusion, trained by "
        "benchmarks/train_ranker.py on SQuAD v1.1 dev (tuning part) and SciFact train only"
        f" ({len(y)} candidates, l2 {args.l2})."
    )
    args.out.write_text(
        Ranker(w, b, mean, scale, top=args.top, about=about).to_json() + "\n", encoding="utf-8"
    )
    print(dict(zip(FEATURES, w.round(3).tolist(), strict=True)), round(b, 3))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
