"""Settings: every knob in one frozen dataclass, passed explicitly everywhere."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadRequest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DENSE_MODES = ("exact", "ann", "auto")
QUERY_RUNTIMES = ("onnx", "torch")
BACKENDS = ("torch", "onnx", "openvino")  # embed/backends.py
PASSAGE_VECTORS = ("sentences", "model")  # store/embedded/rows.py: passage_vectors
# A new index's backend: OpenVINO static int8 built 3.5x faster than the torch build
# before, with SciFact nDCG@10 +0.0005 and SQuAD R@1 -0.0024 (README, "Indexing
# throughput"); an existing index keeps the backend it was built with.
DEFAULT_BACKEND = "openvino"


@dataclass(frozen=True)
class Settings:
    """Configuration for indexing, searching and serving.

    Paths default to the project's ``seeds/`` and ``index/``; the environment
    variables ``KARABAKH_QA_ARTICLES`` and ``KARABAKH_QA_INDEX`` override them
    (see :meth:`from_env`).
    """

    articles_dir: Path = PROJECT_ROOT / "seeds"
    index_dir: Path = PROJECT_ROOT / "index"
    web_dir: Path = PROJECT_ROOT / "web"
    cache_dir: Path = PROJECT_ROOT / ".cache"

    # Embedding model: the name is recorded in the manifest and checked at load.
    # Empty: the model the index was built with (DEFAULT_MODEL when there is none).
    # "hash-bow-<dim>" is the structural-benchmark model (no neural network).
    model_name: str = ""
    # Structural benchmarks only: embed questions with this model instead of the
    # index's (an index of hash-bow-384 vectors queried with the real model's 384-dim
    # vectors: the answers are meaningless, the costs are real). Empty: the index's.
    query_model: str = ""
    model_max_tokens: int = 256
    torch_threads: int = 1  # per serving process; indexing may raise it
    # Questions: "onnx" (an ONNX Runtime export of the same weights, built locally in
    # cache_dir on first use; 2.5x faster for one short text) or "torch".
    query_runtime: str = "onnx"
    embed_batch_size: int = 32
    # What runs the model over passages and questions: "torch" (fp32), "onnx" (ONNX
    # Runtime, dynamic int8) or "openvino" (static int8); empty: the index's backend,
    # DEFAULT_BACKEND for a new index. Recorded in the manifest: an index answers only through
    # the graph that built it (README, "Indexing throughput").
    backend: str = ""
    device: str = "cpu"  # "cuda" for a GPU (fp16, torch backend)
    # Where passages are searched: "embedded" (the segmented index) or "milvus" (a
    # Milvus server or cluster at milvus_uri, or Milvus Lite for a file path; a token
    # from $KARABAKH_QA_MILVUS_TOKEN); empty: the index's store, else "embedded".
    # Recorded in the manifest (README, "Running on a Milvus cluster").
    store: str = ""
    milvus_uri: str = ""
    milvus_collection: str = "karabakh_qa"
    milvus_dense_index: str = "FLAT"  # Lite: FLAT, IVF_FLAT or AUTOINDEX; HNSW on a cluster
    milvus_timeout: float = 5.0  # seconds a Milvus call may take before it is a 503
    build_workers: int = 2  # processes that chunk and tokenise a large batch of articles
    # Text embedded for a passage: "passage" or "title+section+passage".
    embed_context: bool = True
    # A passage's vector: "sentences" (the mean of its sentences' vectors, weighted by
    # their length: no model call of its own, the build twice as fast at the same
    # quality; README "Indexing throughput") or "model" (the passage embedded whole).
    # Recorded in the manifest: changing it rebuilds the index.
    passage_vectors: str = "sentences"

    # BM25 (rank-bm25 BM25Okapi parameters), chosen on training data like the weights.
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    bm25_epsilon: float = 0.25
    bm25_context: bool = True  # index title + section with the passage text

    # Fusion: "zscore", "minmax" or "rrf". Linear-fusion weights of the features
    # (bm25, passage cosine, best-sentence cosine, best-sentence term coverage),
    # chosen on SciFact train and the SQuAD tuning part (README, "Retrieval quality").
    fusion: str = "zscore"
    fusion_weights: tuple[float, float, float, float] = (1.0, 1.0, 2.0, 0.6)
    rrf_k: int = 60
    # Second phase (answer/rank.py): "learned" re-scores the fused top 10 with the
    # model at ranker_path (trained on SQuAD tune + SciFact train), "fixed" does not.
    ranker: str = "learned"
    ranker_path: Path | None = Path(__file__).resolve().parent / "answer" / "ranker.json"
    # the answer span a hit shows: the learned choice of answer/extract.py (trained on
    # the SQuAD tuning part), or with None the rules of answer/spans.py alone
    span_model_path: Path | None = Path(__file__).resolve().parent / "answer" / "spans.json"
    depth: int = 100
    # Dense search: "exact" everywhere, "ann" (sign bits + exact rescoring) everywhere,
    # or "auto": the ANN for segments of ANN_MIN_ROWS rows or more (README, "Approximate
    # search").
    dense: str = "auto"

    # No-answer rule (calibrated on tests/data/seed_dev.json, see README): an answer
    # is found when a top-3 passage has cosine >= min_dense_score, or cosine >=
    # min_dense_with_terms while covering >= min_term_coverage of the query's idf.
    min_dense_score: float = 0.40
    min_dense_with_terms: float = 0.25
    min_term_coverage: float = 0.5
    # ... and only when a top-3 passage holds this share of the question's key terms
    # (names, numbers, rare terms: answer/judge.py), calibrated on the dev sets.
    min_key_coverage: float = 0.65

    # Near-duplicates: word-shingle Jaccard at or above this groups two passages
    # (README "Near-duplicates" gives the data behind the value).
    dup_shingle: int = 3
    dup_jaccard: float = 0.6

    # Request limits.
    max_question_chars: int = 1000
    max_k: int = 50
    # An upload with more paragraphs than this is refused (422): a megabyte of one-line
    # paragraphs was ~45,000 passages and a 100 s request.
    max_article_paragraphs: int = 1000
    default_k: int = 5
    max_request_bytes: int = 1_048_576
    # The HTTP server (waitress) as the internet meets it: waitress's defaults (100
    # connections, a 120 s idle timeout) let ~110 idle half-open connections lock
    # every other client out. Idle connections are closed after server_idle_timeout_s,
    # looked for every server_cleanup_s; a body over max_request_bytes is refused
    # from its Content-Length, before it is read.
    # Origins allowed to call the JSON API from a browser page elsewhere (CORS); off
    # when empty, "*" for any.
    cors_origins: tuple[str, ...] = ()
    server_connection_limit: int = 1000
    server_idle_timeout_s: int = 10
    server_cleanup_s: int = 2

    admin_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.dense not in DENSE_MODES:
            raise BadRequest(f"dense must be one of {', '.join(DENSE_MODES)}, not {self.dense!r}")
        if self.ranker not in ("fixed", "learned"):
            raise BadRequest(f"ranker must be fixed or learned, not {self.ranker!r}")
        if self.backend and self.backend not in BACKENDS:
            raise BadRequest(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.passage_vectors not in PASSAGE_VECTORS:
            raise BadRequest(
                f"passage_vectors must be one of {', '.join(PASSAGE_VECTORS)}, "
                f"not {self.passage_vectors!r}"
            )
        if self.query_runtime not in QUERY_RUNTIMES:
            raise BadRequest(
                f"query_runtime must be one of {', '.join(QUERY_RUNTIMES)}, "
                f"not {self.query_runtime!r}"
            )

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (paths are coerced to Path)."""
        for key in (
            "articles_dir",
            "index_dir",
            "web_dir",
            "cache_dir",
            "ranker_path",
            "span_model_path",
        ):
            if key in changes and changes[key] is not None:
                changes[key] = Path(changes[key])  # type: ignore[arg-type]
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then environment variables, then explicit overrides."""
        env: dict[str, object] = {}
        if os.environ.get("KARABAKH_QA_ARTICLES"):
            env["articles_dir"] = Path(os.environ["KARABAKH_QA_ARTICLES"])
        if os.environ.get("KARABAKH_QA_INDEX"):
            env["index_dir"] = Path(os.environ["KARABAKH_QA_INDEX"])
        if os.environ.get("KARABAKH_QA_CACHE"):
            env["cache_dir"] = Path(os.environ["KARABAKH_QA_CACHE"])
        if os.environ.get("KARABAKH_QA_ADMIN_TOKEN"):
            env["admin_token"] = os.environ["KARABAKH_QA_ADMIN_TOKEN"]
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls().replace(**env)
