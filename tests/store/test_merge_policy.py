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


def test_fully_deleted_segments_are_dropped_first():
    assert plan_merges(snapshot([5_000, 8, 8] + [50] * 8, {1: 8, 2: 8})) == [[1, 2]]


def test_dropping_fully_deleted_segments_keeps_the_answers(seed_service):
    from karabakh_qa.store.embedded.manifest import current_name, read_manifest

    from ..conftest import write

    s = seed_service.settings
    before = [h.passage.id for h in seed_service.search("houses destroyed", 5).hits]
    for name in ("005_a.txt", "006_b.txt"):  # two small segments ...
        write(s.articles_dir, name, f"Talks in Geneva, note {name}.\n")
        seed_service.build()
    for name in ("005_a.txt", "006_b.txt"):  # ... whose rows are then all deleted
        (s.articles_dir / name).unlink()
    report = seed_service.build()
    manifest = read_manifest(s.index_dir, current_name(s.index_dir))
    assert report.merged == 2 and [r.rows for r in manifest.segments] == [86]
    assert [h.passage.id for h in seed_service.search("houses destroyed", 5).hits] == before
