"""Can a 2- or 3-layer student of all-MiniLM-L6-v2 stand in for it on sentence vectors?

The index embeds every passage and every sentence of every passage (as
``f"{title}\\n{sentence}"``) with the packaged all-MiniLM-L6-v2 (6 layers, 384-d,
mean pooling over the attention mask, L2-normalised). Sentences are ~3/4 of the
texts a build embeds, so a cheaper sentence encoder would speed indexing. This
study distils students from the same packaged weights and measures, against the
full model (the teacher):

* training: a student keeps some of the teacher's layers (``--students``, e.g.
  ``0,5`` or ``1,4`` for 2 layers, ``0,2,4`` or ``1,3,5`` for 3; embeddings copied,
  as DistilBERT did) and is trained to the teacher's normalised mean-pooled
  vectors (no labels; loss ``1 - cosine``, or ``--loss mse``) of the sentences of
  the BEIR SciFact corpus ONLY (``../shared/benchmarks/scifact/corpus.jsonl``,
  title + sentence, split by ``karabakh_qa.chunk.sentences``). AdamW, linear
  warm-up and decay, batches of length-sorted texts (buckets, shuffled each
  epoch), max_length 128, fixed seeds. Teacher targets are cached in ``--cache``
  (default ``/tmp/student``), as are the trained students.
* evaluation: SQuAD v1.1 dev, tuning part only (articles ``a % 4 == 0``); never
  trained on. For each question of a paragraph with >= 2 sentences the gold
  sentences are those holding an answer's start offset; "choice" is the share of
  questions whose argmax over the paragraph's sentences picks a gold one, with
  (a) cosine alone, (b) cosine + idf coverage (what production marks with):
  coverage = idf of the question's terms (``karabakh_qa.sparse.tokenize``, distinct)
  present in the sentence / idf of all of them, idf = log(1 + (N - df + 0.5) /
  (df + 0.5)) over all SQuAD dev paragraphs. Question vectors always come from
  the teacher (production embeds questions with the full model); sentence
  vectors from the model under test, max_length 256 (the index's window).
  Also: mean and 5th percentile of the cosine between student and teacher
  vectors of the tune sentences.
* speed: encode throughput (sentences/s, torch fp32, 2 threads, batch 64,
  length-sorted, tokenisation included, best of ``--speed-runs``) of the teacher
  and each student on 3,000 SQuAD tune sentences, in the same run.

Run (about 10 min per student-epoch on 2 cores, plus ~6 min of teacher targets
the first time):

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/study_student.py \\
        --students "0,2,4;0,5" --epochs 2 --lr 1e-4

``--eval-only`` re-evaluates students already saved in the cache. Prints one
table (and writes it as JSON to ``<cache>/results.json``); figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "benchmarks"
SCIFACT = SHARED / "scifact" / "corpus.jsonl"
SQUAD = SHARED / "squad" / "dev-v1.1.json"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(ROOT / "src"))


def log(*args: object) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


# --- data ------------------------------------------------------------------------


def scifact_sentences(path: Path) -> list[str]:
    """Every sentence of the SciFact corpus as the index embeds it: title, newline, text."""
    from karabakh_qa.chunk import sentences

    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            title, text = doc.get("title", "").strip(), doc.get("text", "")
            for s, e in sentences(text):
                out.append(f"{title}\n{text[s:e]}" if title else text[s:e])
    return out


def squad_tune(path: Path) -> dict:
    """The SQuAD dev tuning part: its sentences (embedded texts), per question the
    sentence range of its paragraph, the gold sentences and the coverage of each."""
    from karabakh_qa.chunk import sentences
    from karabakh_qa.sparse import tokenize

    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    df: dict[str, int] = {}
    n = 0
    for article in data:
        for para in article["paragraphs"]:
            n += 1
            for t in set(tokenize(para["context"])):
                df[t] = df.get(t, 0) + 1

    def idf(t: str) -> float:
        d = df.get(t, 0)
        return math.log(1.0 + (n - d + 0.5) / (d + 0.5))

    texts: list[str] = []
    questions: list[str] = []
    bounds: list[tuple[int, int]] = []  # per question: its paragraph's sentence rows
    gold: list[np.ndarray] = []  # per question: bool per sentence of the paragraph
    cover: list[np.ndarray] = []  # per question: idf coverage per sentence
    for a, article in enumerate(data):
        if a % 4:  # the report part: never read
            continue
        title = article["title"].replace("_", " ")
        for para in article["paragraphs"]:
            ctx = para["context"]
            spans = sentences(ctx)
            if len(spans) < 2:
                continue
            lo = len(texts)
            texts.extend(f"{title}\n{ctx[s:e]}" for s, e in spans)
            sent_terms = [set(tokenize(ctx[s:e])) for s, e in spans]
            for qa in para["qas"]:
                starts = [x["answer_start"] for x in qa["answers"]]
                g = np.array([any(s <= at < e for at in starts) for s, e in spans])
                terms = set(tokenize(qa["question"]))
                weights = {t: idf(t) for t in terms}
                total = sum(weights.values())
                c = np.array(
                    [
                        sum(w for t, w in weights.items() if t in st) / total if total else 0.0
                        for st in sent_terms
                    ]
                )
                questions.append(qa["question"])
                bounds.append((lo, len(texts)))
                gold.append(g)
                cover.append(c)
    return {"texts": texts, "questions": questions, "bounds": bounds, "gold": gold, "cover": cover}


# --- models ----------------------------------------------------------------------


def load_teacher():
    from transformers import AutoModel, AutoTokenizer

    from karabakh_qa.embed.models import model_path

    path = model_path(MODEL)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.eval()
    return tok, model


def make_student(teacher, keep: list[int]):
    """The teacher's embeddings and layers ``keep`` (in order), DistilBERT-style."""
    import torch

    student = copy.deepcopy(teacher)
    student.encoder.layer = torch.nn.ModuleList(
        [copy.deepcopy(teacher.encoder.layer[i]) for i in keep]
    )
    student.config.num_hidden_layers = len(keep)
    return student


