"""Evaluation on public benchmarks (BEIR layout, SQuAD v1.1) with pytrec_eval.

Collections are indexed by the same code as articles
(:func:`store.embedded.build.build_from_articles`, into a temporary folder,
optionally in several batches with deletions) and every query goes through
the same retrieval (:func:`answer.retrieve.retrieve`);
only the final fusion varies, so BM25 alone, dense alone, RRF and the default
fusion are compared on identical candidates. A document split into several
passages scores as its best passage. Embeddings are cached on disk by model
and embedded-text hash, so a second run does not re-embed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pytrec_eval

from .answer.decorate import reading_of, shown_answers
from .answer.extract import FEATURES as SPAN_FEATURES
from .answer.forest import Scorer, load_scorer
from .answer.rank import Ranker, reorder
from .answer.retrieve import Candidates, retrieve
from .answer.spans import Span, answer_type, best_span
from .config import Settings
from .embed import Embedder
from .errors import BadRequest
from .records import Article
from .sparse import tokenize
from .store.embedded.build import build_from_articles
from .store.embedded.rows import Progress
from .store.embedded.search import Snapshot
from .store.embedded.store import EmbeddedStore
from .store.milvus import MilvusSettings, MilvusStore
from .store.protocol import Filters, Store, StoreView

log = logging.getLogger(__name__)

MEASURES = ("nDCG@10", "Recall@100", "MRR@10", "R@1", "R@5")
LEARNED = "learned second phase"
SPANS = "answer spans (served order)"
RUN_DEPTH = 100


@dataclass
class Collection:
    docs: list[Article]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    answers: dict[str, list[str]] = field(default_factory=dict)  # SQuAD: the gold answers


def _article(doc_id: str, title: str | None, text: str) -> Article:
    return Article(
        source=doc_id,
        text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        title=title or None,
    )


def load_beir(folder: Path, split: str = "test") -> Collection:
    """A BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (header line)."""
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for path in (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_path):
        if not path.is_file():
            raise BadRequest(f"{path} is missing: not a BEIR-layout folder for split {split!r}")
    docs = []
    with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            docs.append(_article(str(d["_id"]), d.get("title"), d.get("text") or d.get("title")))
    with open(folder / "queries.jsonl", encoding="utf-8") as fh:
        queries = {str(q["_id"]): q["text"] for q in map(json.loads, fh)}
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t")
        next(rows, None)
        for row in rows:
            if len(row) >= 3 and int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return Collection(docs, {q: queries[q] for q in qrels if q in queries}, qrels)


def load_squad(path: Path, part: str = "report", tune_every: int = 4) -> Collection:
    """SQuAD v1.1: each paragraph a document ``<title>#<i>``; gold = its paragraph.

    ``part``: "tune" keeps questions of every ``tune_every``-th article (0, 4, 8…),
    "report" the others, "all" everything. The corpus is always complete.
    """
    if part not in ("tune", "report", "all"):
        raise BadRequest("part must be tune, report or all")
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    docs, queries, qrels, answers = [], {}, {}, {}
    for a, article in enumerate(data):
        title = article["title"]
        keep = part == "all" or (a % tune_every == 0) == (part == "tune")
        for i, para in enumerate(article["paragraphs"]):
            doc_id = f"{title}#{i}"
            docs.append(_article(doc_id, title.replace("_", " "), para["context"]))
            if keep:
                for qa in para["qas"]:
                    queries[qa["id"]] = qa["question"]
                    qrels[qa["id"]] = {doc_id: 1}
                    answers[qa["id"]] = [a["text"] for a in qa.get("answers", [])]
    return Collection(docs, queries, qrels, answers)


class EmbeddingCache:
    """float16 vectors by (model, embedded text) hash in one .npz per model: no pickles."""

    def __init__(self, folder: Path, model: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model)
        self.path = folder / f"{slug}.f16.npz"
        self.codes = folder / f"{slug}.sq8.npz"  # an older cache of 8-bit codes

    @classmethod
    def of(cls, folder: Path, embedder: Embedder) -> EmbeddingCache:
        """The cache of ``embedder``'s vectors: one per model and backend."""
        backend = embedder.backend_id
        return cls(folder, embedder.name if backend == "torch" else f"{embedder.name}@{backend}")

    def load(self) -> dict[str, np.ndarray]:
        path = self.path if self.path.exists() else self.codes
        if not path.exists():
            return {}
        with np.load(path, allow_pickle=False) as data:
            keys = [k.decode() for k in data["keys"]]
            vectors = data["vectors"]
        if vectors.dtype == np.uint8:  # 8-bit codes on [-0.5, 0.5]: their bin centres
            vectors = ((vectors.astype(np.float32) + 0.5) / 255 - 0.5).astype(np.float16)
        return dict(zip(keys, vectors, strict=True))

    def save(self, known: dict[str, np.ndarray]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array([k.encode() for k in known], dtype="S40")
        vectors = np.stack(list(known.values())).astype(np.float16)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=vectors)
        tmp.replace(self.path)


