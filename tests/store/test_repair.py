"""A damaged segment file: a clear error naming it, the serving process keeps
serving, and ``index --repair`` re-indexes the damaged segment's articles."""

import os

import pytest

from karabakh_qa.errors import IndexUnavailable
from karabakh_qa.service import SearchService
from karabakh_qa.store.embedded.build import build_index

from ..conftest import write


def hits(service):
    return [h.passage.id for h in service.search("houses destroyed Ganja", 5).hits]


def test_truncated_segment_file_is_named_and_repaired(seed_service, seed_settings, embedder):
    write(seed_settings.articles_dir, "005_new.txt", "Peace talks resumed in Geneva on Tuesday.\n")
    build_index(seed_settings, embedder)  # a second segment
    before = hits(seed_service)
    damaged = seed_settings.index_dir / "seg-000001" / "columns.bin"
    broken = damaged.with_name("broken")  # a truncated copy put in its place (a new inode:
    broken.write_bytes(damaged.read_bytes()[:100])  # the serving process keeps its map)
    os.replace(broken, damaged)
    assert hits(seed_service) == before  # the process already serving keeps its generation
    with pytest.raises(IndexUnavailable) as err:
        SearchService(seed_settings, embedder).index()
    assert str(damaged) in err.value.message and "index --repair" in err.value.message
    # the next build repairs it, no manual step (issue 13): the damaged segment's
    # articles are indexed again from the folder, the source of truth
    report = build_index(seed_settings, embedder)
    assert report.added == sorted(
        p.name for p in seed_settings.articles_dir.iterdir() if p.name != "005_new.txt"
    )
    fresh = SearchService(seed_settings, embedder)
    assert hits(fresh) == before
    assert fresh.health()["passages"] == 87