def pooled(model, batch):
    """Normalised mean of the last hidden states over the attention mask."""
    import torch

    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    mask = batch["attention_mask"].unsqueeze(-1).to(out.last_hidden_state.dtype)
    mean = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean, dim=-1)


def encode(tok, model, texts: list[str], batch: int = 64, max_length: int = 256) -> np.ndarray:
    """Sentence vectors of ``texts`` (length-sorted batches, original order back),
    batched as the index's backends batch them (embed/backends.py: _feeds)."""
    import torch

    from karabakh_qa.embed.backends import _feeds

    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for at, feeds in _feeds(tok, texts, max_length, batch):
            out[at] = pooled(model, {k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
    return out


def cached(cache: Path, name: str, texts: list[str], make) -> np.ndarray:
    """Teacher vectors of ``texts``, computed once and kept in ``cache``."""
    digest = hashlib.sha1("\x00".join(texts).encode()).hexdigest()[:12]
    path = cache / f"{name}-{digest}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    vecs = make(texts)
    np.save(path, vecs)
    log(f"{name}: {len(texts)} teacher vectors in {time.perf_counter() - t0:.0f} s")
    return vecs


def throughput(tok, model, texts: list[str]) -> float:
    """Sentences/s of one encode() of ``texts`` (tokenisation included)."""
    t0 = time.perf_counter()
    encode(tok, model, texts)
    return len(texts) / (time.perf_counter() - t0)


# --- training --------------------------------------------------------------------


def train(student, tok, texts: list[str], targets: np.ndarray, args) -> tuple[float, list]:
    """Distil: the student's normalised mean-pooled vector to the teacher's."""
    import torch

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    enc = tok(texts, truncation=True, max_length=args.max_length)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(enc[i]))
    batches = [order[lo : lo + args.batch] for lo in range(0, len(order), args.batch)]
    steps = len(batches) * args.epochs
    warm = max(1, int(0.05 * steps))
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    target = torch.from_numpy(targets)
    student.train()
    if not args.dropout:
        for m in student.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    history, step, t0 = [], 0, time.perf_counter()
    for epoch in range(args.epochs):
        random.shuffle(batches)
        running, seen = 0.0, 0
        for idx in batches:
            width = max(len(enc[i]) for i in idx)
            ids = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : len(enc[i])] = torch.tensor(enc[i])
                mask[r, : len(enc[i])] = 1
            v = pooled(student, {"input_ids": ids, "attention_mask": mask})
            t = target[idx]
            if args.loss == "mse":
                loss = ((v - t) ** 2).sum(1).mean()
            else:
                loss = (1.0 - (v * t).sum(1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            running += float(loss.detach()) * len(idx)
            seen += len(idx)
            if step % 100 == 0:
                log(f"  step {step}/{steps} loss {running / seen:.4f}")
        history.append(round(running / seen, 5))
        log(f"  epoch {epoch + 1}: mean loss {history[-1]:.4f}")
    student.eval()
    for m in student.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return time.perf_counter() - t0, history


# --- evaluation ------------------------------------------------------------------


def choice(tune: dict, sent: np.ndarray, qvec: np.ndarray) -> tuple[float, float]:
    """Share of questions whose argmax sentence is gold: (a) cosine, (b) cosine + coverage."""
    a = b = 0
    for q, (lo, hi) in enumerate(tune["bounds"]):
        cos = sent[lo:hi] @ qvec[q]
        g = tune["gold"][q]
        a += bool(g[int(np.argmax(cos))])
        b += bool(g[int(np.argmax(cos + tune["cover"][q]))])
    n = len(tune["bounds"])
    return a / n, b / n


def row(name, seconds, speed, sent, teacher_sent, tune, qvec, history=None) -> dict:
    cos = (sent * teacher_sent).sum(1)
    a, b = choice(tune, sent, qvec)
    return {
        "variant": name,
        "train_s": None if seconds is None else round(seconds),
        "sent_per_s": round(speed, 1),
        "cos_mean": round(float(cos.mean()), 4),
        "cos_p5": round(float(np.percentile(cos, 5)), 4),
        "choice_a": round(a, 4),
        "choice_b": round(b, 4),
        "loss": history,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--students",
        default="0,2,4;0,5",
        help="teacher layers each student keeps, ';' between students (e.g. '0,5;1,3,5')",
    )
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=128, help="training max_length")
    ap.add_argument("--loss", choices=("cosine", "mse"), default="cosine")
    ap.add_argument("--dropout", action="store_true", help="keep the teacher's dropout (0.1)")
    ap.add_argument("--limit", type=int, default=0, help="train on the first N sentences only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--speed-n", type=int, default=3000)
    ap.add_argument("--speed-runs", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/student"))
    ap.add_argument("--eval-only", action="store_true", help="use students saved in --cache")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.cache.mkdir(parents=True, exist_ok=True)
    tok, teacher = load_teacher()

    tune = squad_tune(SQUAD)
    log(f"SQuAD tune: {len(tune['questions'])} questions, {len(tune['texts'])} sentences")
    teacher_sent = cached(
        args.cache, "squad-sent", tune["texts"], lambda t: encode(tok, teacher, t)
    )
    qvec = cached(args.cache, "squad-q", tune["questions"], lambda t: encode(tok, teacher, t))
    rng = np.random.default_rng(args.seed)
    pool = tune["texts"]
    reps = -(-args.speed_n // len(pool))
    speed_texts = [pool[i % len(pool)] for i in rng.permutation(len(pool) * reps)[: args.speed_n]]

    # (name, model, train seconds, loss history, tune sentence vectors)
    models: list[tuple] = [("teacher (6 layers)", teacher, None, None, teacher_sent)]

    train_texts = targets = None
    for spec in [s for s in args.students.split(";") if s.strip()]:
        keep = [int(x) for x in spec.split(",")]
        tag = (
            f"L{'-'.join(map(str, keep))}_e{args.epochs}_lr{args.lr:g}_b{args.batch}"
            f"_{args.loss}{'_drop' if args.dropout else ''}_n{args.limit or 'all'}_s{args.seed}"
        )
        path = args.cache / f"student-{tag}.pt"
        student = make_student(teacher, keep)
        seconds, history = None, None
        if args.eval_only or path.exists():
            saved = torch.load(path, weights_only=True)
            student.load_state_dict(saved["state"])
            seconds, history = saved["seconds"], saved["history"]
            student.eval()
        else:
            if train_texts is None:
                train_texts = scifact_sentences(SCIFACT)
                if args.limit:
                    train_texts = train_texts[: args.limit]
                log(f"SciFact: {len(train_texts)} training sentences")
                targets = cached(
                    args.cache,
                    f"scifact-t{args.max_length}",
                    train_texts,
                    lambda t: encode(tok, teacher, t, max_length=args.max_length),
                )
            log(f"training {tag}")
            seconds, history = train(student, tok, train_texts, targets, args)
            torch.save(
                {"state": student.state_dict(), "seconds": seconds, "history": history}, path
            )
        sent = encode(tok, student, tune["texts"])
        models.append((f"student {tag}", student, seconds, history, sent))
        log(models[-1][0], "choice (a), (b):", choice(tune, sent, qvec))

    # Throughput last, the models taking turns (round robin, best run of each kept),
    # so that other load on the machine hits them alike.
    speeds = [0.0] * len(models)
    for m in models:
        encode(tok, m[1], speed_texts[:128])  # warm-up
    for _ in range(args.speed_runs):
        for k, m in enumerate(models):
            speeds[k] = max(speeds[k], throughput(tok, m[1], speed_texts))
    results = [
        row(name, seconds, speeds[k], sent, teacher_sent, tune, qvec, history)
        for k, (name, _, seconds, history, sent) in enumerate(models)
    ]

    (args.cache / "results.json").write_text(json.dumps(results, indent=1))
    cols = ("train s", "sent/s", "cos", "cos p5", "(a)", "(b)")
    print(f"{'variant':<44} " + " ".join(f"{c:>7}" for c in cols))
    for r in results:
        train_s = "-" if r["train_s"] is None else str(r["train_s"])
        print(
            f"{r['variant']:<44} {train_s:>7} {r['sent_per_s']:>7.1f} {r['cos_mean']:>7.3f}"
            f" {r['cos_p5']:>7.3f} {r['choice_a']:>7.4f} {r['choice_b']:>7.4f}"
        )


if __name__ == "__main__":
    main()