def variants(settings: Settings) -> dict[str, tuple[str, tuple[float, ...]]]:
    """The systems in the table: (fusion method, feature weights)."""
    weights = ",".join(f"{w:g}" for w in settings.fusion_weights)
    return {
        "BM25": ("zscore", (1, 0, 0, 0)),
        "dense": ("zscore", (0, 1, 0, 0)),
        "RRF k=60": ("rrf", (0, 0, 0, 0)),
        "BM25+dense z-score 0.6/0.4": ("zscore", (0.6, 0.4, 0, 0)),
        f"default ({settings.fusion} {weights})": (settings.fusion, settings.fusion_weights),
    }


def score(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@100, MRR@10, R@1, R@5 by pytrec_eval."""
    measures = {"ndcg_cut.10", "recall.1,5,100"}
    per_q = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    top10 = {q: dict(sorted(d.items(), key=lambda kv: -kv[1])[:10]) for q, d in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    n = len(qrels)

    def mean(values: dict[str, dict[str, float]], key: str) -> float:
        return sum(v[key] for v in values.values()) / n  # queries with no result count as 0

    return {
        "nDCG@10": mean(per_q, "ndcg_cut_10"),
        "Recall@100": mean(per_q, "recall_100"),
        "MRR@10": mean(rr, "recip_rank"),
        "R@1": mean(per_q, "recall_1"),
        "R@5": mean(per_q, "recall_5"),
    }


def evaluate(
    collection: Collection,
    settings: Settings,
    embedder: Embedder,
    systems: dict[str, tuple[str, tuple[float, ...]]] | None = None,
    progress: Progress | None = None,
    batches: int = 1,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """Metrics and runs (qid -> docid -> score) for each system.

    ``batches`` > 1 builds the collection as that many segments, re-adding a
    few documents of the first batch in the last (so deletions are exercised)."""
    systems = systems or variants(settings)
    cache = EmbeddingCache.of(settings.cache_dir / "embeddings", embedder)
    known = cache.load()
    before = len(known)
    with tempfile.TemporaryDirectory(prefix="karabakh-eval-") as tmp:
        index = build_from_articles(
            settings.replace(index_dir=Path(tmp)),
            embedder,
            collection.docs,
            known,
            batches,
            progress,
        )
        if len(known) > before:
            cache.save(known)
        if settings.store != "milvus":
            return _evaluate(collection, settings, embedder, systems, EmbeddedStore(index))
        digest = hashlib.sha1("\n".join(d.source for d in collection.docs).encode()).hexdigest()
        milvus = eval_store(settings, digest[:12], index)
        try:
            return _evaluate(collection, settings, embedder, systems, milvus)
        finally:
            milvus.close()


def eval_store(settings: Settings, name: str, index: Snapshot) -> MilvusStore:
    """A fresh Milvus collection holding ``index`` (Milvus Lite in the cache folder
    unless ``settings.milvus_uri`` names a server)."""
    uri = settings.milvus_uri or str(settings.cache_dir / "milvus-eval.db")
    collection = "eval_" + "".join(c if c.isalnum() else "_" for c in name)
    milvus = MilvusSettings(
        uri=uri, collection=collection, bm25_k1=settings.bm25_k1, bm25_b=settings.bm25_b
    )
    store = MilvusStore(milvus, index.manifest.model.dim)
    store.reset()
    store.sync(index)
    return store


def _evaluate(
    collection: Collection,
    settings: Settings,
    embedder: Embedder,
    systems: dict[str, tuple[str, tuple[float, ...]]],
    store: Store,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """Every query through :func:`retrieve` on the ``store``'s view of it; runs
    scored per system."""
    sources: dict[int, str] = {}  # row -> document id, read as rows come up
    previous: StoreView | None = None
    qids = sorted(collection.qrels)
    texts = [collection.queries[q] for q in qids]
    qvecs = embedder.encode(texts, batch_size=64)
    runs: dict[str, dict[str, dict[str, float]]] = {name: {} for name in systems}
    default = next(name for name in systems if name.startswith("default"))
    spans: list[tuple[float, float] | None] = []
    ranker = load_ranker(settings)
    span_model = (
        load_scorer(settings.span_model_path, SPAN_FEATURES) if settings.span_model_path else None
    )
    if ranker is not None:
        runs[LEARNED] = {}
    for qid, text, qvec in zip(qids, texts, qvecs, strict=True):
        index: StoreView = store.view(text, partial(np.asarray, qvec), settings.depth, Filters())
        if index is not previous:  # rows are the question's own: nothing carries over
            sources, previous = {}, index
        cands = retrieve(index, tokenize(text), qvec, settings.depth, dense=settings.dense)
        scored = {
            name: cands.fused(method, w, settings.rrf_k) for name, (method, w) in systems.items()
        }
        if ranker is not None:  # the second phase over the fixed fusion: scores by final rank
            first = scored[default]
            final = np.empty(len(first))
            ranked, _spans = reorder(index, cands, first, text, ranker)
            final[ranked] = -np.arange(len(first), dtype=float)
            scored[LEARNED] = final
        if collection.answers:  # the spans of the order a search serves
            served = scored[LEARNED if settings.ranker == "learned" and ranker else default]
            spans.append(_span_f1(index, cands, served, text, collection, qid, span_model))
        for name, fused in scored.items():
            best: dict[str, float] = {}
            for row, value in zip(cands.rows.tolist(), fused.tolist(), strict=True):
                doc = sources.get(row)
                if doc is None:
                    doc = sources[row] = index.passage(row).source
                if value > best.get(doc, -np.inf):
                    best[doc] = value
            top = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:RUN_DEPTH]
            runs[name][qid] = dict(top)
    metrics = {name: score(run, collection.qrels) for name, run in runs.items()}
    judged = np.array([f for f in spans if f is not None]).reshape(-1, 2)
    if len(judged):
        rules, shown = judged[:, 0], judged[:, 1]
        metrics[SPANS] = {
            "gold at rank 1": len(judged),
            "span F1 >= 0.5": float(np.mean(shown >= 0.5)),
            "mean token F1": float(np.mean(shown)),
            "rules: span F1 >= 0.5": float(np.mean(rules >= 0.5)),
            "rules: mean token F1": float(np.mean(rules)),
        }
    return metrics, runs


def _span_f1(
    index: StoreView,
    cands: Candidates,
    fused: np.ndarray,
    question: str,
    collection: Collection,
    qid: str,
    model: Scorer | None = None,
) -> tuple[float, float] | None:
    """Token F1 (SQuAD's), against the best gold answer, of the answer span the served
    order's first passage gets from the rules and the one it shows (``model``'s, or
    the rules' without one); None when that passage is not the gold one."""
    i = int(cands.order(fused)[0])
    row = int(cands.rows[i])
    passage = index.passage(row)
    if passage.source not in collection.qrels[qid]:
        return None
    s, e = index.sentence_span(row, int(cands.best_sentence[i]))
    kind, terms = answer_type(question), set(tokenize(question))
    reading = reading_of(passage, (s, e), cands, i, kind, terms)
    rule = best_span(passage.text, kind, terms, reading.marked)
    shown = shown_answers([reading], question, kind, model)[0][1]

    def f1(span: Span | None) -> float:
        if span is None:
            return 0.0
        return max((token_f1(span.text, gold) for gold in collection.answers[qid]), default=0.0)

    return f1(rule), f1(shown)


def _answer_tokens(text: str) -> list[str]:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles."""
    text = re.sub(r"\b(a|an|the)\b", " ", re.sub(r"[^\w\s]", " ", text.lower()))
    return text.split()


def token_f1(predicted: str, gold: str) -> float:
    """SQuAD's token F1 between two answer strings."""
    p, g = _answer_tokens(predicted), _answer_tokens(gold)
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def load_ranker(settings: Settings) -> Ranker | None:
    """The second-phase model the settings name, if its file exists."""
    path = settings.ranker_path
    return Ranker.load(path) if path is not None and path.exists() else None


def write_run(run: dict[str, dict[str, float]], path: Path, tag: str) -> None:
    """TREC run format: ``qid Q0 docid rank score tag``, ranks from 1, each doc once."""
    with open(path, "w", encoding="utf-8") as fh:
        for qid in sorted(run):
            ranked = sorted(run[qid].items(), key=lambda kv: (-kv[1], kv[0]))
            for rank, (doc, value) in enumerate(ranked, start=1):
                fh.write(f"{qid} Q0 {doc} {rank} {value:.6f} {tag}\n")


def table(metrics: dict[str, dict[str, float]]) -> str:
    """A plain-text table, one row per system."""
    width = max(len(n) for n in metrics) + 2
    lines = ["system".ljust(width) + "".join(m.rjust(12) for m in MEASURES)]
    for name, values in metrics.items():
        if name == SPANS:
            continue
        lines.append(name.ljust(width) + "".join(f"{values[m]:12.4f}" for m in MEASURES))
    if SPANS in metrics:
        lines.append(SPANS + ": " + ", ".join(f"{k} {v:.4g}" for k, v in metrics[SPANS].items()))
    return "\n".join(lines)
