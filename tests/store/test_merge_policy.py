"""The merge policy: levels, expunging, and the segment budget."""

from types import SimpleNamespace

import numpy as np

from karabakh_qa.store.embedded.merge import MAX_SEGMENTS, plan_merges


def snapshot(rows: list[int], deleted: dict[int, int] | None = None):
    live = []
    for pos, n in enumerate(rows):
        gone = (deleted or {}).get(pos, 0)
        live.append(None if not gone else np.arange(n) >= gone)
    return SimpleNamespace(segments=[SimpleNamespace(rows=n) for n in rows], live=live)


def test_a_full_level_merges():
    assert plan_merges(snapshot([200_000] + [50] * 8)) == [list(range(1, 9))]


def test_a_mostly_deleted_large_segment_is_rewritten_alone():
    assert plan_merges(snapshot([5_000, 40], {0: 2_000})) == [[0]]


def test_past_the_budget_the_smallest_segments_merge():
    rows = [160_000] * 7 + [30_000, 8, 16, 8]  # 11 segments, no full level
    assert len(rows) == MAX_SEGMENTS + 1
    assert plan_merges(snapshot(rows)) == [[8, 10]]  # the two smallest: 11 -> 10
    assert plan_merges(snapshot(rows[:MAX_SEGMENTS])) == []
