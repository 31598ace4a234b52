"""Issue 13: recovery, not manual clean-up (names, empty folders, damaged generations)."""

import logging
import os
import shutil

import pytest

from karabakh_qa.errors import Conflict, IndexUnavailable
from karabakh_qa.service import SearchService
from karabakh_qa.web import create_app

from .conftest import write

NEW = "A mud volcano erupted near Baku on Tuesday, geologists said after the blast.\n"


def test_a_file_name_that_is_not_utf8_is_skipped_with_a_warning(
    seed_settings, seed_service, caplog
):
    folder = seed_settings.articles_dir
    with open(os.path.join(os.fsencode(folder), b"bad\xff.txt"), "w") as fh:
        fh.write(NEW)
    write(folder, "good.txt", NEW)
    with caplog.at_level(logging.WARNING):
        report = seed_service.build()
    assert report.added == ["good.txt"]
    assert any("'bad\\\\xff.txt'" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("full", [False, True])
def test_a_build_refuses_to_empty_an_index_that_holds_articles(seed_settings, seed_service, full):
    kept = seed_settings.articles_dir.parent / "kept"
    shutil.move(seed_settings.articles_dir, kept)
    seed_settings.articles_dir.mkdir()
    with pytest.raises(Conflict, match="refusing to empty the index: it holds 5 articles"):
        seed_service.build(full=full)
    assert seed_service.health()["articles"] == 5  # the index that served serves on
    report = seed_service.build(full=full, allow_empty=True)
    assert (report.articles, seed_service.health()["articles"]) == (0, 0)


def second_generation(settings, service) -> None:
    write(settings.articles_dir, "new.txt", NEW)
    assert service.build().generation == 2


def test_a_damaged_generation_falls_back_to_the_intact_one_before_it(
    seed_settings, seed_service, embedder
):
    second_generation(seed_settings, seed_service)
    stats = sorted(seed_settings.index_dir.glob("stats-000002*.npy"))
    stats[0].write_bytes(b"")  # an empty .npy in the served generation
    fresh = SearchService(seed_settings, embedder)
    client = create_app(seed_settings, service=fresh).test_client()
    r = client.get("/api/health")
    data = r.get_json()
    assert (r.status_code, data["status"], data["generation"], data["articles"]) == (
        200,
        "degraded",
        1,
        5,
    )
    assert "generation gen-000002.json is unusable" in data["reason"]
    assert client.get("/api/ask?q=ceasefire").status_code == 200
    report = fresh.build()  # the next build repairs it, with no manual step
    assert report.articles == 6
    assert fresh.health()["status"] == "ok" and "reason" not in fresh.health()


def test_a_damaged_segment_with_nothing_intact_is_503_then_repaired(
    seed_settings, seed_service, embedder
):
    segment = next(seed_settings.index_dir.glob("seg-*"))
    columns = segment / "columns.bin"
    columns.write_bytes(columns.read_bytes()[:10])
    fresh = SearchService(seed_settings, embedder)
    client = create_app(seed_settings, service=fresh).test_client()
    for url in ("/api/health", "/api/ask?q=ceasefire"):
        r = client.get(url)
        assert r.status_code == 503 and "truncated or altered" in r.get_json()["error"]
    with pytest.raises(IndexUnavailable):
        fresh.index()
    report = fresh.build()
    assert (report.articles, report.passages) == (5, 86)
    assert client.get("/api/ask?q=ceasefire").status_code == 200


def test_a_build_the_disk_stops_leaves_nothing_and_says_why(
    seed_settings, seed_service, monkeypatch
):
    import errno

    from karabakh_qa.errors import InsufficientStorage
    from karabakh_qa.store.embedded import files

    before = sorted(p.name for p in seed_settings.index_dir.iterdir())
    real, calls = files.fsync, [0]

    def full_after_a_while(path):
        calls[0] += 1
        if calls[0] == 3:  # mid-build: some files written, the generation not published
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path)

    monkeypatch.setattr(files, "fsync", full_after_a_while)
    write(seed_settings.articles_dir, "new.txt", NEW)
    with pytest.raises(InsufficientStorage, match=r"could not write the index \(No space"):
        seed_service.build()
    assert sorted(p.name for p in seed_settings.index_dir.iterdir()) == before
    assert seed_service.health()["generation"] == 1
    monkeypatch.setattr(files, "fsync", real)
    assert seed_service.build().added == ["new.txt"]
