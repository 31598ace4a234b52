"""Stage 3 of an answer: collapse. Ranked candidates become distinct results.

A story that several articles carry (a near-duplicate group) is one result,
shown by its group's representative when the filters allow it; what a date
filter leaves out for want of a date is counted, not silently dropped. Then the
results are put in the asked order and, when asked, counted by outlet, year and
month (facets).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..records import outlet_of
from ..store.protocol import StoreView
from .query import Query
from .retrieve import Candidates

Result = tuple[int, int]  # (candidate position, position of the row shown for it)


def collapse(
    cands: Candidates,
    ordered: np.ndarray,
    allowed: np.ndarray | None,
    dates: np.ndarray,
    q: Query,
) -> tuple[list[tuple[int, int]], int]:
    """Every distinct result in ranked order, a group of copies once: (candidate
    position, position of the row shown for it: the group's representative when the
    filters allow it); and how many a date filter left out for want of a date."""
    allowed_set = None if allowed is None else set(allowed.tolist())
    pos = {int(c): i for i, c in enumerate(cands.rows)}
    dated_filter = bool(q.since or q.until)
    out, seen, hidden = [], set(), 0
    for i in ordered.tolist():
        row, rep = int(cands.rows[i]), int(cands.reps[i])
        if rep in seen:
            continue
        seen.add(rep)
        j = pos[rep if allowed_set is None or rep in allowed_set else row]
        if dated_filter and not dates[j] and not q.include_undated:
            hidden += 1
            continue
        out.append((i, j))
    return out, hidden


def in_order(
    results: list[Result], sort: str, dates: np.ndarray, index: StoreView, cands: Candidates
) -> list[Result]:
    """``results`` in the asked order: relevance as ranked; date, newest first; or
    first_seen, by the earliest dated copy of each result's group (the story's first
    report), newest first. Undated results go last, in ranked order (stable sorts)."""
    if sort == "relevance":
        return results
    if sort == "date":
        return sorted(results, key=lambda r: dates[r[1]], reverse=True)
    first = {}
    for _, j in results:
        members = index.groups.members(int(cands.rows[j]))
        known = [d for d in index.dates_of(np.asarray(members, np.int64)).tolist() if d]
        first[j] = min(known) if known else ""
    return sorted(results, key=lambda r: first[r[1]], reverse=True)


def facets(
    index: StoreView, cands: Candidates, results: list[Result], dates: np.ndarray
) -> dict[str, list[dict[str, Any]]]:
    """Counts of the results by outlet, year and month (most first; "unknown" last)."""
    outlet: Counter[str] = Counter()
    year: Counter[str] = Counter()
    month: Counter[str] = Counter()
    for _, j in results:
        meta = index.article_of(int(cands.rows[j]))  # its record only: no passage decoded
        outlet[outlet_of(meta.get("publisher"), meta.get("url")) or "unknown"] += 1
        date = str(dates[j])
        year[date[:4] or "unknown"] += 1
        month[date[:7] or "unknown"] += 1

    def listed(counts: Counter[str]) -> list[dict[str, Any]]:
        ranked = sorted(counts.items(), key=lambda kv: (kv[0] == "unknown", -kv[1], kv[0]))
        return [{"value": value, "count": count} for value, count in ranked]

    return {"outlet": listed(outlet), "year": listed(year), "month": listed(month)}
