"""Passages embedded on a Ray cluster (``karabakh-qa index --ray [ADDRESS]``): Ray Data
maps batches over actors that each load the model with one torch thread; a single text
(a question) stays local. Ray Data starts a new actor pool for every dataset it runs
(new worker pids on each call), so each encode() of several texts pays one model load
per actor, in parallel: give it thousands of texts per call, not one batch."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np

from ..errors import BadRequest, IndexUnavailable
from .models import Embedder, load_embedder

log = logging.getLogger(__name__)

Simple = str | int | float | bool | None  # what a loader argument may be on the way to Ray


class _EncodeActor:
    """One actor of the pool: the driver's embedder rebuilt here, then batches through it."""

    def __init__(
        self, name: str, kwargs: dict[str, Simple], paths: list[str], model_id: str, batch_size: int
    ) -> None:
        args: dict[str, Any] = {k: Path(str(v)) if k in paths else v for k, v in kwargs.items()}
        args["query_runtime"] = "torch"  # passages only: no ONNX question graph per actor
        self.embedder, self.batch_size = load_embedder(name, threads=1, **args), batch_size
        got = f"{self.embedder.weights_sha256} {self.embedder.backend_id}"
        if got != model_id:  # another model or int8 graph on this node: other vectors
            raise IndexUnavailable(
                f"model {name!r} on Ray node {socket.gethostname()} is {got!r}, not {model_id!r}"
            )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        return {"i": batch["i"], "vector": self.embedder.encode(texts, self.batch_size)}


def _probe(address: str) -> None:
    """Fail fast when nothing listens at ``address`` (ray.init retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:  # "auto" and the like are left to ray.init
        if host and port.isdigit():
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise IndexUnavailable(f"no Ray cluster answers at {address}: {exc}") from None


class RayEmbedder:
    """An Embedder whose encode() of several texts runs on Ray actors.
    ``texts_per_call`` tells a build to send a whole batch of articles' texts in one
    call (each call starts a pool, one model load per actor). ``base``, the same
    model loaded here, gives name, dim, hashes, token counts and single-text vectors;
    each actor calls load_embedder(base.name, threads=1, **loader_kwargs) (Path values
    travel as str). ``address`` None starts a local cluster of ``actors`` CPUs."""

    def __init__(
        self,
        base: Embedder,
        address: str | None,
        actors: int = 2,
        loader_kwargs: Mapping[str, Simple | Path] | None = None,
    ) -> None:
        if actors < 1:
            raise BadRequest(f"Ray actors must be at least 1, not {actors}")
        self.base, self.address, self.actors = base, address, actors
        self.texts_per_call = 1 << 40  # everything at once: see the class docstring
        self.name, self.dim, self.backend_id = base.name, base.dim, base.backend_id
        kwargs = dict(loader_kwargs or {})
        for key, value in kwargs.items():
            if not isinstance(value, str | int | float | bool | Path | None):
                raise BadRequest(f"loader argument {key}={value!r} cannot be sent to Ray actors")
        paths = sorted(k for k, v in kwargs.items() if isinstance(v, Path))
        simple = {k: str(v) if isinstance(v, Path) else v for k, v in kwargs.items()}
        model_id = f"{base.weights_sha256} {base.backend_id}"  # what every actor must load
        self._spec = dict(name=base.name, kwargs=simple, paths=paths, model_id=model_id)
        self.last_timing: dict[str, float] = {}  # of the last Ray encode(): first_batch_s, total_s
        self._connected = self._connect()

    def _connect(self) -> bool:
        """Join ``address`` or start a local cluster; True when this object called ray.init."""
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # else a token under ~/.ray
        import ray  # deferred: an optional dependency, slow to import

        if self.address is not None:
            _probe(self.address)
        if ray.is_initialized():
            log.info("Ray already initialised in this process: using that connection")
            return False
        started = time.perf_counter()
        quiet: dict[str, Any] = {"log_to_driver": False, "ignore_reinit_error": True}
        if self.address is None:  # "local", not None: RAY_ADDRESS must not redirect it
            ray.init(address="local", num_cpus=self.actors, include_dashboard=False, **quiet)
        else:
            try:
                ray.init(address=self.address, **quiet)
            except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
                message = f"cannot join the Ray cluster at {self.address}: {exc}"
                raise IndexUnavailable(message) from exc
        log.info("Ray: joined %s in %.1f s", self.address or "local", time.perf_counter() - started)
        return True

    @property
    def weights_sha256(self) -> str:
        return self.base.weights_sha256

    @property
    def token_counter(self) -> Callable[[str], int]:
        return self.base.token_counter

    def count_tokens(self, text: str) -> int:
        return self.base.count_tokens(text)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Vectors of ``texts`` in their order: one text locally, more as one Ray Data
        job over a new actor pool (longest first, so a batch carries little padding)."""
        if len(texts) <= 1:
            return self.base.encode(texts, batch_size)
        import ray.data

        # >= 4 tasks per actor (balance), each of 1-8 model batches (less per-task overhead)
        rows = max(batch_size, min(8 * batch_size, -(-len(texts) // (4 * self.actors))))
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        items = [{"i": i, "text": texts[i]} for i in order]
        mapped = ray.data.from_items(items, override_num_blocks=-(-len(texts) // rows)).map_batches(
            _EncodeActor,
            fn_constructor_kwargs={**self._spec, "batch_size": batch_size},
            batch_size=rows,
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            num_cpus=1,
            batch_format="numpy",
        )
        out = np.full((len(texts), self.dim), np.nan, dtype=np.float32)
        timing = self.last_timing = {}
        started = time.perf_counter()
        try:
            for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
                timing.setdefault("first_batch_s", time.perf_counter() - started)
                out[batch["i"]] = batch["vector"]
        except ray.exceptions.RayError as exc:  # its last line: the actor's own error
            last = (str(exc).strip() or repr(exc)).splitlines()[-1]
            raise IndexUnavailable(f"embedding on Ray failed: {last}") from exc
        if np.isnan(out).any():
            raise IndexUnavailable(f"Ray returned {len(texts)} texts without all their vectors")
        timing["total_s"] = time.perf_counter() - started
        log.info("Ray: %d texts, first batch %.1f s, all %.1f s", len(texts), *timing.values())
        return out

    def close(self) -> None:
        """Leave Ray (stopping the local cluster) if this object joined or started it."""
        if self._connected:
            import ray

            ray.shutdown()
            self._connected = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
