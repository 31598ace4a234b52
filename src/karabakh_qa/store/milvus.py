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
articles): :meth:`MilvusStore.sync` applies its diff by article. Three collections:
``<name>`` (passages), ``<name>_files`` (file -> its sha256, metadata and relations) and
``<name>_terms`` (document frequencies of our tokeniser's terms, which the answer
rule and the term coverage read; Milvus's BM25 keeps its own). Readers never see
half an article or two versions of one: passage and file rows carry the generation
that wrote them (``born``), and the state row (in ``<name>_meta``) says which
generation readers see and which files' older rows are being retired::

    1. state.pending = G+1              (rows of G+1 are invisible: born <= G)
    2. insert the new and changed articles' passage and file rows, born = G+1
    3. state = G+1, retiring = {changed and removed files}
                                         (readers skip their rows born < G+1)
    4. delete the retiring files' rows born < G+1; update the touched terms' df
    5. state.retiring = {}

A sync interrupted before 3 is rolled back by the next one (rows born > G are
deleted); after 3, the next one finishes 4 and 5 first. A diff of more than
``SYNC_CHUNK`` articles is applied as several generations (each article whole).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import IndexUnavailable
from ..records import Passage
from ..sparse import tokenize
from .embedded.bm25 import average_idf
from .embedded.rows import embed_text
from .embedded.search import Snapshot
from .embedded.vectors import decode
from .protocol import Filters

if TYPE_CHECKING:
    from .milvus_view import MilvusView

log = logging.getLogger(__name__)

TOKEN_ENV = "KARABAKH_QA_MILVUS_TOKEN"
STATE_KEY = "state"
INSERT_BATCH = 512
SYNC_CHUNK = 400  # articles per generation (the retiring list lives in the state row)
READ_BATCH = 4096
QUERY_LIMIT = 16_384  # Milvus's cap on the rows of one query
TEXT_LIMIT = 65_535  # Milvus's VARCHAR limit, in bytes
LAYOUT = 2  # the collections' layout; a store of another is rebuilt by the next sync


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
    timeout: float = 5.0  # seconds per call of a question
    write_timeout: float = 300.0  # seconds per call of a sync (bulk inserts, deletes, flushes)


@dataclass(frozen=True)
class State:
    """The generation readers see, the files whose older rows are retiring, and the
    BM25 statistics of our tokeniser over the live passages (for the idf floor)."""

    generation: int = 0
    pending: int | None = None
    retiring: tuple[str, ...] = ()
    passages: int = 0  # live passages: BM25's N
    idf_floor: float = 0.0  # rank-bm25's epsilon * average idf
    synced: str = ""  # the embedded generation (manifest name) the store holds
    articles: int = 0  # live articles
    sentences: dict[str, Any] | None = None  # the sentence codes' VectorCodec
    layout: int = LAYOUT

    def reader_filter(self) -> str:
        """The filter that shows a reader exactly one version of each article."""
        expr = f"born <= {self.generation}"
        if self.retiring:
            names = json.dumps(list(self.retiring), ensure_ascii=False)
            expr += f" and not (file in {names} and born < {self.generation})"
        return expr

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        data["retiring"] = tuple(data.get("retiring", ()))
        data.setdefault("layout", 1)  # written before the layout was recorded
        return cls(**data)


@dataclass(frozen=True)
class Found:
    """A passage as the store returns it, with the score of the search that found it."""

    passage: Passage
    score: float


class MilvusStore:
    """One collection of passages in Milvus (or Milvus Lite): a
    :class:`~karabakh_qa.store.protocol.Store`."""

    kind = "milvus"

    def __init__(self, settings: MilvusSettings, dim: int) -> None:
        self.settings, self.dim = settings, dim
        self.client = _connect(settings)
        self.passages = settings.collection
        self.meta = f"{settings.collection}_meta"
        self.files = f"{settings.collection}_files"
        self.terms = f"{settings.collection}_terms"
        self._articles: tuple[State, dict[str, dict[str, Any]]] | None = None
        self._call(self._ensure_collections)
        # Loaded now, not on the first question (Milvus Lite reads 100k rows in ~9 s).
        for name in (self.passages, self.meta, self.files, self.terms):
            self._call(self.client.load_collection, name, timeout=settings.write_timeout)

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

    def reset(self) -> None:
        """Empty the store: its collections dropped and made again (an evaluation's)."""
        for name in (self.passages, self.meta, self.files, self.terms):
            self._call(self.client.drop_collection, name, timeout=self.settings.timeout)
        self._call(self._ensure_collections)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 (closing a dead connection)
            log.debug("closing the Milvus client failed", exc_info=True)

    # --- schema ----------------------------------------------------------------------

    def _ensure_collections(self) -> None:
        from pymilvus import DataType, Function, FunctionType

        c, t = self.client, self.settings.timeout
        small = {  # collection -> its fields (Milvus wants a vector field in each)
            self.meta: [("key", DataType.VARCHAR, 64), ("value", DataType.VARCHAR, TEXT_LIMIT)],
            self.files: [
                ("key", DataType.VARCHAR, 1100),
                ("file", DataType.VARCHAR, 1024),
                ("sha256", DataType.VARCHAR, 64),
                ("born", DataType.INT64, 0),
                ("relations", DataType.VARCHAR, TEXT_LIMIT),  # JSON: relations_of(file)
                ("meta", DataType.VARCHAR, TEXT_LIMIT),  # JSON: the article's metadata
            ],
            self.terms: [("key", DataType.VARCHAR, 256), ("df", DataType.INT64, 0)],
        }
        for name, fields in small.items():
            if c.has_collection(name, timeout=t):
                continue
            schema = c.create_schema(auto_id=False)
            for i, (field_name, kind, length) in enumerate(fields):
                extra = {"max_length": length} if kind == DataType.VARCHAR else {}
                schema.add_field(field_name, kind, is_primary=i == 0, **extra)
            schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
            index = c.prepare_index_params()
            index.add_index("v", index_type="FLAT", metric_type="L2")
            c.create_collection(name, schema=schema, index_params=index, timeout=t)
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
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_LIMIT)
        # what BM25 reads: the title and section, then the text (as the embedded index)
        schema.add_field(
            "lexical",
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
                input_field_names=["lexical"],
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

    def state(self, timeout: float | None = None) -> State:
        """The state row (``timeout``: a sync's, else a question's)."""
        rows = self._call(
            self.client.get,
            self.meta,
            ids=[STATE_KEY],
            output_fields=["value"],
            timeout=timeout or self.settings.timeout,
        )
        return State.from_json(rows[0]["value"]) if rows else State()

    def _reader(self) -> State:
        """The state a read sees; a store of another layout cannot be read."""
        state = self.state()
        if state.layout != LAYOUT:
            raise StoreUnavailable(
                f"the Milvus store at {self.settings.uri} was written by another version "
                f"(layout {state.layout}, this one reads {LAYOUT}): run `karabakh-qa index "
                "--full` to rewrite it"
            )
        return state

    def _save_state(self, state: State) -> None:
        value = state.to_json()
        if len(value.encode()) > TEXT_LIMIT:
            raise StoreUnavailable("the Milvus state row is too large (retiring too many files)")
        row = {"key": STATE_KEY, "value": value, "v": [0.0, 0.0]}
        self._call(self.client.upsert, self.meta, [row], timeout=self.settings.timeout)

    def _delete(self, expr: str) -> None:
        """Delete the passage and file rows that ``expr`` selects."""
        for name in (self.passages, self.files):
            t = self.settings.write_timeout
            self._call(self.client.delete, name, filter=expr, timeout=t)

    def _recover(self, state: State) -> State:
        """Finish or roll back a sync that stopped half-way (see the module's steps)."""
        if state.pending is not None:
            log.warning("rolling back an interrupted sync of generation %d", state.pending)
            self._delete(f"born > {state.generation}")
            state = dataclasses.replace(state, pending=None)
        if state.retiring:
            names = json.dumps(list(state.retiring), ensure_ascii=False)
            self._delete(f"file in {names} and born < {state.generation}")
            state = dataclasses.replace(state, retiring=())
        self._save_state(state)
        return state

    def stored_files(
        self, state: State | None = None, names: list[str] | None = None
    ) -> dict[str, str]:
        """File -> sha256 of the articles readers see, or of those of ``names``."""
        state = state or self.state()
        if names is not None and not names:
            return {}
        only = f"{files_in(names)} and " if names else ""
        rows = self._scan(self.files, f"{only}({state.reader_filter()})", ["file", "sha256"])
        return {r["file"]: r["sha256"] for r in rows}

    def _scan(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every row of ``collection`` that ``expr`` selects, in batches (a sync's read)."""
        it = self._call(
            self.client.query_iterator,
            collection,
            batch_size=READ_BATCH,
            filter=expr,
            output_fields=fields,
            timeout=self.settings.write_timeout,
        )
        try:
            while batch := self._call(it.next):
                yield from batch
        finally:
            it.close()

    def _file_rows(
        self, names: list[str], state: State, fields: list[str], timeout: float
    ) -> list[dict[str, Any]]:
        """The file rows of ``names`` that readers of ``state`` see."""
        if not names:
            return []
        expr = f"{files_in(names)} and ({state.reader_filter()})"
        rows = self._call(
            self.client.query,
            self.files,
            filter=expr,
            output_fields=fields,
            limit=QUERY_LIMIT,
            timeout=timeout,
        )
        return [dict(r) for r in rows]

    def df(self, terms: list[str]) -> np.ndarray:
        """Live document frequency of each of our tokeniser's terms (0: unknown)."""
        if not terms:
            return np.zeros(0, np.int64)
        rows = self._call(
            self.client.get,
            self.terms,
            ids=list(dict.fromkeys(terms)),
            output_fields=["df"],
            timeout=self.settings.timeout,
        )
        found = {r["key"]: int(r["df"]) for r in rows}
        return np.array([found.get(t, 0) for t in terms], np.int64)

    # --- writes ----------------------------------------------------------------------

    def sync(
        self, snapshot: Snapshot, since: str | None = None, names: list[str] | None = None
    ) -> dict[str, int]:
        """Make the collections hold exactly ``snapshot``'s live articles: insert the
        new and changed ones, delete the changed and removed ones, readers switching
        at once (the module's steps). With ``names`` (a build's diff) and ``since``
        (the generation it was built on), only those articles are compared, if the
        store holds ``since``; otherwise every file is. Returns counts."""
        state = self.state(self.settings.write_timeout)  # Lite loads the collection first
        if state.layout != LAYOUT:
            log.warning(
                "the Milvus store has layout %d, not %d: rewriting it", state.layout, LAYOUT
            )
            self.reset()
            state = State()
        if state.pending is not None or state.retiring:
            state = self._recover(state)
        if names is not None and since is not None and state.synced == since:
            live = {n: str(meta["sha256"]) for n in names if (meta := _meta(snapshot, n))}
            stored = self.stored_files(state, names)
        else:
            live = {n: str(meta["sha256"]) for n, meta in snapshot.article_metas.items()}
            stored = self.stored_files(state)
        fresh = sorted(n for n, sha in live.items() if stored.get(n) != sha)
        gone = sorted(n for n in stored if n not in live)
        counts = {"added": 0, "changed": 0, "removed": 0, "rows": 0}
        work = [(n, True) for n in fresh] + [(n, False) for n in gone]
        for lo in range(0, len(work), SYNC_CHUNK):
            chunk = work[lo : lo + SYNC_CHUNK]
            state, rows = self._apply(snapshot, state, chunk, stored)
            counts["rows"] += rows
            for name, present in chunk:
                kind = (
                    "changed" if present and name in stored else "added" if present else "removed"
                )
                counts[kind] += 1
        m = snapshot.manifest
        self._save_state(
            dataclasses.replace(
                state,
                synced=m.file_name,
                articles=m.live_articles,
                sentences=dataclasses.asdict(m.sentences),
            )
        )
        return counts

    def _apply(
        self,
        snapshot: Snapshot,
        state: State,
        chunk: list[tuple[str, bool]],
        stored: dict[str, str],
    ) -> tuple[State, int]:
        """One generation: the chunk's articles (present: new or changed, else removed)."""
        t = self.settings.write_timeout
        new = state.generation + 1
        self._save_state(dataclasses.replace(state, pending=new))
        present = [n for n, here in chunk if here]
        retiring = tuple(n for n, here in chunk if not here or n in stored)
        old_terms, old_ids = self._stored_terms(retiring, state)
        old_rows = self._file_rows(list(retiring), state, ["relations"], t)
        partners = {r["file"] for row in old_rows for r in json.loads(row["relations"])}
        rows, new_terms = 0, set()
        for batch in _batches(self._rows(snapshot, present, new), INSERT_BATCH):
            for row in batch:
                new_terms.update(tokenize(row["lexical"]))
            self._call(self.client.insert, self.passages, batch, timeout=t)
            rows += len(batch)
        files = [self._file_row(snapshot, n, new) for n in present]
        for batch in _batches(iter(files), INSERT_BATCH):
            self._call(self.client.insert, self.files, batch, timeout=t)
        for name in (self.passages, self.files):
            self._call(self.client.flush, name, timeout=t)
        bm25 = snapshot.bm25
        floor = float(bm25.params.epsilon * average_idf(bm25.n, bm25.hist))
        m = snapshot.manifest
        sentences = dataclasses.asdict(m.sentences)
        state = State(new, None, retiring, int(bm25.n), floor, "", m.live_articles, sentences)
        self._save_state(state)
        self._update_terms(sorted(old_terms | new_terms), snapshot)
        state = self._recover(state)
        self._regroup(snapshot, state, present, old_ids)
        partners |= {r["file"] for n in present for r in snapshot.relations_of(n)}
        self._relink(snapshot, state, partners - set(present))
        return state, rows

    def _regroup(
        self, snapshot: Snapshot, state: State, present: list[str], old_ids: set[str]
    ) -> None:
        """Rows of other articles whose near-duplicate group got another representative
        with this generation (it left with ``old_ids``, or a copy in a ``present``
        article represents the group now): their articles' rows are written again
        with the representative the snapshot gives, their generation unchanged."""
        files: set[str] = set()
        for name in present:
            found = snapshot.article(name)
            for row in found[1] if found else []:
                members = snapshot.groups.members(row)
                files.update(str(snapshot.article_of(m)["source"]) for m in members)
        others = sorted(files - set(present))
        expr = [files_in(others)] if others else []
        if old_ids:
            expr.append(f"group in {json.dumps(sorted(old_ids))}")
        if not expr:  # (an empty "in" list trips Milvus Lite's query engine)
            return
        reader = state.reader_filter()
        t = self.settings.write_timeout
        found_rows = self.query(f"({' or '.join(expr)}) and ({reader})", ("file",), t)
        for name in sorted({r["file"] for r in found_rows} - set(present)):
            expr_file = f"file == {json.dumps(name)} and ({reader})"
            stored = self.query(expr_file, ("group", "born"), t)
            if not stored:
                continue
            rows = list(self._rows(snapshot, [name], int(stored[0]["born"])))
            if {r["id"]: r["group"] for r in stored} != {r["id"]: r["group"] for r in rows}:
                self._call(self.client.upsert, self.passages, rows, timeout=t)

    def _file_row(self, snapshot: Snapshot, name: str, born: int) -> dict[str, Any]:
        """An article's file row: its sha256 and its relations to other articles."""
        meta = _meta(snapshot, name)
        relations = json.dumps(snapshot.relations_of(name), ensure_ascii=False)
        if len(relations.encode()) > TEXT_LIMIT:  # a story copied hundreds of times
            relations = "[]"
            log.warning("%s: too many relations to keep in Milvus; none kept", name)
        return {
            "key": f"{born}:{name}",
            "file": name,
            "sha256": meta["sha256"] if meta else None,
            "born": born,
            "relations": relations,
            "meta": json.dumps(meta, ensure_ascii=False),
            "v": [0.0, 0.0],
        }

    def _relink(self, snapshot: Snapshot, state: State, names: set[str]) -> None:
        """The file rows of ``names`` (live, not written by this generation) with the
        relations the snapshot gives them now: a new, changed or removed article
        changes its partners' relations too."""
        t = self.settings.write_timeout
        rows = self._file_rows(sorted(names), state, ["file", "born", "relations"], t)
        fresh = []
        for r in rows:
            row = self._file_row(snapshot, r["file"], int(r["born"]))
            if row["relations"] != r["relations"]:
                fresh.append(row)
        if fresh:
            self._call(self.client.upsert, self.files, fresh, timeout=t)

    def relations_of(self, name: str, state: State | None = None) -> list[dict[str, Any]]:
        """Article ``name``'s relations (versions, copies, corroboration), as stored."""
        rows = self._file_rows([name], state or self.state(), ["relations"], self.settings.timeout)
        return list(json.loads(rows[0]["relations"])) if rows else []

    def _stored_terms(self, files: tuple[str, ...], state: State) -> tuple[set[str], set[str]]:
        """Our tokeniser's terms, and the passage ids, of the stored rows of ``files``."""
        terms: set[str] = set()
        ids: set[str] = set()
        if not files:
            return terms, ids
        expr = f"{files_in(list(files))} and ({state.reader_filter()})"
        for r in self._scan(self.passages, expr, ["lexical"]):
            terms.update(tokenize(r["lexical"]))
            ids.add(r["id"])
        return terms, ids

    def _update_terms(self, terms: list[str], snapshot: Snapshot) -> None:
        """The touched terms' live document frequencies, as the snapshot counts them."""
        t = self.settings.write_timeout
        for lo in range(0, len(terms), READ_BATCH):
            part = terms[lo : lo + READ_BATCH]
            df = snapshot.bm25.df(part).tolist()
            keep = [
                {"key": w, "df": d, "v": [0.0, 0.0]} for w, d in zip(part, df, strict=True) if d > 0
            ]
            drop = [w for w, d in zip(part, df, strict=True) if d == 0]
            if keep:
                self._call(self.client.upsert, self.terms, keep, timeout=t)
            if drop:
                self._call(self.client.delete, self.terms, ids=drop, timeout=t)

    def _rows(self, snapshot: Snapshot, names: list[str], born: int) -> Iterator[dict[str, Any]]:
        """The Milvus rows of the named live articles of ``snapshot``."""
        context = snapshot.manifest.model.embed_context
        for name in names:
            found = snapshot.locate_article(name)
            if found is None:
                continue
            pos, i = found
            seg = snapshot.segments[pos]
            lo, hi = (int(x) for x in seg.a["article_rows"][i : i + 2])
            base = int(snapshot.bases[pos])
            dense = decode(np.asarray(seg.vectors.codes[lo:hi]), seg.codec)
            bounds, term_ptr = seg.a["sent_bounds"], seg.a["sent_term_ptr"]
            vocab, term_ids = seg.a["terms"], seg.a["sent_term_ids"]
            for local in range(lo, hi):
                p = snapshot.passage(base + local)
                s_lo, s_hi = int(bounds[local]), int(bounds[local + 1])
                sentences = {
                    "spans": np.asarray(seg.a["sent_spans"][s_lo:s_hi]).tolist(),
                    # each sentence's distinct BM25 terms (the term coverage reads them)
                    "terms": [
                        [vocab[t].decode() for t in term_ids[term_ptr[i] : term_ptr[i + 1]]]
                        for i in range(s_lo, s_hi)
                    ],
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
                    "lexical": embed_text(p, context),
                    "dense": dense[local - lo].tolist(),
                    "sentences": json.dumps(sentences),
                }

    # --- the Store protocol's reads ---------------------------------------------------

    def view(
        self, question: str, qvec: Callable[[], np.ndarray], depth: int, filters: Filters
    ) -> MilvusView:
        """One question's candidates (store/milvus_view.py)."""
        from .milvus_view import MilvusView

        return MilvusView(self, self._reader(), question, qvec(), depth, filters)

    def articles(self) -> dict[str, dict[str, Any]]:
        """Every live article's metadata by file, in name order (read once per state)."""
        state = self._reader()
        if self._articles is None or self._articles[0] != state:
            rows = self._scan(self.files, state.reader_filter(), ["file", "meta"])
            metas = {r["file"]: json.loads(r["meta"]) for r in rows}
            self._articles = state, dict(sorted(metas.items()))
        return self._articles[1]

    def article_names(self) -> list[str]:
        return list(self.articles())

    def article(self, name: str) -> tuple[dict[str, Any], list[Passage]] | None:
        """A live article's metadata and passages, in text order."""
        state = self._reader()
        t = self.settings.timeout
        found = self._file_rows([name], state, ["meta"], t)
        if not found:
            return None
        expr = f"file == {json.dumps(name, ensure_ascii=False)} and ({state.reader_filter()})"
        rows = sorted(self.query(expr, ("id", *self.FIELDS)), key=lambda r: int(r["start"]))
        return json.loads(found[0]["meta"]), [passage_of(r) for r in rows]

    def passage(self, pid: str) -> Passage | None:
        """A live passage by its id."""
        found = self.records([pid], self._reader())
        return passage_of(found[pid]) if pid in found else None

    def apply(
        self, snapshot: Snapshot, since: str | None, names: list[str] | None
    ) -> dict[str, int]:
        """A build's diff: :meth:`sync`."""
        return self.sync(snapshot, since, names)

    def stats(self) -> dict[str, Any]:
        state = self._reader()
        return {
            "generation": state.generation,
            "articles": state.articles,
            "passages": state.passages,
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
        expr = (state or self.state()).reader_filter()
        hits = self.search(question, "sparse", "BM25", depth, expr, self.FIELDS)
        return [Found(passage_of(h["entity"] | {"id": h["id"]}), h["distance"]) for h in hits]

    def dense(self, qvec: np.ndarray, depth: int, state: State | None = None) -> list[Found]:
        """The top ``depth`` passages by inner product with the question's vector."""
        expr = (state or self.state()).reader_filter()
        data = np.asarray(qvec, np.float32).tolist()
        hits = self.search(data, "dense", "IP", depth, expr, self.FIELDS)
        return [Found(passage_of(h["entity"] | {"id": h["id"]}), h["distance"]) for h in hits]

    def search(
        self,
        data: Any,
        field_name: str,
        metric: str,
        depth: int,
        expr: str,
        output_fields: tuple[str, ...],
    ) -> list[dict[str, Any]]:
        """Milvus's hits (``id``, ``distance``, ``entity``) of one search of the
        passages' ``field_name`` (sparse: BM25 of a text; dense: inner product)."""
        hits = self._call(
            self.client.search,
            self.passages,
            data=[data],
            anns_field=field_name,
            limit=depth,
            filter=expr,
            output_fields=list(output_fields),
            search_params={"metric_type": metric},
            timeout=self.settings.timeout,
        )
        return [dict(h) for h in hits[0]]

    def query(
        self, expr: str, output_fields: tuple[str, ...], timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """The passage rows ``expr`` selects (at most QUERY_LIMIT)."""
        rows = self._call(
            self.client.query,
            self.passages,
            filter=expr,
            output_fields=list(output_fields),
            limit=QUERY_LIMIT,
            timeout=timeout or self.settings.timeout,
        )
        return [dict(r) for r in rows]

    def records(self, ids: list[str], state: State | None = None) -> dict[str, dict[str, Any]]:
        """Stored rows by passage id, as the reader's generation shows them."""
        if not ids:
            return {}
        expr = f"id in {json.dumps(ids)} and ({(state or self.state()).reader_filter()})"
        rows = self.query(expr, (*self.FIELDS, "id", "dense", "sentences", "born"))
        return {r["id"]: r for r in rows}


class _NoMvccNotice(logging.Filter):
    """Milvus Lite keeps no MVCC timestamps, and pymilvus's query iterator warns of
    it on every scan (a sync's): the scan is right all the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in record.getMessage()


def _connect(settings: MilvusSettings) -> Any:
    """A client for ``settings.uri``: Milvus Lite for a file path (started here), a
    server for http(s); an unreachable one is a :class:`StoreUnavailable`."""
    from pymilvus import MilvusClient

    iterator_log = logging.getLogger("pymilvus.orm.iterator")
    if not any(isinstance(f, _NoMvccNotice) for f in iterator_log.filters):
        iterator_log.addFilter(_NoMvccNotice())

    token = os.environ.get(TOKEN_ENV, "")
    try:
        with warnings.catch_warnings():  # milvus-lite 2.5 imports pkg_resources
            warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
            return MilvusClient(uri=settings.uri, token=token, timeout=settings.timeout)
    except Exception as exc:  # noqa: BLE001
        raise StoreUnavailable(
            f"cannot reach the Milvus store at {settings.uri}: {_reason(exc)} "
            "(start Milvus, or check --milvus-uri and $" + TOKEN_ENV + ")"
        ) from None


def files_in(names: list[str]) -> str:
    """The filter ``file in [...]`` (never with an empty list: it trips Milvus Lite)."""
    return f"file in {json.dumps(sorted(names), ensure_ascii=False)}"


def _meta(snapshot: Snapshot, name: str) -> dict[str, Any] | None:
    """A live article's metadata (None: not live), without decoding every article."""
    found = snapshot.locate_article(name)
    return None if found is None else snapshot.segments[found[0]].article_record(found[1])


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def passage_of(row: dict[str, Any]) -> Passage:
    """The Passage of a stored row (empty strings back to None)."""
    return Passage(
        id=str(row["id"]),
        source=row["file"],
        paragraph=int(row["paragraph"]),
        part=int(row["part"]),
        section=row["section"] or None,
        start=int(row["start"]),
        end=int(row["end"]),
        text=row["text"],
        date=row["date"] or None,
        date_source=row["date_source"] or None,
        title=row["title"] or None,
        group=row["group"],
        outlet=row["outlet"] or None,
        url=row["url"] or None,
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
