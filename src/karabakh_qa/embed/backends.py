"""Questions embedded through ONNX Runtime: the same weights, 2.5x faster.

A question is one short text, and PyTorch's per-call overhead is most of its
cost: all-MiniLM-L6-v2 takes ~10.6 ms a question under torch here, ~4.5 ms as
an ONNX graph under ONNX Runtime (one thread each), with the same vector (cosine
to torch's 1 - 1e-7; fp32, no quantisation). Passages keep going through torch
in batches, where its overhead does not matter.

Nothing comes from a hub: the graph is exported here, from the installed weights
(transformer, mean pooling and normalisation in one graph), once, into
``<cache_dir>/onnx/`` under a name that carries the weights' sha256 and the
torch version, written to a temporary name and renamed. A new export is checked
against torch on a probe question before it is used; any failure (no exporter,
a damaged file, a mismatch) logs a warning and the questions stay on torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from ..errors import IndexUnavailable
from .models import sha256_file

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

PROBE = "How many people were killed in the attack, and when did it happen?"
MIN_PROBE_COSINE = 0.9999
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


Feeds = Callable[[str, int], dict[str, np.ndarray]]  # (text, max tokens) -> model inputs


def hf_feeds(tokenizer: PreTrainedTokenizerBase) -> Feeds:
    """Model inputs for one text from a Hugging Face tokenizer (transformers)."""

    def feeds(text: str, max_tokens: int) -> dict[str, np.ndarray]:
        batch = tokenizer([text], truncation=True, max_length=max_tokens, return_tensors="np")
        return {name: np.asarray(batch[name], np.int64) for name in INPUTS if name in batch}

    return feeds


def light_feeds(tokenizer_json: Path, max_tokens: int) -> Feeds:
    """Model inputs for one text from the model's ``tokenizer.json`` through the
    ``tokenizers`` library alone (the Rust tokenizer transformers wraps): no
    torch, no transformers in the process."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)

    def feeds(text: str, _max_tokens: int) -> dict[str, np.ndarray]:
        found = tokenizer.encode(text)
        inputs = (found.ids, found.attention_mask, found.type_ids)
        return {name: np.array([v], np.int64) for name, v in zip(INPUTS, inputs, strict=True)}

    return feeds


