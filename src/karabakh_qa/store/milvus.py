"""The passages of an index in a Milvus collection (issue "Beyond one machine").

Milvus is sharded and replicated, scores BM25 itself (a sparse field filled by its
BM25 function over the passage text, Lucene's formula) and searches dense vectors;
Milvus Lite, its embedded edition, runs the same C++ engine in a child process and
is what the tests use: the same client code talks to a file path (Lite) or to a
server or cluster by URI (``http://host:19530``, token from the environment).

What is stored, one row per live passage: the stable passage id, its file, the
file's sha256, offsets, paragraph and part, verbatim text, title, section, date,
outlet and url, its near-duplicate group's representative, the dense vector (the
index's 8-bit codes decoded, so that Milvus's inner product equals the embedded
store's cosine), and its sentences (spans and 6-bit codes, packed) for the answer
stage, which reads them for candidates only.

Writes come from a build of the embedded index (which chunks, embeds and relates the
articles): :meth:`MilvusStore.sync` applies its diff by article. Readers never see
half an article or two versions of one: rows carry the generation that wrote them
(``born``), and the collection's state row says which generation readers see and
which files' older rows are being retired::

    1. state.pending = G+1              (rows of G+1 are invisible: born <= G)
    2. insert the new and changed articles' rows with born = G+1
    3. state = G+1, retiring = {changed and removed files}
                                         (readers skip their rows born < G+1)
    4. delete the retiring files' rows born < G+1
    5. state.retiring = {}

A sync interrupted before 3 is rolled back by the next one (rows born > G are
deleted); after 3, the next one finishes 4 and 5 first.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import IndexUnavailable
from ..records import Passage
from .embedded.search import Snapshot
from .embedded.vectors import decode

log = logging.getLogger(__name__)

TOKEN_ENV = "KARABAKH_QA_MILVUS_TOKEN"
STATE_KEY = "state"
INSERT_BATCH = 512
TEXT_LIMIT = 65_535  # Milvus's VARCHAR limit, in bytes


class StoreUnavailable(IndexUnavailable):
    """The Milvus store cannot be reached or answered too slowly (503)."""


@dataclass(frozen=True)
class MilvusSettings:
    """Where the collection lives and how it is indexed."""

    uri: str  # a file path (Milvus Lite) or http(s)://host:port
    collection: str = "karabakh_qa"
    dense_index: str = "FLAT"  # Lite allows FLAT, IVF_FLAT, AUTOINDEX; HNSW on a cluster
    dense_params: dict[str, Any] = field(default_factory=dict)
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    timeout: float = 5.0  # seconds per call


@dataclass(frozen=True)
class State:
    """The generation readers see, and the files whose older rows are retiring."""

    generation: int = 0
    pending: int | None = None
    retiring: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # file -> sha256 of its rows

    def reader_filter(self) -> str:
        """The filter that shows a reader exactly one version of each article."""
        expr = f"born <= {self.generation}"
        if self.retiring:
            names = json.dumps(list(self.retiring), ensure_ascii=False)
            expr += f" and not (file in {names} and born < {self.generation})"
        return expr


@dataclass(frozen=True)
class Found:
    """A passage as the store returns it, with the score of the search that found it."""

    passage: Passage
    score: float


class MilvusStore:
    """One collection of passages in Milvus (or Milvus Lite)."""

    def __init__(self, settings: MilvusSettings, dim: int) -> None:
        self.settings, self.dim = settings, dim
        self.client = _connect(settings)
        self.passages = settings.collection
        self.meta = f"{settings.collection}_meta"
        self._call(self._ensure_collections)

    # --- calls ---------------------------------------------------------------------

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn`` with every Milvus failure turned into :class:`StoreUnavailable`."""
        try:
            return fn(*args, **kwargs)
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 (pymilvus raises many kinds)
            raise StoreUnavailable(
                f"the Milvus store at {self.settings.uri} failed: {_reason(exc)} "
                "(check that Milvus is running and reachable; the embedded index is untouched)"
            ) from None

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"|"degraded", ...}``: never raises."""
        try:
            state = self.state()
            rows = self._call(
                self.client.query,
                self.passages,
                filter=state.reader_filter(),
                output_fields=["count(*)"],
                timeout=self.settings.timeout,
            )
            return {
                "status": "ok",
                "store": "milvus",
                "generation": state.generation,
                "passages": int(rows[0]["count(*)"]),
            }
        except StoreUnavailable as exc:
            return {"status": "degraded", "store": "milvus", "reason": exc.message}

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 (closing a dead connection)
            log.debug("closing the Milvus client failed", exc_info=True)

    # --- schema ----------------------------------------------------------------------

    def _ensure_collections(self) -> None:
        from pymilvus import DataType, Function, FunctionType

        c, t = self.client, self.settings.timeout
        if not c.has_collection(self.meta, timeout=t):
            schema = c.create_schema(auto_id=False)
            schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
            schema.add_field("value", DataType.VARCHAR, max_length=TEXT_LIMIT)
            schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants one
            index = c.prepare_index_params()
            index.add_index("v", index_type="FLAT", metric_type="L2")
            c.create_collection(self.meta, schema=schema, index_params=index, timeout=t)
        if c.has_collection(self.passages, timeout=t):
            return
        schema = c.create_schema(auto_id=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=32)
        schema.add_field("file", DataType.VARCHAR, max_length=1024)
        schema.add_field("born", DataType.INT64)
        for name in ("start", "end", "paragraph", "part"):
            schema.add_field(name, DataType.INT64)
        for name in ("title", "section", "date", "date_source", "outlet", "url", "group"):
            schema.add_field(name, DataType.VARCHAR, max_length=2048)
        schema.add_field(
            "text",
            DataType.VARCHAR,
            max_length=TEXT_LIMIT,
            enable_analyzer=True,
            analyzer_params={"type": "english"},
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("sentences", DataType.VARCHAR, max_length=TEXT_LIMIT)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        index = c.prepare_index_params()
        index.add_index(
            "dense",
            index_type=self.settings.dense_index,
            metric_type="IP",
            params=self.settings.dense_params,
        )
        index.add_index(
            "sparse",
            index_type="SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params={"bm25_k1": self.settings.bm25_k1, "bm25_b": self.settings.bm25_b},
        )
        c.create_collection(self.passages, schema=schema, index_params=index, timeout=t)

    # --- state -----------------------------------------------------------------------

    def state(self) -> State:
        rows = self._call(
            self.client.get,
            self.meta,
            ids=[STATE_KEY],
            output_fields=["value"],
            timeout=self.settings.timeout,
        )
        if not rows:
            return State()
        data = json.loads(rows[0]["value"])
        return State(
            data["generation"],
            data.get("pending"),
            tuple(data.get("retiring", ())),
            dict(data.get("files", {})),
        )

    def _save_state(self, state: State) -> None:
        value = json.dumps(
            {
                "generation": state.generation,
                "pending": state.pending,
                "retiring": list(state.retiring),
                "files": state.files,
            },
            ensure_ascii=False,
        )
        if len(value.encode()) > TEXT_LIMIT:  # a large archive: the file list in chunks
            raise StoreUnavailable("the Milvus state row is too large (more files than it holds)")
        self._call(
            self.client.upsert,
            self.meta,
            [{"key": STATE_KEY, "value": value, "v": [0.0, 0.0]}],
            timeout=self.settings.timeout,
        )

    def _recover(self, state: State) -> State:
        """Finish or roll back a sync that stopped half-way (see the module's steps)."""
        t = self.settings.timeout
        if state.pending is not None:
            log.warning("rolling back an interrupted sync of generation %d", state.pending)
            self._call(
                self.client.delete, self.passages, filter=f"born > {state.generation}", timeout=t
            )
            state = State(state.generation, None, state.retiring, state.files)
        if state.retiring:
            names = json.dumps(list(state.retiring), ensure_ascii=False)
            self._call(
                self.client.delete,
                self.passages,
                filter=f"file in {names} and born < {state.generation}",
                timeout=t,
            )
            state = State(state.generation, None, (), state.files)
        self._save_state(state)
        return state

    # --- writes ----------------------------------------------------------------------

    def sync(self, snapshot: Snapshot) -> dict[str, int]:
        """Make the collection hold exactly ``snapshot``'s live articles: insert the
        new and changed ones, delete the changed and removed ones, readers switching
        at once (the module's steps). Returns counts of articles and rows."""
        state = self.state()
        if state.pending is not None or state.retiring:
            state = self._recover(state)
        live = {name: str(meta["sha256"]) for name, meta in snapshot.article_metas.items()}
        fresh = sorted(n for n, sha in live.items() if state.files.get(n) != sha)
        gone = sorted(n for n in state.files if n not in live)
        changed = [n for n in fresh if n in state.files]
        if not fresh and not gone:
            return {"added": 0, "changed": 0, "removed": 0, "rows": 0}
        new = state.generation + 1
        self._save_state(State(state.generation, new, (), state.files))
        rows = 0
        for batch in _batches(self._rows(snapshot, fresh, new), INSERT_BATCH):
            self._call(self.client.insert, self.passages, batch, timeout=self.settings.timeout)
            rows += len(batch)
        self._call(self.client.flush, self.passages, timeout=self.settings.timeout)
        files = {n: live[n] for n in live}
        self._save_state(State(new, None, tuple(changed + gone), files))
        self._recover(State(new, None, tuple(changed + gone), files))
        return {
            "added": len(fresh) - len(changed),
            "changed": len(changed),
            "removed": len(gone),
            "rows": rows,
        }

    def _rows(self, snapshot: Snapshot, names: list[str], born: int) -> Iterator[dict[str, Any]]:
        """The Milvus rows of the named live articles of ``snapshot``."""
        for name in names:
            found = snapshot.locate_article(name)
            if found is None:
                continue
            pos, i = found
            seg = snapshot.segments[pos]
            lo, hi = (int(x) for x in seg.a["article_rows"][i : i + 2])
            base = int(snapshot.bases[pos])
            dense = decode(np.asarray(seg.vectors.codes[lo:hi]), seg.codec)
            bounds = seg.a["sent_bounds"]
            for local in range(lo, hi):
                p = snapshot.passage(base + local)
                s_lo, s_hi = int(bounds[local]), int(bounds[local + 1])
                sentences = {
                    "spans": np.asarray(seg.a["sent_spans"][s_lo:s_hi]).tolist(),
                    "codes": base64.b64encode(
                        np.ascontiguousarray(seg.a["sent_codes"][s_lo:s_hi]).tobytes()
                    ).decode("ascii"),
                }
                yield {
                    "id": p.id,
                    "file": p.source,
                    "born": born,
                    "start": p.start,
                    "end": p.end,
                    "paragraph": p.paragraph,
                    "part": p.part,
                    "title": p.title or "",
                    "section": p.section or "",
                    "date": p.date or "",
                    "date_source": p.date_source or "",
                    "outlet": p.outlet or "",
                    "url": p.url or "",
                    "group": p.group,
                    "text": p.text,
                    "dense": dense[local - lo].tolist(),
                    "sentences": json.dumps(sentences),
                }

    # --- reads -----------------------------------------------------------------------

    FIELDS = (
        "file",
        "start",
        "end",
        "paragraph",
        "part",
        "title",
        "section",
        "date",
        "date_source",
        "outlet",
        "url",
        "group",
        "text",
    )

    def lexical(self, question: str, depth: int, state: State | None = None) -> list[Found]:
        """Milvus's BM25 top ``depth`` for the question's text."""
        return self._search(question, "sparse", "BM25", depth, state)

    def dense(self, qvec: np.ndarray, depth: int, state: State | None = None) -> list[Found]:
        """The top ``depth`` passages by inner product with the question's vector."""
        return self._search(np.asarray(qvec, np.float32).tolist(), "dense", "IP", depth, state)

    def _search(
        self, query: Any, field_name: str, metric: str, depth: int, state: State | None
    ) -> list[Found]:
        state = state or self.state()
        hits = self._call(
            self.client.search,
            self.passages,
            data=[query],
            anns_field=field_name,
            limit=depth,
            filter=state.reader_filter(),
            output_fields=list(self.FIELDS),
            search_params={"metric_type": metric},
            timeout=self.settings.timeout,
        )
        return [Found(_passage(h), float(h["distance"])) for h in hits[0]]

    def records(self, ids: list[str], state: State | None = None) -> dict[str, dict[str, Any]]:
        """Stored rows by passage id (every field but the sparse one), as the reader's
        generation shows them."""
        state = state or self.state()
        if not ids:
            return {}
        rows = self._call(
            self.client.query,
            self.passages,
            filter=f"id in {json.dumps(ids)} and ({state.reader_filter()})",
            output_fields=[*self.FIELDS, "id", "dense", "sentences", "born"],
            timeout=self.settings.timeout,
        )
        return {r["id"]: dict(r) for r in rows}


def _connect(settings: MilvusSettings) -> Any:
    """A client for ``settings.uri``: Milvus Lite for a file path (started here), a
    server for http(s); an unreachable one is a :class:`StoreUnavailable`."""
    from pymilvus import MilvusClient

    token = os.environ.get(TOKEN_ENV, "")
    try:
        return MilvusClient(uri=settings.uri, token=token, timeout=settings.timeout)
    except Exception as exc:  # noqa: BLE001
        raise StoreUnavailable(
            f"cannot reach the Milvus store at {settings.uri}: {_reason(exc)} "
            "(start Milvus, or check --milvus-uri and $" + TOKEN_ENV + ")"
        ) from None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _passage(hit: dict[str, Any]) -> Passage:
    e = hit.get("entity", hit)
    return Passage(
        id=str(hit.get("id", e.get("id"))),
        source=e["file"],
        paragraph=int(e["paragraph"]),
        part=int(e["part"]),
        section=e["section"] or None,
        start=int(e["start"]),
        end=int(e["end"]),
        text=e["text"],
        date=e["date"] or None,
        date_source=e["date_source"] or None,
        title=e["title"] or None,
        group=e["group"],
        outlet=e["outlet"] or None,
        url=e["url"] or None,
    )


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
