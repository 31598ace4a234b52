"""One question's view of a Milvus store: what the answer pipeline reads of an index
(store/protocol.py ``StoreView``), over the question's candidates only.

The embedded index numbers every passage of a generation; a store on a cluster
cannot hand the service 100M rows. A view is built per question instead: Milvus's
BM25 top ``depth`` and its dense top ``depth`` (within the filters), each
candidate's other score (one filtered BM25 search; inner products with the
returned vectors), and their groups' representatives. They are numbered 0..n-1 in
the order they arrive, and every stage above the seam (fuse, rank, collapse,
decorate, judge) runs on those numbers unchanged. Reads past the candidates (a
group's other members, an article's passages) fetch their rows and number them on.

The lexical feature is Milvus's BM25 (Lucene's idf and saturation over the title,
section and text), not rank-bm25's; the answer rule's key terms and the term
coverage use our tokeniser's document frequencies, kept beside the passages.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any, cast

import numpy as np

from ..records import Passage
from ..relations.versions import Sentence, article_sentences
from .embedded.bm25 import Bm25Query, idf_of
from .embedded.manifest import VectorCodec
from .embedded.search import SentenceFeatures, best_sentences
from .milvus import MilvusStore, State, StoreUnavailable, files_in, passage_of
from .protocol import Filters, Memo

RECORD_FIELDS = (*MilvusStore.FIELDS, "id", "dense", "sentences")


def filter_expr(filters: Filters) -> str:
    """A question's filters as a Milvus expression on the passage rows."""
    parts = []
    if filters.sources:
        parts.append(files_in(list(filters.sources)))
    dated = []
    if filters.since:
        dated.append(f'date >= "{filters.since}"')
    if filters.until:
        dated.append(f'date <= "{filters.until}"')
    if dated:  # undated rows stay: collapse counts them as hidden (or shows them)
        parts.append(f'(date == "" or ({" and ".join(dated)}))')
    return " and ".join(parts)


class _Bm25:
    """BM25 as the pipeline reads it: Milvus's scores of the view's rows, and our
    tokeniser's df and rank-bm25 idf (the answer rule and the coverage)."""

    def __init__(self, view: MilvusView) -> None:
        self.view = view
        self.n = view.state.passages

    def query(self, terms: list[str]) -> Bm25Query:
        counts = Counter(terms)
        distinct = list(counts)
        df = self.view.store.df(distinct)
        raw = idf_of(self.n, df)
        raw = np.where(raw < 0, self.view.state.idf_floor, raw)
        idf = np.where(df > 0, raw, 0.0)
        return Bm25Query(distinct, np.array([counts[t] for t in distinct], np.float64), idf, df)

    def scores(self, q: Bm25Query) -> np.ndarray:
        return self.view.bm25_scores()


class _Groups:
    """Near-duplicate groups: each stored row names its representative's id."""

    def __init__(self, view: MilvusView) -> None:
        self.view = view

    def reps_of(self, rows: np.ndarray) -> np.ndarray:
        """Each row's representative; a row whose stored representative is gone (or
        outside the filters) stands for itself."""
        v = self.view
        v.fetch_ids([v.records[int(r)]["group"] for r in rows])
        return np.array([v.row_of.get(v.records[int(r)]["group"], int(r)) for r in rows], np.int64)

    def members(self, row: int) -> list[int]:
        v = self.view
        group = v.records[row]["group"]
        if group not in v._members_known:
            v.fetch(f"group == {json.dumps(group)}")
            v._members_known.add(group)
        return sorted(i for i, r in enumerate(v.records) if r["group"] == group)


