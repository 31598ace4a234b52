"""The seam between the answer pipeline and a store (docs/scaling.md).

The answer stages (retrieve, fuse, collapse, decorate, judge in ``service.py``
and ``evaluate.py``) read an index only through the calls below. Today one
implementation exists: :class:`store.embedded.search.Snapshot`, one open
generation of the embedded segmented index. A store on a cluster (OpenSearch or
Vespa for BM25 and vectors, or Milvus beside a BM25 engine) implements the same
calls, and the service chooses one by configuration; nothing above the seam
changes. The protocol is checked against ``Snapshot`` in the tests, so the seam
cannot drift from what the pipeline really calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..records import Passage

if TYPE_CHECKING:  # the shapes the one implementation returns; no import at run time
    from .embedded.bm25 import Bm25Query
    from .embedded.search import SentenceFeatures


class Bm25Stats(Protocol):
    """BM25 over the live passages: rank-bm25 ``BM25Okapi`` scores."""

    n: int  # live passages

    def query(self, terms: list[str]) -> Bm25Query: ...  # distinct terms with idf and df

    def scores(self, q: Bm25Query) -> np.ndarray: ...  # one score per row (0 for deleted rows)


class Groups(Protocol):
    """Near-duplicate groups of rows."""

    def reps_of(self, rows: np.ndarray) -> np.ndarray: ...

    def members(self, row: int) -> list[int]: ...


@runtime_checkable
class StoreView(Protocol):
    """One consistent, read-only view of an index (a generation)."""

    bm25: Bm25Stats
    groups: Groups

    def dense_top(
        self,
        qvec: np.ndarray,
        depth: int,
        allowed: np.ndarray | None = None,
        mode: str = "exact",
    ) -> np.ndarray: ...

    def dense_scores(self, qvec: np.ndarray, rows: np.ndarray) -> np.ndarray: ...

    def sentence_features(
        self, rows: np.ndarray, qvec: np.ndarray, terms: list[str], qidf: np.ndarray, total: float
    ) -> SentenceFeatures: ...

    def sentence_span(self, row: int, which: int) -> list[int]: ...

    def ids(self, rows: np.ndarray) -> np.ndarray: ...

    def passage(self, row: int) -> Passage: ...

    def article(self, name: str) -> tuple[dict[str, Any], list[int]] | None: ...

    def rows_where(
        self, sources: tuple[str, ...], since: str | None, until: str | None
    ) -> np.ndarray: ...
