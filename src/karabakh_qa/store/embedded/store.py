"""The embedded segmented index as a :class:`~karabakh_qa.store.protocol.Store`.

A build writes the segments itself (store/embedded/build.py), so applying its diff
is nothing more; every read is one open generation (:class:`Snapshot`), which is
also the view every question of that generation reads: the answer stages filter
its rows themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...records import Passage
from ..protocol import Filters
from .search import Snapshot


class EmbeddedStore:
    """One generation of the embedded index, behind the store seam."""

    kind = "embedded"

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def view(
        self, question: str, qvec: Callable[[], np.ndarray], depth: int, filters: Filters
    ) -> Snapshot:
        return self.snapshot

    def articles(self) -> dict[str, dict[str, Any]]:
        return self.snapshot.article_metas

    def article_names(self) -> list[str]:
        return self.snapshot.article_names()

    def article(self, name: str) -> tuple[dict[str, Any], list[Passage]] | None:
        found = self.snapshot.article(name)
        if found is None:
            return None
        meta, rows = found
        return meta, [self.snapshot.passage(r) for r in rows]

    def passage(self, pid: str) -> Passage | None:
        row = self.snapshot.row_of_id(pid)
        return None if row is None else self.snapshot.passage(row)

    def apply(
        self, snapshot: Snapshot, since: str | None, names: list[str] | None
    ) -> dict[str, int]:
        return {}  # the build wrote the segments

    def stats(self) -> dict[str, Any]:
        m = self.snapshot.manifest
        return {
            "generation": m.generation,
            "articles": m.live_articles,
            "passages": m.live_passages,
        }

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "store": self.kind}