class _Ready:
    """A dense search already done (DenseSearch's interface)."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def work(self) -> None:
        return None

    def result(self) -> np.ndarray:
        return self.rows


class MilvusView(Memo):
    """The candidates of one question in a Milvus store, numbered as rows
    (made by :meth:`MilvusStore.view`, with the state the question reads)."""

    def __init__(
        self,
        store: MilvusStore,
        state: State,
        question: str,
        qvec: np.ndarray,
        depth: int,
        filters: Filters,
    ) -> None:
        self.store, self.state = store, state
        self.where = " and ".join(x for x in (state.reader_filter(), filter_expr(filters)) if x)
        self.records: list[dict[str, Any]] = []
        self.row_of: dict[str, int] = {}
        self.lexical_scores: dict[str, float] = {}
        lexical = store.search(question, "sparse", "BM25", depth, self.where, RECORD_FIELDS)
        self.lexical_scores = {h["id"]: float(h["distance"]) for h in lexical}
        self._add([h["entity"] | {"id": h["id"]} for h in lexical])
        dense = store.search(
            np.asarray(qvec, np.float32).tolist(), "dense", "IP", depth, self.where, RECORD_FIELDS
        )
        self._add([h["entity"] | {"id": h["id"]} for h in dense])
        self.dense_rows = np.array([self.row_of[h["id"]] for h in dense], np.int64)
        # The candidates' groups, numbered now, in one query: their representatives
        # (retrieve scores candidates and representatives alike, on the rows numbered
        # before it starts) and other members (decorate lists them as copies).
        groups = sorted({r["group"] for r in self.records})
        if groups:  # (an empty "in" list trips Milvus Lite's query engine)
            self.fetch(f"group in {json.dumps(groups)}")
        self._members_known = set(groups)
        self.question = question
        self.bm25 = _Bm25(self)
        self.groups = _Groups(self)

    # --- rows ------------------------------------------------------------------------

    def _add(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            if r["id"] not in self.row_of:
                self.row_of[r["id"]] = len(self.records)
                self.records.append(r)

    def fetch(self, expr: str) -> None:
        """Number the stored rows ``expr`` selects (within the reader's generation)."""
        self._add(self.store.query(f"({expr}) and ({self.state.reader_filter()})", RECORD_FIELDS))

    def fetch_ids(self, ids: list[str]) -> None:
        wanted = sorted({i for i in ids if i not in self.row_of})
        if wanted:
            self.fetch(f"id in {json.dumps(wanted)}")

    @property
    def sentence_codec(self) -> VectorCodec:
        """How the sentence codes are packed (the sync that wrote them recorded it)."""
        if self.state.sentences is None:
            raise StoreUnavailable("the Milvus store's state names no sentence codec")
        return VectorCodec(**self.state.sentences)

    @property
    def total_rows(self) -> int:
        return len(self.records)

    def bm25_scores(self) -> np.ndarray:
        """Milvus's BM25 score of every row of the view (0: no query term in it)."""
        missing = [r["id"] for r in self.records if r["id"] not in self.lexical_scores]
        if missing:
            hits = self.store.search(
                self.question,
                "sparse",
                "BM25",
                len(missing),
                f"id in {json.dumps(missing)} and ({self.state.reader_filter()})",
                ("id",),
            )
            self.lexical_scores.update({i: 0.0 for i in missing})
            self.lexical_scores.update({h["id"]: float(h["distance"]) for h in hits})
        return np.array([self.lexical_scores[r["id"]] for r in self.records], np.float64)

    def ids(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.records[int(r)]["id"].encode() for r in rows], dtype="S16")

    def passage(self, row: int) -> Passage:
        return passage_of(self.records[row])

    def previous_passage(self, row: int) -> Passage | None:
        r = self.records[row]
        self.fetch(f"file == {json.dumps(r['file'])} and end <= {int(r['start'])}")
        before = [x for x in self.records if x["file"] == r["file"] and x["end"] <= r["start"]]
        return passage_of(max(before, key=lambda x: x["start"])) if before else None

    def dates_of(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.records[int(r)]["date"] for r in rows], dtype="U10")

    def article_of(self, row: int) -> dict[str, Any]:
        r = self.records[row]
        return {
            "source": r["file"],
            "title": r["title"] or None,
            "date": r["date"] or None,
            "date_source": r["date_source"] or None,
            "url": r["url"] or None,
            "publisher": r["outlet"] or None,
        }

    def rows_where(
        self, sources: tuple[str, ...], since: str | None, until: str | None, undated: bool = False
    ) -> np.ndarray:
        """The view's rows the filters allow (the searches applied them already)."""
        keep = []
        for i, r in enumerate(self.records):
            if sources and r["file"] not in sources:
                continue
            date = r["date"]
            if (since or until) and not date:
                if undated:
                    keep.append(i)
                continue
            if (since and date < since) or (until and date > until):
                continue
            keep.append(i)
        return np.array(keep, np.int64)

    # --- dense and sentences ---------------------------------------------------------

    def dense_search(
        self,
        qvec: np.ndarray,
        depth: int,
        allowed: np.ndarray | None = None,
        mode: str = "exact",
        threads: int = 1,
    ) -> _Ready:
        rows = self.dense_rows
        if allowed is not None:
            rows = rows[np.isin(rows, allowed)]
        return _Ready(rows[:depth])

    def dense_scores(self, qvec: np.ndarray, rows: np.ndarray) -> np.ndarray:
        vectors = np.array([self.records[int(r)]["dense"] for r in rows], np.float32)
        q = np.asarray(qvec, np.float32)
        return (vectors @ q).astype(np.float64) if len(rows) else np.zeros(0)

    def _sentences(self, row: int) -> dict[str, Any]:
        """A row's sentences: spans, 6-bit codes (packed), each one's BM25 terms."""
        record = self.records[row]
        found = record.get("_sentences")
        if found is None:
            found = record["_sentences"] = json.loads(record["sentences"])
            width = (self.sentence_codec.bits * len(record["dense"]) + 7) // 8
            codes = np.frombuffer(base64.b64decode(found["codes"]), np.uint8)
            found["codes"] = codes.reshape(-1, width)
        return cast(dict[str, Any], found)

    def sentence_features(
        self, rows: np.ndarray, qvec: np.ndarray, terms: list[str], qidf: np.ndarray, total: float
    ) -> SentenceFeatures:
        codes, bounds, ptr, flat = [], [0], [0], []
        for r in rows.tolist():
            found = self._sentences(int(r))
            codes.append(found["codes"])
            bounds.append(bounds[-1] + len(found["spans"]))
            for words in found["terms"]:
                flat.extend(words)
                ptr.append(len(flat))
        vocab = {t: i for i, t in enumerate(dict.fromkeys(flat))}
        keys = np.array([vocab.get(t, -1) for t in terms], np.int64)
        known = keys >= 0
        width = (self.sentence_codec.bits * len(qvec) + 7) // 8
        return best_sentences(
            np.array(bounds, np.int64),
            np.arange(len(rows), dtype=np.int64),
            np.concatenate(codes) if codes else np.zeros((0, width), np.uint8),
            self.sentence_codec,
            qvec,
            (np.array(ptr, np.int64), np.array([vocab[t] for t in flat], np.int32)),
            keys[known],
            np.asarray(qidf, np.float64)[known],
            total,
        )

    def sentence_span(self, row: int, which: int) -> list[int]:
        return [int(x) for x in self._sentences(row)["spans"][which]]

    # --- articles --------------------------------------------------------------------

    def article(self, name: str) -> tuple[dict[str, Any], list[int]] | None:
        self.fetch(f"file == {json.dumps(name)}")
        rows = sorted((r["start"], i) for i, r in enumerate(self.records) if r["file"] == name)
        if not rows:
            return None
        return self.article_of(rows[0][1]), [i for _, i in rows]

    def article_sentences(self, name: str) -> list[Sentence]:
        found = self.article(name)
        return article_sentences([self.passage(r) for r in found[1]]) if found else []

    def relations_of(self, name: str) -> list[dict[str, Any]]:
        """Article ``name``'s relations to other articles (kept in its file row)."""
        return self.store.relations_of(name, self.state)
