"""Passage embedding on a Ray cluster, for ``karabakh-qa index --ray [ADDRESS]``.

Ray Data maps batches of texts over a pool of actors, each holding its own copy of
the model (``load_embedder(name, threads=1, ...)``), so a build can use every core
of a cluster; a single text (a question) stays on the local model. Ray Data starts
a fresh actor pool for every dataset it runs (measured: new worker pids on each
call), so every encode() of more than one text pays one model load per actor, in
parallel (torch: several seconds): give it thousands of texts per call.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from .embed import Embedder, load_embedder
from .errors import BadRequest, IndexUnavailable

log = logging.getLogger(__name__)

Simple = str | int | float | bool | None


class _EncodeActor:
    """One actor of the pool: the driver's embedder rebuilt here, then batches through it."""

    def __init__(self, name: str, kwargs: dict[str, Simple], sha: str, batch_size: int) -> None:
        args: dict[str, Any] = {k: Path(v[5:]) if str(v).startswith(PATH) else v
                                for k, v in kwargs.items()}  # fmt: skip
        args["query_runtime"] = "torch"  # passages only: no ONNX question graph per actor
        self.embedder = load_embedder(name, threads=1, **args)
        self.batch_size = batch_size
        if self.embedder.weights_sha256 != sha:  # another model on this node: other vectors
            raise IndexUnavailable(f"model {name!r} on Ray node {socket.gethostname()} has "
                                   f"weights {self.embedder.weights_sha256[:12]}, not {sha[:12]}")  # fmt: skip

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        return {"i": batch["i"], "vector": self.embedder.encode(texts, self.batch_size)}


def _probe(address: str) -> None:
    """Fail fast when nothing listens at ``address`` (ray.init retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():  # "auto" and the like: ray.init resolves them
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise IndexUnavailable(f"no Ray cluster answers at {address}: {exc}") from None


class RayEmbedder:
    """An :class:`Embedder` whose multi-text encode() runs on Ray actors.

    ``base`` is the same model loaded locally: it gives name, dim, weights hash and
    token counts, and encodes single texts. ``loader_kwargs`` are passed to
    load_embedder in each actor (Path values travel as str and are rebuilt).
    ``address`` None starts a local cluster of ``actors`` CPUs, stopped by close().
    """

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
        self.name, self.dim, self.backend_id = base.name, base.dim, base.backend_id
        kwargs = dict(loader_kwargs or {})
        for key, value in kwargs.items():
            if not isinstance(value, str | int | float | bool | Path | type(None)):
                raise BadRequest(f"loader argument {key}={value!r} cannot be sent to Ray actors")
        self._paths = sorted(k for k, v in kwargs.items() if isinstance(v, Path))
        self._kwargs: dict[str, Simple] = {
            k: str(v) if isinstance(v, Path) else v for k, v in kwargs.items()
        }
        self.last_timing: dict[str, float] = {}  # of the last Ray encode(): first_batch_s, total_s
        self._started = self._connect()

    def _connect(self) -> bool:
        """Join ``address`` or start a local cluster; True when this object called ray.init."""
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # else a token under ~/.ray
        import ray  # deferred: an optional dependency, slow to import

        if ray.is_initialized():
            log.info("Ray already initialised in this process: using that connection")
            return False
        where = self.address or "a new local cluster"
        started = time.perf_counter()
        if self.address is None:  # "local", not None: RAY_ADDRESS must not redirect it
            ray.init(
                address="local",
                num_cpus=self.actors,
                include_dashboard=False,
                log_to_driver=False,
                ignore_reinit_error=True,
            )
        else:
            _probe(self.address)
            try:
                ray.init(address=self.address, log_to_driver=False, ignore_reinit_error=True)
            except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
                raise IndexUnavailable(
                    f"cannot connect to the Ray cluster at {self.address}: {exc}"
                ) from exc
        log.info("Ray: %s ready in %.1f s", where, time.perf_counter() - started)
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

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        # >= 4 tasks per actor (balance), each of 1-8 model batches (less per-task overhead)
        rows = max(batch_size, min(8 * batch_size, -(-len(texts) // (4 * self.actors))))
        items = [{"i": i, "text": texts[i]} for i in order]
        dataset = ray.data.from_items(items, override_num_blocks=-(-len(texts) // rows))
        mapped = dataset.map_batches(
            _EncodeActor,
            fn_constructor_kwargs=self._actor_kwargs(),
            fn_kwargs={"batch_size": batch_size},
            batch_size=rows,
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            num_cpus=1,
            batch_format="numpy",
        )
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        seen = np.zeros(len(texts), dtype=bool)
        self.last_timing, started = {}, time.perf_counter()
        for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
            self.last_timing.setdefault("first_batch_s", time.perf_counter() - started)
            out[batch["i"]] = batch["vector"]
            seen[batch["i"]] = True
        if not seen.all():
            raise IndexUnavailable(f"Ray returned {seen.sum()} of {len(texts)} vectors")
        self.last_timing["total_s"] = time.perf_counter() - started
        log.info("Ray: %d texts in %.1f s, first batch after %.1f s", len(texts), *self._times())
        return out

    def _actor_kwargs(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kwargs": self._kwargs,
            "paths": self._paths,
            "sha": self.weights_sha256,
        }

    def _times(self) -> tuple[float, float]:
        return self.last_timing["total_s"], self.last_timing["first_batch_s"]

    def close(self) -> None:
        """Disconnect from Ray (stopping a local cluster) if this object connected."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
