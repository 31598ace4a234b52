"""Question answering on a news archive, judged as a reader would: is the first
passage the one that holds the answer, and does the service say so when the
archive has none?

A dev set (JSON, e.g. ``tests/data/bbc_dev.json``) lists ``questions``, each with
the gold article's file, a verbatim snippet of the paragraph that holds the
answer (``gold``), and ``also``: other files with the same snippet (copies of
the article); and ``unanswerable`` questions. Every question goes through
:meth:`SearchService.search`, as the page and the API do (groups collapsed,
``answer_found`` decided). A hit is gold when its passage, or one of the copies
it stands for, comes from a gold file and contains the snippet (case,
punctuation and spacing folded).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answer.judge import coverage, key_terms
from .chunk import normalise
from .config import Settings
from .embed import Embedder
from .errors import BadRequest
from .evaluate import EmbeddingCache
from .ingest import read_articles
from .records import Hit
from .service import SearchService
from .store.embedded.build import build_from_articles

DEPTH = 10


@dataclass(frozen=True)
class DevQuestion:
    q: str
    files: tuple[str, ...]  # the gold file first, then its copies
    gold: str
    kind: str  # the expected answer's type ("person", "number", ...) or "unanswerable"
    in_lede: bool = False


@dataclass(frozen=True)
class DevSet:
    answerable: list[DevQuestion]
    unanswerable: list[DevQuestion]


def load_dev(path: Path) -> DevSet:
    """A dev set file (see the module docstring); a malformed one is a BadRequest."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        answerable = [
            DevQuestion(
                q["q"],
                (q["file"], *q.get("also", [])),
                q["gold"],
                q.get("type", ""),
                bool(q.get("in_lede", False)),
            )
            for q in data["questions"]
        ]
        unanswerable = [
            DevQuestion(q["q"], (), "", "unanswerable") for q in data.get("unanswerable", [])
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadRequest(f"dev set {path} is unreadable: {exc}") from None
    return DevSet(answerable, unanswerable)


def is_gold(hit: Hit, question: DevQuestion) -> bool:
    """Whether ``hit`` (or a copy it stands for) holds the question's gold snippet."""
    sources = {hit.passage.source, *(c["source"] for c in hit.also_in)}
    if not sources & set(question.files):
        return False
    return normalise(question.gold) in normalise(hit.passage.text)


def judge(service: SearchService, dev: DevSet, k: int = DEPTH) -> dict[str, Any]:
    """Hit@1/3/10, MRR@10 and answer_found on the answerable questions (overall and
    by answer type and lede), abstention on the unanswerable ones, and per question
    what came first."""
    rows: list[dict[str, Any]] = []
    bm25 = service.index().bm25
    for question in [*dev.answerable, *dev.unanswerable]:
        result = service.search(question.q, k)
        rank = next((h.rank for h in result.hits if is_gold(h, question)), None)
        first = result.hits[0].passage if result.hits else None
        keys = key_terms(question.q, bm25.df, bm25.n)
        rows.append(
            {
                "q": question.q,
                "kind": question.kind,
                "in_lede": question.in_lede,
                "rank": rank,
                "answer_found": result.answer_found,
                "missing_terms": list(result.missing_terms),
                "key_terms": [key.surface for key in keys],
                "key_coverage": coverage(keys, [h.passage.text for h in result.hits[:3]], bm25.n),
                "first": f"{first.source} ¶{first.paragraph}" if first else None,
            }
        )
    answerable = [r for r in rows if r["kind"] != "unanswerable"]
    report: dict[str, Any] = {"questions": len(answerable), **_metrics(answerable)}
    unanswerable = [r for r in rows if r["kind"] == "unanswerable"]
    if unanswerable:
        report["unanswerable"] = len(unanswerable)
        report["abstained"] = statistics.mean(not r["answer_found"] for r in unanswerable)
    by: dict[str, dict[str, Any]] = {}
    for kind in sorted({r["kind"] for r in answerable}):
        by[kind] = _metrics([r for r in answerable if r["kind"] == kind])
    for lede in (True, False):
        part = [r for r in answerable if r["in_lede"] is lede]
        if part:
            by["in lede" if lede else "after the lede"] = _metrics(part)
    report["by"] = by
    report["per_question"] = rows
    return report


def _metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def share(test: Callable[[dict[str, Any]], object]) -> float:
        return statistics.mean(bool(test(r)) for r in rows) if rows else 0.0

    return {
        "n": len(rows),
        "Hit@1": share(lambda r: r["rank"] == 1),
        "Hit@3": share(lambda r: r["rank"] is not None and r["rank"] <= 3),
        "Hit@10": share(lambda r: r["rank"] is not None),
        "MRR@10": statistics.mean(1 / r["rank"] if r["rank"] else 0.0 for r in rows)
        if rows
        else 0.0,
        "answer_found": share(lambda r: r["answer_found"]),
    }


@contextmanager
def archive_service(
    settings: Settings, embedder: Embedder, folder: Path
) -> Iterator[SearchService]:
    """A service over every article of ``folder``, indexed into a temporary folder
    (vectors from the evaluation's embedding cache when it has them)."""
    articles, _skipped = read_articles(folder)
    if not articles:
        raise BadRequest(f"no readable article in {folder}")
    cache = EmbeddingCache.of(settings.cache_dir / "embeddings", embedder)
    known = cache.load()
    before = len(known)
    with tempfile.TemporaryDirectory(prefix="karabakh-eval-qa-") as tmp:
        local = settings.replace(index_dir=Path(tmp), articles_dir=folder)
        build_from_articles(local, embedder, articles, known)
        if len(known) > before:
            cache.save(known)
        yield SearchService(local, embedder)


def table(report: dict[str, Any]) -> str:
    """The report as a fixed-width table (overall, then by answer type and lede)."""
    head = f"{'questions':24s} {'n':>4s} {'Hit@1':>7s} {'Hit@3':>7s} {'Hit@10':>7s}"
    head += f" {'MRR@10':>7s} {'found':>7s}"
    lines = [head]
    parts = [("all answerable", report), *report["by"].items()]
    for name, m in parts:
        lines.append(
            f"{name:24s} {m['n'] if 'n' in m else report['questions']:>4d} "
            f"{m['Hit@1']:7.4f} {m['Hit@3']:7.4f} {m['Hit@10']:7.4f} "
            f"{m['MRR@10']:7.4f} {m['answer_found']:7.4f}"
        )
    if "unanswerable" in report:
        lines.append(f"unanswerable: {report['unanswerable']}, abstained {report['abstained']:.4f}")
    return "\n".join(lines)


def judge_pairs(service: SearchService, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision and recall of the relation table against hand-labelled story pairs
    (tests/data/bbc_pairs.json): ``versions`` (a pair labelled "version" linked as
    one), ``copies`` (labelled "copy", linked as "duplicate") and ``figures`` (a pair
    with labelled figure disagreements linked as "differs-on-figure"); over every
    pair, and over the pairs not marked ambiguous."""
    index = service.index()
    linked: dict[tuple[str, str], set[str]] = {}
    for kind, a, b, *_ in index.relation_rows:
        linked.setdefault((min(a, b), max(a, b)), set()).add(kind)
    rows = []
    for p in pairs:
        got = linked.get((min(p["a"], p["b"]), max(p["a"], p["b"])), set())
        rows.append(
            {
                "a": p["a"],
                "b": p["b"],
                "label": p["label"],
                "ambiguous": bool(p.get("ambiguous")),
                "linked": sorted(got),
                "version": (p["label"] == "version", "version" in got),
                "copy": (p["label"] == "copy", "duplicate" in got),
                "figures": (bool(p.get("figures")), "differs-on-figure" in got),
            }
        )
    out: dict[str, Any] = {"pairs": len(rows), "per_pair": rows}
    for scope, chosen in (("all", rows), ("clear", [r for r in rows if not r["ambiguous"]])):
        out[scope] = {what: _precision_recall([r[what] for r in chosen]) for what in RELATIONS}
    return out


RELATIONS = ("version", "copy", "figures")


def _precision_recall(outcomes: list[tuple[bool, bool]]) -> dict[str, Any]:
    tp = sum(1 for gold, got in outcomes if gold and got)
    predicted = sum(1 for _, got in outcomes if got)
    labelled = sum(1 for gold, _ in outcomes if gold)
    return {
        "labelled": labelled,
        "linked": predicted,
        "correct": tp,
        "precision": round(tp / predicted, 3) if predicted else None,
        "recall": round(tp / labelled, 3) if labelled else None,
    }


def pairs_table(report: dict[str, Any]) -> str:
    lines = ["| relation | pairs | labelled | linked | correct | precision | recall |"]
    lines.append("|---|---|---|---|---|---|---|")
    for scope in ("all", "clear"):
        for what in RELATIONS:
            m = report[scope][what]
            lines.append(
                f"| {what} | {scope} | {m['labelled']} | {m['linked']} | {m['correct']} | "
                f"{m['precision']} | {m['recall']} |"
            )
    return "\n".join(lines)
