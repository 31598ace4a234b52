"""The seam between the service and a store (docs/scaling.md).

Two protocols. :class:`Store` is where the passages are kept: a build applies its
article diff to it, the service reads articles, passages, statistics and health
from it, and asks it for one :class:`StoreView` per question. The embedded
segmented index (:class:`store.embedded.store.EmbeddedStore`, the default) and a
Milvus collection (:class:`store.milvus.MilvusStore`) implement it; the service
picks one by configuration and never branches on which.

The answer stages (retrieve, fuse, collapse, decorate, judge in ``service.py``
and ``evaluate.py``) read an index only through the calls below. Two
implementations: :class:`store.embedded.search.Snapshot`, one open generation of
the embedded segmented index (every passage a row), and
:class:`store.milvus_view.MilvusView`, one question's candidates in a Milvus store
(README, "Running on a Milvus cluster"). The service chooses one by configuration;
nothing above the seam changes. The protocol is checked against both in the
tests, so the seam cannot drift from what the pipeline really calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from ..records import Passage

if TYPE_CHECKING:  # the shapes the embedded store returns; no import at run time
    from ..relations.versions import Sentence
    from .embedded.bm25 import Bm25Query
    from .embedded.search import SentenceFeatures, Snapshot


T = TypeVar("T")
_MISSING = object()
MEMO_SIZE = 4096  # results a view keeps (then it starts again)


class Memo:
    """What a view works out from itself alone, once: an article's versions, say, are
    the same for every question that shows it while the view serves."""

    _memo: dict[tuple[str, str], Any]

    def memo(self, kind: str, key: str, make: Callable[[], T]) -> T:
        """``make()`` for (``kind``, ``key``) the first time; kept after that."""
        store = self.__dict__.setdefault("_memo", {})
        found = store.get((kind, key), _MISSING)  # one lookup: another thread may clear it
        if found is not _MISSING:
            kept: T = found
            return kept
        if len(store) >= MEMO_SIZE:
            store.clear()
        made = store[(kind, key)] = make()
        return made


class Bm25Stats(Protocol):
    """BM25 over the live passages: rank-bm25 ``BM25Okapi`` scores."""

    @property
    def n(self) -> int: ...  # live passages

    def query(self, terms: list[str]) -> Bm25Query: ...  # distinct terms with idf and df

    def scores(self, q: Bm25Query) -> np.ndarray: ...  # one score per row (0 for deleted rows)


class Groups(Protocol):
    """Near-duplicate groups of rows."""

    def reps_of(self, rows: np.ndarray) -> np.ndarray: ...

    def members(self, row: int) -> list[int]: ...


@runtime_checkable
class StoreView(Protocol):
    """One consistent, read-only view of an index (a generation)."""

    @property
    def bm25(self) -> Bm25Stats: ...

    @property
    def groups(self) -> Groups: ...

    @property
    def total_rows(self) -> int: ...

    def dense_search(
        self,
        qvec: np.ndarray,
        depth: int,
        allowed: np.ndarray | None = None,
        mode: str = "exact",
        threads: int = 1,
    ) -> Any: ...  # .work() (threads may share it), then .result(): rows, best first

    def dense_scores(self, qvec: np.ndarray, rows: np.ndarray) -> np.ndarray: ...

    def sentence_features(
        self, rows: np.ndarray, qvec: np.ndarray, terms: list[str], qidf: np.ndarray, total: float
    ) -> SentenceFeatures: ...

    def memo(self, kind: str, key: str, make: Callable[[], T]) -> T: ...  # see Memo

    def sentence_span(self, row: int, which: int) -> list[int]: ...

    def ids(self, rows: np.ndarray) -> np.ndarray: ...

    def passage(self, row: int) -> Passage: ...

    def previous_passage(self, row: int) -> Passage | None: ...

    def dates_of(self, rows: np.ndarray) -> np.ndarray: ...

    def article_of(self, row: int) -> dict[str, Any]: ...

    def article(self, name: str) -> tuple[dict[str, Any], list[int]] | None: ...

    def article_sentences(self, name: str) -> list[Sentence]: ...

    def relations_of(self, name: str) -> list[dict[str, Any]]: ...

    def rows_where(
        self,
        sources: tuple[str, ...],
        since: str | None,
        until: str | None,
        undated: bool = False,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class Filters:
    """A question's filters: the article files, and the date range (ISO dates)."""

    sources: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None


@runtime_checkable
class Store(Protocol):
    """Where the passages of the archive are kept and searched."""

    @property
    def kind(self) -> str: ...  # "embedded" or "milvus"

    def view(
        self, question: str, qvec: Callable[[], np.ndarray], depth: int, filters: Filters
    ) -> StoreView: ...  # what one question reads: lexical and dense candidates, records

    def articles(self) -> dict[str, dict[str, Any]]: ...  # live articles' metadata by file

    def article_names(self) -> list[str]: ...

    def article(self, name: str) -> tuple[dict[str, Any], list[Passage]] | None: ...

    def passage(self, pid: str) -> Passage | None: ...  # a live passage by its id

    def apply(
        self, snapshot: Snapshot, since: str | None, names: list[str] | None
    ) -> dict[str, int]: ...  # a build's article diff (None: compare every article)

    def stats(self) -> dict[str, Any]: ...  # generation, articles, passages

    def health(self) -> dict[str, Any]: ...  # {"status": "ok" | "degraded", "store": kind, ...}
