"""karabakh-qa against LanceDB hybrid search, side by side, in one run (issue 11).

Why LanceDB: it is the embedded system a user would most likely pick for hybrid
(keyword + vector) search on one machine: one pip package, a native full-text
index and vector indexes, incremental adds, and a documented hybrid query with a
reciprocal-rank-fusion reranker (txtai and a hand-built tantivy + FAISS need more
assembly; docs/storage-engines.md measured both).

Run (the peer lives in its own virtualenv, never in .venv; see bench_engines.py):
    .venv/bin/python benchmarks/bench_peer.py [--passages 100000] [--json PATH]

1. Quality, same embedding model: SciFact test, passages chunked by karabakh-qa,
   their MiniLM vectors from the evaluation cache (``karabakh-qa eval beir`` first),
   questions embedded by the same model. karabakh-qa: ``retrieve`` + default fusion
   (the evaluation's code). LanceDB: a table of the same passages and vectors,
   its FTS index (English stemming and stop words), ``query_type="hybrid"`` with
   ``RRFReranker``, flat vector search (9k rows); a document scores as its best
   passage; nDCG@10 computed the same way for both (binary gains, as SciFact).
2. Structural costs on the synthetic 100k corpus: ``bench_scale.py`` for
   karabakh-qa and ``bench_engines.py --engines lancedb`` for LanceDB (the same
   articles and questions; LanceDB gets random vectors and an IVF_PQ index, ours the
   hash-bow vectors): query p50/p95, adding one article (LanceDB: rows made
   beforehand, and the same article from its text, chunked by our chunker and
   embedded by the same hash embedder before ``tbl.add``), disk, RSS.
Prints one JSON object with both sides and the ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import emit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "benchmarks"
PEER_PYTHON = Path(os.environ.get("PEER_PYTHON", "/work/venv-engines/bin/python"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def ndcg_at_10(ranked: list[str], relevant: dict[str, int]) -> float:
    gains = [relevant.get(d, 0) for d in ranked[:10]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def export_scifact(folder: Path) -> dict:
    """Ours on SciFact, and the same passages, vectors and questions for the peer."""
    from karabakh_qa.answer.retrieve import retrieve
    from karabakh_qa.config import DEFAULT_MODEL, Settings
    from karabakh_qa.embed import load_embedder
    from karabakh_qa.evaluate import EmbeddingCache, load_beir
    from karabakh_qa.sparse import tokenize
    from karabakh_qa.store.embedded.build import build_from_articles
    from karabakh_qa.store.embedded.rows import embed_key, embed_text

    settings = Settings()
    embedder = load_embedder(DEFAULT_MODEL, os.cpu_count() or 1)
    collection = load_beir(SHARED / "scifact", "test")
    known = EmbeddingCache(ROOT / ".cache" / "embeddings", embedder.name).load()
    with tempfile.TemporaryDirectory() as tmp:
        index = build_from_articles(
            settings.replace(index_dir=Path(tmp)), embedder, collection.docs, known
        )
        qids = list(collection.queries)
        texts = [collection.queries[q] for q in qids]
        qvecs = embedder.encode(texts, 64)
        ours, ms = [], []
        for qid, text, qvec in zip(qids, texts, qvecs, strict=True):
            t = time.perf_counter()
            cands = retrieve(index, tokenize(text), qvec, settings.depth, dense=settings.dense)
            fused = cands.fused(settings.fusion, settings.fusion_weights, settings.rrf_k)
            ranked = []
            for i in cands.order(fused):
                source = index.passage(int(cands.rows[i])).source
                if source not in ranked:
                    ranked.append(source)
            ms.append((time.perf_counter() - t) * 1000)
            ours.append(ndcg_at_10(ranked, collection.qrels[qid]))
        rows = np.flatnonzero(index.live_mask)
        passages = [index.passage(int(r)) for r in rows]
    vectors = np.stack(
        [known[embed_key(embedder.name, embed_text(p, settings.embed_context))] for p in passages]
    ).astype(np.float32)
    np.save(folder / "vectors.npy", vectors)
    np.save(folder / "qvecs.npy", qvecs.astype(np.float32))
    (folder / "data.json").write_text(
        json.dumps(
            {
                "docs": [p.source for p in passages],
                "texts": [embed_text(p, settings.bm25_context) for p in passages],
                "queries": texts,
                "qrels": [collection.qrels[q] for q in qids],
            }
        )
    )
    return {
        "scifact_ndcg@10": round(float(np.mean(ours)), 4),
        "scifact_query_p50_ms": round(float(np.median(ms)), 2),
        "passages": len(passages),
    }


def peer_scifact(folder: Path) -> dict:
    """LanceDB hybrid search on the exported SciFact passages (runs in the peer's venv)."""
    import lancedb
    import pyarrow as pa
    from lancedb.rerankers import RRFReranker

    data = json.loads((folder / "data.json").read_text())
    vectors = np.load(folder / "vectors.npy")
    qvecs = np.load(folder / "qvecs.npy")
    dim = vectors.shape[1]
    table = pa.table(
        {
            "doc": pa.array(data["docs"], pa.string()),
            "text": pa.array(data["texts"], pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim),
        }
    )
    db = lancedb.connect(str(folder / "lance"))
    tbl = db.create_table("passages", data=table)
    tbl.create_fts_index("text", language="English", stem=True, remove_stop_words=True)
    reranker = RRFReranker()
    scores, ms = [], []
    for text, qvec, rels in zip(data["queries"], qvecs, data["qrels"], strict=True):
        t = time.perf_counter()
        res = (
            tbl.search(query_type="hybrid")
            .vector(qvec)
            .text(text)
            .distance_type("cosine")
            .rerank(reranker)
            .limit(100)
            .to_arrow()
        )
        ms.append((time.perf_counter() - t) * 1000)
        ranked = []
        for doc in res["doc"].to_pylist():
            if doc not in ranked:
                ranked.append(doc)
        scores.append(ndcg_at_10(ranked, rels))
    return {
        "scifact_ndcg@10": round(float(np.mean(scores)), 4),
        "scifact_query_p50_ms": round(float(np.median(ms)), 2),
        "lancedb": lancedb.__version__,
    }


def run_json(cmd: list[str], out: Path) -> dict:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quality-only", action="store_true", help="SciFact only")
    parser.add_argument("--peer-scifact", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_scifact:  # the peer's half, in its own virtualenv
        print(json.dumps(peer_scifact(args.peer_scifact)))
        return
    sys.path.insert(0, str(ROOT / "src"))
    out: dict = {"ours": {}, "lancedb": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        out["ours"].update(export_scifact(folder))
        res = subprocess.run(
            [str(PEER_PYTHON), __file__, "--peer-scifact", str(folder)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        out["lancedb"].update(json.loads(res.stdout.strip().splitlines()[-1]))
        if args.quality_only:
            emit(out, args.json)
            return
        scale = run_json(
            [sys.executable, str(HERE / "bench_scale.py"), "--passages", str(args.passages),
             "--json", str(folder / "ours.json")],
            folder / "ours.json",
        )  # fmt: skip
        engines = run_json(
            [str(PEER_PYTHON), str(HERE / "bench_engines.py"), "--passages", str(args.passages),
             "--engines", "lancedb", "--skip-parity", "--json", str(folder / "peer.json")],
            folder / "peer.json",
        )  # fmt: skip
    lance = engines[0]  # bench_engines writes one result per engine
    out["ours"].update(
        query_p50_ms=scale["query_p50_ms"],
        query_p95_ms=scale["query_p95_ms"],
        add_one_ms=scale["add_one_lib_ms"],
        # SearchService.add: checked, saved (fsynced) and queued; searchable after
        add_accept_ms=scale["add_accept_lib_ms"],
        add_visible_ms=scale["add_visible_lib_ms"],
        disk_bytes_per_passage=scale["disk_bytes_per_passage"],
        rss_gb=scale["rss_loaded_gb"],
    )
    out["lancedb_structural"] = lance
    ours, peer = out["ours"], out["lancedb"]
    peer.update(
        query_p50_ms=lance["query_ms"]["keyword+vector"]["p50"],
        query_p95_ms=lance["query_ms"]["keyword+vector"]["p95"],
        add_one_ms=lance["add_one_article_ms"]["p50"],
        # the same article from its text: chunked by our chunker, embedded by the same
        # hash embedder, then added (what a LanceDB user does before tbl.add)
        add_from_text_ms=lance["add_one_article_from_text_ms"]["p50"],
        disk_bytes_per_passage=lance["disk_bytes_per_passage"],
        rss_gb=lance["fresh_process"]["rss_mb"] / 1024,
    )
    # > 1: karabakh-qa is better (faster, smaller, or higher nDCG).
    out["ratios_peer_over_ours"] = {
        key: round(peer[key] / ours[key], 3)
        for key in ("query_p50_ms", "query_p95_ms", "add_one_ms", "disk_bytes_per_passage",
                    "rss_gb", "scifact_query_p50_ms")
    }  # fmt: skip
    # LanceDB's add is durable and searchable on return; ours is durable on return
    # (accept), searchable when its build is done (visible)
    for key in ("add_accept_ms", "add_visible_ms"):
        out["ratios_peer_over_ours"][f"add_one_ms / {key}"] = round(
            peer["add_one_ms"] / ours[key], 3
        )
    out["ratios_peer_over_ours"]["add_from_text_ms / add_visible_ms"] = round(
        peer["add_from_text_ms"] / ours["add_visible_ms"], 3
    )
    out["ratios_peer_over_ours"]["scifact_ndcg@10 (ours / peer)"] = round(
        ours["scifact_ndcg@10"] / peer["scifact_ndcg@10"], 3
    )
    emit(out, args.json)


if __name__ == "__main__":
    main()