class OnnxQueryEncoder:
    """One question at a time through an ONNX Runtime session (thread-safe)."""

    def __init__(self, path: Path, feeds: Feeds, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.feeds = feeds
        self.path = path
        self.dim = int(self.session.get_outputs()[0].shape[-1])  # the graph says; no run

    def encode(self, text: str, max_tokens: int) -> np.ndarray:
        """The L2-normalised embedding of ``text`` (truncated as the model truncates)."""
        feed = self.feeds(text, max_tokens)
        return np.ascontiguousarray(self.session.run(None, feed)[0][0], dtype=np.float32)


def export_path(cache_dir: Path, weights_sha256: str) -> Path:
    """Where the question graph of these weights, exported by this torch, is kept (the
    version read from the installed package's metadata: no torch import)."""
    from importlib.metadata import version

    exporter = version("torch").replace("+", "-")
    return cache_dir / "onnx" / f"minilm-{weights_sha256[:16]}-torch{exporter}.onnx"


def probe_path(graph: Path) -> Path:
    """Torch's vector of PROBE, kept beside a question graph that reproduced it."""
    return graph.with_name(graph.name + ".probe.npy")


def _export(model: SentenceTransformer, path: Path) -> None:
    """Write the transformer + mean pooling + normalisation of a sentence-transformers
    ``model`` as one ONNX graph at ``path`` (atomically)."""
    import torch

    # torch types a submodule's attribute as ``Tensor | Module``; this one is the
    # Hugging Face model (a Module). cast() only informs the type checker.
    transformer = cast("torch.nn.Module", model[0].auto_model)

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            tokens = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )[0]
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    sample = model.tokenizer([PROBE], return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.onnx.export(
            Pooled().eval(),
            tuple(sample[name] for name in INPUTS),
            str(tmp),
            input_names=list(INPUTS),
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_query_encoder(
    model: SentenceTransformer,
    weights_sha256: str,
    cache_dir: Path,
    threads: int,
    reference: Callable[[str], np.ndarray],
) -> OnnxQueryEncoder | None:
    """The ONNX encoder of ``model``'s questions, exported on first use; None (and a
    warning) when it cannot be built or does not reproduce ``reference(PROBE)``."""
    path = export_path(cache_dir, weights_sha256)
    try:
        if not path.exists():
            log.info("exporting the question encoder to %s (once)", path)
            _export(model, path)
        encoder = OnnxQueryEncoder(path, hf_feeds(model.tokenizer), threads)
        # max_seq_length is typed ``int | None``; None fails in int() as before (caught below)
        got = encoder.encode(PROBE, int(cast(int, model.max_seq_length)))
        want = reference(PROBE)
        cosine = float(got @ want)
    except Exception as exc:  # any failure: questions stay on torch; the next start re-exports
        log.warning("questions stay on torch: the ONNX encoder failed (%s)", exc)
        path.unlink(missing_ok=True)
        probe_path(path).unlink(missing_ok=True)
        return None
    if cosine < MIN_PROBE_COSINE:
        log.warning(
            "questions stay on torch: the ONNX export of %s is off (cosine %.6f)", path, cosine
        )
        path.unlink(missing_ok=True)
        probe_path(path).unlink(missing_ok=True)
        return None
    probe = probe_path(path)  # what a process without torch checks the graph against
    tmp = probe.with_name(f".{probe.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, np.asarray(want, np.float32))
    os.replace(tmp, probe)
    return encoder


def load_light_query_encoder(
    model_dir: Path, weights_sha256: str, cache_dir: Path, threads: int, max_tokens: int
) -> OnnxQueryEncoder | None:
    """The question graph a torch process exported and checked (load_query_encoder),
    opened without torch: the model's ``tokenizer.json`` through the ``tokenizers``
    library and the graph through ONNX Runtime, checked against torch's PROBE vector
    kept beside it. None when either is missing or the check fails (then the model
    loads with torch, as before)."""
    path = export_path(cache_dir, weights_sha256)
    probe, tokenizer = probe_path(path), model_dir / "tokenizer.json"
    if not (path.exists() and probe.exists() and tokenizer.exists()):
        return None
    try:
        encoder = OnnxQueryEncoder(path, light_feeds(tokenizer, max_tokens), threads)
        cosine = float(encoder.encode(PROBE, max_tokens) @ np.load(probe, allow_pickle=False))
    except Exception as exc:  # noqa: BLE001 (any failure: the torch path decides)
        log.warning("the question graph %s does not open without torch (%s)", path, exc)
        return None
    if cosine < MIN_PROBE_COSINE:
        log.warning("the question graph %s is off without torch (cosine %.6f)", path, cosine)
        return None
    return encoder


# --- whole-archive backends: batches of texts through a quantised graph -------------
#
# Indexing spends its time in the model. Two int8 graphs of the same weights, both
# built here from the fp32 export above (no hub, no optimum), each once into
# ``<cache_dir>/onnx/`` under a name carrying the weights' and the recipe's hashes:
#
# * "onnx": ONNX Runtime with dynamic int8 weights and activations, per channel
#   (onnxruntime.quantization.quantize_dynamic): no calibration;
# * "openvino": OpenVINO with static int8 (NNCF post-training quantisation,
#   calibrated on the seed articles' paragraphs and sentences shipped in the repo,
#   so every machine builds the same graph), run at f32 precision for what is not
#   int8 (bf16 would make vectors depend on the CPU).
#
# Passages and questions of one index go through the same graph: the manifest
# records the backend and its graph's hash (``backend_id``), and a service refuses
# an index built through another one.

BACKENDS = ("torch", "onnx", "openvino")


class BatchEncoder(Protocol):
    backend_id: str

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray: ...


def _feeds(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], max_tokens: int, batch_size: int
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """(positions, model inputs) per batch, longest texts first (little padding)."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for lo in range(0, len(texts), batch_size):
        at = order[lo : lo + batch_size]
        batch = tokenizer(
            [texts[i] for i in at],
            truncation=True,
            max_length=max_tokens,
            padding=True,
            return_tensors="np",
        )
        yield at, {name: np.asarray(batch[name], np.int64) for name in INPUTS if name in batch}


def _run_batches(
    run: Callable[[dict[str, np.ndarray]], np.ndarray],
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_tokens: int,
    batch_size: int,
) -> np.ndarray:
    out = np.zeros((len(texts), 0), np.float32)
    for at, feed in _feeds(tokenizer, texts, max_tokens, batch_size):
        vecs = run(feed)
        if out.shape[1] == 0:
            out = np.zeros((len(texts), vecs.shape[1]), np.float32)
        out[at] = vecs
    return out


class OnnxInt8Encoder:
    """Texts through ONNX Runtime, dynamic int8 (thread-safe)."""

    def __init__(
        self, path: Path, tokenizer: PreTrainedTokenizerBase, threads: int, max_tokens: int
    ) -> None:
        self.session = OnnxQueryEncoder(path, hf_feeds(tokenizer), threads).session
        self.tokenizer, self.max_tokens = tokenizer, max_tokens
        self.backend_id = f"onnx:{sha256_file(path)[:16]}"

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        def run(feed: dict[str, np.ndarray]) -> np.ndarray:
            return np.asarray(self.session.run(None, feed)[0], np.float32)

        return _run_batches(run, self.tokenizer, texts, self.max_tokens, batch_size)


class OpenVinoEncoder:
    """Texts through OpenVINO, static int8 (thread-safe: requests are made per call).

    A question runs on one request with every thread (latency). A batch of texts
    runs as one stream per thread, one thread each, fed batches of 16 through an
    async queue: on the BBC subset 403 texts/s against 355 for batches of 32 on
    one two-thread request (medians of 3, 2 cores; /tmp probe, README)."""

    BATCH = 16

    def __init__(
        self, xml: Path, tokenizer: PreTrainedTokenizerBase, threads: int, max_tokens: int
    ) -> None:
        import openvino as ov

        self.core, self.xml, self.threads = ov.Core(), xml, max(1, threads)
        config = {
            "INFERENCE_NUM_THREADS": self.threads,
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        self.compiled = self.core.compile_model(str(xml), "CPU", config)
        self._streams: Any = None  # the throughput model, compiled on the first batch
        self.tokenizer, self.max_tokens = tokenizer, max_tokens
        self.backend_id = f"openvino:{sha256_file(xml.with_suffix('.bin'))[:16]}"

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        if len(texts) <= 1 or self.threads == 1:
            request = self.compiled.create_infer_request()

            def run(feed: dict[str, np.ndarray]) -> np.ndarray:
                return np.array(request.infer(feed)[0], np.float32)

            return _run_batches(run, self.tokenizer, texts, self.max_tokens, batch_size)
        import openvino as ov

        if self._streams is None:
            config = {
                "INFERENCE_NUM_THREADS": self.threads,
                "INFERENCE_PRECISION_HINT": "f32",
                "PERFORMANCE_HINT": "THROUGHPUT",
                "NUM_STREAMS": self.threads,
            }
            self._streams = self.core.compile_model(str(self.xml), "CPU", config)
        out = np.zeros((len(texts), self._streams.output(0).partial_shape[1].get_length()))
        queue = ov.AsyncInferQueue(self._streams, self.threads)

        def done(request: Any, at: np.ndarray) -> None:
            out[at] = request.get_output_tensor(0).data

        queue.set_callback(done)
        for at, feed in _feeds(self.tokenizer, texts, self.max_tokens, self.BATCH):
            queue.start_async(feed, at)
        queue.wait_all()
        return out.astype(np.float32)


def calibration_texts(seeds: Path, limit: int = 300) -> list[str]:
    """Paragraphs and sentences of the seed articles (in the repository): what the
    static int8 graph is calibrated on, the same on every machine."""
    from ..chunk import sentences

    texts: list[str] = []
    for path in sorted(seeds.glob("*")):
        if path.suffix not in (".txt", ".md"):
            continue
        for para in path.read_text("utf-8", errors="replace").split("\n\n"):
            para = " ".join(para.split())
            if len(para) < 40:
                continue
            texts.append(para)
            texts += [para[s:e] for s, e in sentences(para) if e - s >= 20]
    return texts[:limit]


def _quantize_onnx(fp32: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        quantize_dynamic(
            str(fp32),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _quantize_openvino(
    fp32: Path, out: Path, tokenizer: PreTrainedTokenizerBase, texts: list[str], max_tokens: int
) -> None:
    import nncf
    import openvino as ov

    def feed(text: str) -> dict[str, np.ndarray]:
        return next(_feeds(tokenizer, [text], max_tokens, 1))[1]

    model = ov.Core().read_model(str(fp32))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(texts, feed),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(texts),
    )
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.xml")
    try:
        ov.save_model(quantized, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(tmp, out)  # the xml last: its presence says the pair is complete
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".bin").unlink(missing_ok=True)


def load_batch_encoder(
    backend: str,
    model: SentenceTransformer,
    weights_sha256: str,
    cache_dir: Path,
    threads: int,
    seeds: Path,
) -> BatchEncoder:
    """The int8 encoder of ``backend`` ("onnx" or "openvino"), built on first use."""
    max_tokens = int(cast(int, model.max_seq_length))
    fp32 = export_path(cache_dir, weights_sha256)
    if not fp32.exists():
        log.info("exporting the model to %s (once)", fp32)
        _export(model, fp32)
    if backend == "onnx":
        path = fp32.with_name(fp32.stem + "-int8-dynamic.onnx")
        if not path.exists():
            log.info("quantising to %s (once)", path)
            _quantize_onnx(fp32, path)
        return OnnxInt8Encoder(path, model.tokenizer, threads, max_tokens)
    if backend == "openvino":
        texts = calibration_texts(seeds)
        if not texts:
            raise IndexUnavailable(f"no seed articles in {seeds} to calibrate the int8 model on")
        recipe = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:12]
        xml = fp32.with_name(f"{fp32.stem}-ov-int8-{recipe}.xml")
        if not xml.exists():
            log.info("quantising to %s on %d seed texts (once)", xml, len(texts))
            _quantize_openvino(fp32, xml, model.tokenizer, texts, max_tokens)
        return OpenVinoEncoder(xml, model.tokenizer, threads, max_tokens)
    raise IndexUnavailable(f"unknown backend {backend!r}: one of {', '.join(BACKENDS)}")
