"""Study for the second phase (issue 12): more features, other training data, trees.

Extraction (``--out DIR``) saves, per collection, the top ``--top`` candidates of
the fixed fusion with the second phase's features and those under study
(``EXTRAS``), and whether each holds the answer: SQuAD tuning part and SciFact
train (training), SQuAD's articles whole as news is indexed ("squad-articles")
and cut into paragraphs of two sentences ("squad-news"), the BBC dev set and the
seed dev set (dev; never SQuAD's report part or SciFact test).

Fitting (``--fit DIR``) trains a logistic regression (answer/rank.py: train) on
training collections and prints the dev sets' Hit@1 / Hit@3 / MRR when it reorders
their first ten candidates (offline: no collapse of copies, so the current model
reads 0.740 here against 0.750 served). Stop 32's finding: nothing beat the
shipped model on the BBC dev set; every extra feature, the news-like SQuAD cuts
and LightGBM lambdarank gave Hit@1 0.68-0.76 (README, "Answer-bearing passages").

Run: .venv/bin/python benchmarks/study_ranker.py --out /tmp/study [--top 20]
     .venv/bin/python benchmarks/study_ranker.py --fit /tmp/study \
         [--train squad-tune scifact-train] [--features EXTRA ...] [--l2 100]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "benchmarks"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


EXTRAS = (
    "pos", "art_rank", "art_count", "fused_gap", "dense_gap", "sent_gap", "bm25_rel",
    "pcover", "prox", "holds", "nspans", "length", "cov_gap", "novel", "span_any", "learned",
    "ctx_cover",
)  # fmt: skip


@functools.cache
def shipped_span_model():
    """answer/spans.json, read once (every question's candidates use it)."""
    from karabakh_qa.answer.extract import DEFAULT_MODEL, FEATURES
    from karabakh_qa.answer.forest import load_scorer

    return load_scorer(DEFAULT_MODEL, FEATURES)


def extras(index, cands, fused, order, text, bq, kind):
    """The features under study for the candidates at ``order``."""
    from karabakh_qa.answer.extract import extract
    from karabakh_qa.answer.spans import best_span, find_spans, matches, phrases
    from karabakh_qa.sentences import passage_sentences
    from karabakh_qa.sparse import tokenize, tokenize_spans

    qterms = set(tokenize(text))
    span_model = shipped_span_model()
    idf = dict(zip(bq.terms, np.maximum(bq.idf, 0.0).tolist(), strict=True))
    mass = sum(idf.get(t, 0.0) for t in qterms) or 1.0
    feats = cands.features[:, order]
    tops = feats.max(axis=1)
    first = fused[order[0]] if len(order) else 0.0
    seen: dict[str, int] = {}
    sources = [index.passage(int(cands.rows[i])).source for i in order]
    counts = {s: sources.count(s) for s in sources}
    out = []
    for n, i in enumerate(order.tolist()):
        p = index.passage(int(cands.rows[i]))
        toks = tokenize_spans(p.text)
        present = {t for t, _, _ in toks} & qterms
        pcover = sum(idf.get(t, 0.0) for t in present) / mass
        # the smallest window of tokens holding every question term the passage has
        pos = [(k, t) for k, (t, _, _) in enumerate(toks) if t in qterms]
        prox = 0.0
        if present:
            need, have, lo, best = len(present), {}, 0, len(toks) + 1
            for hi in range(len(pos)):
                have[pos[hi][1]] = have.get(pos[hi][1], 0) + 1
                while len(have) == need:
                    best = min(best, pos[hi][0] - pos[lo][0] + 1)
                    have[pos[lo][1]] -= 1
                    if not have[pos[lo][1]]:
                        del have[pos[lo][1]]
                    lo += 1
            prox = need / best
        spans = phrases(p.text, qterms) if kind == "description" else find_spans(p.text, qterms)
        fits = [matches(kind, s.type) for s in spans] if kind != "reason" else []
        # question terms this passage has that its article's title and lede do not
        found = index.article(p.source)
        lede = index.passage(found[1][0]) if found else p
        known = set(tokenize(lede.text)) if lede.id != p.id else set()
        known = set(tokenize(p.title or "")) | known
        novel = sum(idf.get(t, 0.0) for t in present - known) / mass
        sp = [best_span(p.text, kind, qterms, w) for w in passage_sentences(p)]
        span_any = max((x.score for x in sp if x), default=0.0)
        s, e = index.sentence_span(int(cands.rows[i]), int(cands.best_sentence[i]))
        shown = extract(p.text, (s, e), text, kind, span_model)
        learned = shown.score if shown else -5.0
        before = index.previous_passage(int(cands.rows[i]))
        around = set(tokenize(f"{p.title or ''} {before.text if before else ''}")) | present
        ctx_cover = sum(idf.get(t, 0.0) for t in around & qterms) / mass
        rank_in = seen.get(p.source, 0)
        seen[p.source] = rank_in + 1
        out.append(
            [
                np.log1p(p.paragraph),
                rank_in,
                counts[p.source],
                fused[i] - first,
                feats[1, n] - tops[1],
                feats[2, n] - tops[2],
                feats[0, n] / tops[0] if tops[0] > 0 else 0.0,
                pcover,
                prox,
                max(fits, default=0.0),
                np.log1p(sum(f > 0 for f in fits)),
                np.log1p(len(toks)),
                feats[3, n] - tops[3],
                novel,
                span_any,
                learned,
                ctx_cover,
            ]
        )
    return np.array(out, float).reshape(len(order), len(EXTRAS))


def rows_of(index, embedder, questions, labels, settings, top):
    """(x, y, groups, kinds) over ``questions`` [(text, label key)]."""
    from karabakh_qa.answer.rank import phase_two
    from karabakh_qa.answer.retrieve import retrieve
    from karabakh_qa.answer.spans import answer_type
    from karabakh_qa.sparse import tokenize

    xs, ys, groups, kinds = [], [], [], []
    qvecs = embedder.encode([q for q, _ in questions], batch_size=64)
    for g, ((text, key), qvec) in enumerate(zip(questions, qvecs, strict=True)):
        terms = tokenize(text)
        cands = retrieve(index, terms, qvec, settings.depth, dense=settings.dense)
        fused = cands.fused(settings.fusion, settings.fusion_weights, settings.rrf_k)
        order, x, _spans = phase_two(index, cands, fused, text, top)
        bq = index.bm25.query(terms)
        x = np.hstack([x, extras(index, cands, fused, order, text, bq, answer_type(text))])
        passages = [index.passage(int(cands.rows[i])) for i in order]
        y = np.array([labels(key, p) for p in passages], float)
        xs.append(x)
        ys.append(y)
        groups.append(np.full(len(y), g))
        kinds.append(answer_type(text))
    return xs, ys, groups, kinds


def save(out: Path, name: str, xs, ys, groups, kinds) -> None:
    np.savez(
        out / f"{name}.npz",
        x=np.vstack(xs),
        y=np.concatenate(ys),
        groups=np.concatenate(groups),
        kinds=np.array(kinds),
    )
    print(name, len(xs), "questions", file=sys.stderr)


def squad_articles(settings, embedder, per: int, top: int):
    """SQuAD's Wikipedia articles whole, as news is indexed: the candidates are then
    several paragraphs of one article, as on BBC News. ``per`` > 0 cuts every
    paragraph into paragraphs of ``per`` sentences (news paragraphs are short);
    the questions of the tuning part (load_squad's "tune") only."""
    from karabakh_qa.chunk import sentences
    from karabakh_qa.evaluate import EmbeddingCache, _article
    from karabakh_qa.store.embedded.build import build_from_articles

    data = json.loads((SHARED / "squad" / "dev-v1.1.json").read_text(encoding="utf-8"))
    docs, questions = [], []
    for a, article in enumerate(data["data"]):
        title = article["title"].replace("_", " ")
        contexts = [" ".join(p["context"].split()) for p in article["paragraphs"]]
        paragraphs = []
        for c in contexts:
            if per:
                spans = sentences(c)
                paragraphs += [
                    c[spans[i][0] : spans[min(i + per, len(spans)) - 1][1]]
                    for i in range(0, len(spans), per)
                ]
            else:
                paragraphs.append(c)
        docs.append(_article(article["title"], title, "\n\n".join(paragraphs)))
        if a % 4 == 0:
            for i, para in enumerate(article["paragraphs"]):
                for qa in para["qas"]:
                    gold = (article["title"], contexts[i], [x["text"] for x in qa["answers"]])
                    questions.append((qa["question"], gold))
    cache = EmbeddingCache(settings.cache_dir / "embeddings", embedder.name)
    known = cache.load()
    with tempfile.TemporaryDirectory(prefix="karabakh-study-") as tmp:
        index = build_from_articles(settings.replace(index_dir=Path(tmp)), embedder, docs, known)

        def label(gold, p):
            source, context, answers = gold
            text = " ".join(p.text.split())
            return p.source == source and text in context and any(x in text for x in answers)

        return rows_of(index, embedder, questions, label, settings, top)


def offline(score: np.ndarray, y: np.ndarray, groups: np.ndarray, top: int) -> tuple:
    """Hit@1, Hit@3, MRR@10 when each group's first ``top`` rows are reordered by
    ``score`` and the rest keep their place."""
    ranks = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        order = [*idx[:top][np.argsort(-score[idx[:top]], kind="stable")], *idx[top:]]
        ranks.append(next((r for r, i in enumerate(order, 1) if y[i] > 0), None))
    return tuple(
        round(float(np.mean(v)), 4)
        for v in (
            [r == 1 for r in ranks],
            [r is not None and r <= 3 for r in ranks],
            [1 / r if r and r <= 10 else 0.0 for r in ranks],
        )
    )


def fit(folder: Path, train_sets: list[str], extra: list[str], l2: float, top: int) -> None:
    from karabakh_qa.answer.rank import FEATURES, train

    names = [*FEATURES, *EXTRAS]
    cols = [names.index(c) for c in [*FEATURES, *extra]]

    def load(name):
        d = np.load(folder / f"{name}.npz")
        keep = np.zeros(len(d["y"]), bool)
        for g in np.unique(d["groups"]):
            keep[np.flatnonzero(d["groups"] == g)[:top]] = True
        return d["x"][:, cols], d["y"], d["groups"], keep

    parts = [load(t) for t in train_sets]
    x = np.vstack([p[0][p[3]] for p in parts])
    y = np.concatenate([p[1][p[3]] for p in parts])
    w, b, mean, scale = train(x, y, l2)
    print(dict(zip([names[c] for c in cols], w.round(3).tolist(), strict=True)))
    for dev in ("bbc-dev", "seed-dev"):
        xd, yd, gd, _ = load(dev)
        print(dev, "Hit@1 / Hit@3 / MRR", offline(((xd - mean) / scale) @ w + b, yd, gd, top))


def main() -> None:
    from karabakh_qa.chunk import normalise
    from karabakh_qa.config import DEFAULT_MODEL as MODEL
    from karabakh_qa.config import Settings
    from karabakh_qa.embed import load_embedder
    from karabakh_qa.evaluate import EmbeddingCache, load_beir, load_squad
    from karabakh_qa.evaluate_qa import archive_service, load_dev
    from karabakh_qa.store.embedded.build import build_from_articles

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--fit", type=Path, help="fit on the collections saved here")
    parser.add_argument("--train", nargs="*", default=["squad-tune", "scifact-train"])
    parser.add_argument("--features", nargs="*", default=[], choices=EXTRAS)
    parser.add_argument("--l2", type=float, default=100.0)
    args = parser.parse_args()
    if args.fit:
        fit(args.fit, args.train, args.features, args.l2, min(args.top, 10))
        return
    if args.out is None:
        parser.error("--out or --fit is required")
    args.out.mkdir(parents=True, exist_ok=True)
    settings = Settings(torch_threads=os.cpu_count() or 1)
    embedder = load_embedder(MODEL, settings.torch_threads)
    for name, collection in (
        ("squad-tune", lambda: load_squad(SHARED / "squad" / "dev-v1.1.json", "tune")),
        ("scifact-train", lambda: load_beir(SHARED / "scifact", "train")),
    ):
        if args.only and name not in args.only:
            continue
        collection = collection()
        cache = EmbeddingCache(settings.cache_dir / "embeddings", embedder.name)
        known = cache.load()
        with tempfile.TemporaryDirectory(prefix="karabakh-study-") as tmp:
            index = build_from_articles(
                settings.replace(index_dir=Path(tmp)), embedder, collection.docs, known
            )
            qids = sorted(collection.qrels)
            questions = [(collection.queries[q], q) for q in qids]

            def labels(qid, p, qrels=collection.qrels):
                return qrels[qid].get(p.source, 0) > 0

            save(args.out, name, *rows_of(index, embedder, questions, labels, settings, args.top))
    for name, per in (("squad-articles", 0), ("squad-news", 2)):
        if args.only and name not in args.only:
            continue
        save(args.out, name, *squad_articles(settings, embedder, per, args.top))
    for name, folder, dev in (
        ("bbc-dev", SHARED / "bbc-news", ROOT / "tests" / "data" / "bbc_dev.json"),
        ("seed-dev", ROOT / "seeds", ROOT / "tests" / "data" / "seed_dev.json"),
    ):
        if args.only and name not in args.only:
            continue
        if name == "seed-dev":  # gold snippets, no files
            data = json.loads(dev.read_text(encoding="utf-8"))["questions"]
            questions = [(q["q"], ((), q["gold"])) for q in data]
        else:
            questions = [(q.q, (q.files, q.gold)) for q in load_dev(dev).answerable]
        with archive_service(settings, embedder, folder) as service:
            index = service.index()

            def labels(q, p):
                files, gold = q
                return (not files or p.source in files) and normalise(gold) in normalise(p.text)

            save(args.out, name, *rows_of(index, embedder, questions, labels, settings, args.top))


if __name__ == "__main__":
    main()
