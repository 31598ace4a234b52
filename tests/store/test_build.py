import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from karabakh_qa.errors import Conflict, IndexUnavailable
from karabakh_qa.service import SearchService
from karabakh_qa.store.embedded import build
from karabakh_qa.store.embedded.build import build_index
from karabakh_qa.store.embedded.files import build_lock
from karabakh_qa.store.embedded.manifest import current_name, read_manifest
from karabakh_qa.store.embedded.segment import ARRAYS as SEGMENT_ARRAYS

from ..conftest import make_settings, write


def load_index(settings):
    return SearchService(settings).index()


def listing(folder):
    """Every index file with its modification time (the build lock's pid aside)."""
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".lock"
    )


def test_build_writes_a_typed_manifest_and_one_segment_without_pickles(seed_service):
    s = seed_service.settings
    assert current_name(s.index_dir) == "gen-000001.json"
    assert sorted(p.name for p in s.index_dir.iterdir()) == [
        ".lock",
        "CURRENT",
        "gen-000001.json",
        "groups-000001.npy",
        "relations-000001.npy",
        "seg-000001",
        "stats-000001.npy",
    ]
    seg = s.index_dir / "seg-000001"
    assert sorted(p.name for p in seg.iterdir()) == ["columns.bin", "meta.json", "vectors.faiss"]
    m = read_manifest(s.index_dir, "gen-000001.json")
    assert m.schema_version == 4 and m.model.name == "hash-bow-64"
    assert (m.live_articles, m.live_passages) == (5, 86)
    assert (m.bm25.k1, m.bm25.b, m.bm25.epsilon, m.bm25.context) == (0.9, 0.4, 0.25, True)
    assert [(r.name, r.rows, r.deletes) for r in m.segments] == [("seg-000001", 86, None)]
    meta = json.loads((seg / "meta.json").read_text())
    assert meta["rows"] == 86 and meta["articles"] == 5
    assert sorted(meta["columns"]) == sorted(SEGMENT_ARRAYS)
    assert all(c["offset"] % 64 == 0 for c in meta["columns"].values())


def test_unchanged_folder_writes_nothing(seed_service, seed_settings, embedder):
    before = listing(seed_settings.index_dir)
    report = build_index(seed_settings, embedder)
    assert (report.wrote, report.generation, report.unchanged) == (False, 1, 5)
    assert listing(seed_settings.index_dir) == before


def test_missing_index_says_what_to_run(tmp_path):
    settings = make_settings(tmp_path)
    with pytest.raises(IndexUnavailable) as err:
        load_index(settings)
    assert err.value.message == (  # a hint that works when pasted: the folders it needs
        f"no index in {settings.index_dir}: run `karabakh-qa index --articles "
        f"{settings.articles_dir} --index {settings.index_dir}` to build it"
    )


def test_model_mismatch_is_a_clear_error(seed_service):
    other = seed_service.settings.replace(model_name="sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(IndexUnavailable, match="built with model 'hash-bow-64'.*index --full"):
        load_index(other)


def test_stale_index_is_reported(seed_service):
    assert seed_service.stale() == []
    write(seed_service.settings.articles_dir, "new.txt", "A brand new paragraph about talks.\n")
    (seed_service.settings.articles_dir / "000_f1506f499b213b55.txt").unlink()
    assert seed_service.stale() == ["000_f1506f499b213b55.txt", "new.txt"]


def test_incremental_build_embeds_only_new_and_changed(seed_service, seed_settings, embedder):
    folder = seed_settings.articles_dir
    write(
        folder, "005_new.txt", "Peace talks resumed in Geneva on Tuesday.\n\nNobody expected it.\n"
    )
    changed = folder / "004_669fca5e7478b4f6.txt"
    changed.write_text(changed.read_text() + "\nA late update paragraph was appended.\n")
    (folder / "002_90d5f99ab22388b6.txt").unlink()
    report = build_index(seed_settings, embedder)
    assert report.added == ["005_new.txt"]
    assert report.changed == ["004_669fca5e7478b4f6.txt"]
    assert report.removed == ["002_90d5f99ab22388b6.txt"]
    assert report.unchanged == 3
    assert report.embedded == 3  # two new paragraphs + the appended one
    assert report.generation == 2 and report.segments == 2
    m = read_manifest(seed_settings.index_dir, "gen-000002.json")
    # The new segment holds only 005 and the new 004; the old rows of 004 and 002 are deleted.
    assert [(r.name, r.rows, r.deleted) for r in m.segments] == [
        ("seg-000001", 86, 13 + 28),  # 004 had 13 passages, 002 had 28
        ("seg-000002", 2 + 14, 0),  # 005's two, and 004's 13 plus the appended one
    ]
    # The previous generation stays readable for servers still on it.
    assert sorted(p.name for p in seed_settings.index_dir.glob("gen-*")) == [
        "gen-000001.json",
        "gen-000002.json",
    ]
    result = seed_service.search("Geneva peace talks", 3)
    assert result.hits[0].passage.source == "005_new.txt"
    assert all(
        h.passage.source != "002_90d5f99ab22388b6.txt"
        for h in seed_service.search("Su-25 jet", 50).hits
    )
    assert (
        seed_service.search("late update paragraph appended", 1)
        .hits[0]
        .passage.source.startswith("004")
    )
    full = build_index(seed_settings, embedder, full=True)
    assert full.embedded == full.passages


def test_changed_article_loses_old_passages(seed_service, seed_settings, embedder):
    path = seed_settings.articles_dir / "004_669fca5e7478b4f6.txt"
    path.write_text("Entirely rewritten: the talks moved to Vienna.\n")
    build_index(seed_settings, embedder)
    _, passages = seed_service.article("004_669fca5e7478b4f6.txt")
    assert [p.text for p in passages] == ["Entirely rewritten: the talks moved to Vienna."]


def test_second_build_refuses_while_lock_held(seed_settings, embedder):
    with (
        build_lock(seed_settings.index_dir),
        pytest.raises(Conflict, match="another build is running"),
    ):
        build_index(seed_settings, embedder)


def test_bad_new_article_keeps_serving_and_is_reported(seed_service, seed_settings, embedder):
    write(seed_settings.articles_dir, "broken.txt", b"\xff\xfe\x00binary")
    report = build_index(seed_settings, embedder)
    assert [(s.source, s.reason) for s in report.skipped] == [
        ("broken.txt", "binary file (contains NUL bytes)")
    ]
    assert report.articles == 5
    assert seed_service.search("houses destroyed", 1).hits


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from karabakh_qa.config import Settings
    from karabakh_qa.embed import HashEmbedder
    from karabakh_qa.store.embedded.build import build_index

    class Slow(HashEmbedder):
        def encode(self, texts, batch_size=32):
            print("embedding", flush=True)
            time.sleep(30)
            return super().encode(texts, batch_size)

    s = Settings(
        articles_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]), model_name="hash-bow-64"
    )
    build_index(s, Slow(64), full=True)
    """
)


def test_kill_9_during_build_leaves_serving_generation(
    seed_service, seed_settings, embedder, tmp_path
):
    script = tmp_path / "slow_build.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(seed_settings.articles_dir),
            str(seed_settings.index_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "embedding"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert current_name(seed_settings.index_dir) == "gen-000001.json"
    assert seed_service.search("houses destroyed", 1).hits[0].passage.text.count("1,165") == 1
    report = build_index(seed_settings, embedder)  # lock released by the kernel
    assert report.generation == 1 and report.embedded == 0 and not report.wrote
    assert not list(seed_settings.index_dir.glob(".tmp-*"))


def test_kill_9_after_tmp_written(seed_service, seed_settings, embedder):
    stray = seed_settings.index_dir / ".tmp-deadbeef"
    stray.mkdir()
    (stray / "manifest.json").write_text("{half")
    assert load_index(seed_settings).generation == 1
    build_index(seed_settings, embedder)
    assert not stray.exists()
    orphan = seed_settings.index_dir / "seg-000002"  # renamed, never listed: a crashed build
    orphan.mkdir()
    write(seed_settings.articles_dir, "new.txt", "A new paragraph about the talks.\n")
    report = build_index(seed_settings, embedder)
    assert report.generation == 2  # the orphan was removed, its name reused by a real segment
    assert (orphan / "meta.json").is_file()


def test_skipped_file_counts_as_changed_once_fixed(seed_service, seed_settings, embedder):
    write(seed_settings.articles_dir, "later.txt", "")
    build_index(seed_settings, embedder)
    assert seed_service.stale() == []
    write(seed_settings.articles_dir, "later.txt", "Now it has a real paragraph.\n")
    assert seed_service.stale() == ["later.txt"]
    assert build_index(seed_settings, embedder).added == ["later.txt"]


def test_an_index_of_the_previous_layout_is_named_and_rebuilt_by_serve(seed_settings, embedder):
    old = seed_settings.index_dir / "gen-000001"  # the layout before segments
    old.mkdir(parents=True)
    (old / "manifest.json").write_text('{"schema_version": 2}')
    (seed_settings.index_dir / "CURRENT").write_text("gen-000001\n")
    service = SearchService(seed_settings, embedder)
    with pytest.raises(IndexUnavailable, match="older version.*index --full"):
        service.index()
    report = service.ensure_index()
    assert report.passages == 86 and not old.exists()
    assert service.search("houses destroyed", 1).hits


def test_a_large_build_writes_a_segment_per_flush_and_switches_once(
    seed_service, tmp_path, embedder, monkeypatch
):
    """FLUSH_ARTICLES bounds a build's memory: 5 articles in parts of 2 give three
    segments, one published generation, and the answers of a one-part build."""
    monkeypatch.setattr(build, "FLUSH_ARTICLES", 2)
    settings = make_settings(tmp_path / "flushed", seed_service.settings.articles_dir)
    report = build_index(settings, embedder)
    manifest = read_manifest(settings.index_dir, current_name(settings.index_dir))
    assert [r.rows for r in manifest.segments] == [31, 42, 13]
    assert sorted(p.name for p in settings.index_dir.glob("gen-*")) == [manifest.file_name]
    assert (report.articles, report.passages, report.embedded) == (5, 86, 86)
    flushed = SearchService(settings, embedder)
    for q in ("houses destroyed Ganja", "ceasefire Moscow", "Su-25 shot down"):
        got = [(h.passage.id, round(h.score, 9)) for h in flushed.search(q, 8).hits]
        want = [(h.passage.id, round(h.score, 9)) for h in seed_service.search(q, 8).hits]
        assert got == want


def test_progress_counts_articles_across_flushes(seed_dir, tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(build, "FLUSH_ARTICLES", 2)
    seen = []
    settings = make_settings(tmp_path, seed_dir)
    build_index(settings, embedder, progress=lambda *x: seen.append(x))
    passages = sum(s.rows for s in SearchService(settings).index().segments)
    assert seen[-1] == (5, 5, passages) and {t for _, t, _ in seen} == {5}
    assert seen == sorted(seen)  # articles and passages only go up, across flushes


def test_finding_an_article_by_name_scans_first_then_keeps_a_dict(seed_service):
    seg = seed_service.index().segments[0]
    names = seg.a["article_names"].tolist()
    assert seg.find_article("nope.txt") is None and "article_index" not in seg.__dict__
    found = [seg.find_article(n) for n in names * 2]  # 1 + 10 lookups: past the scan budget
    assert found == list(range(len(names))) * 2
    assert "article_index" in seg.__dict__ and seg.find_article("nope.txt") is None


def _same_groups(a, b) -> bool:
    import numpy as np

    return all(
        np.array_equal(getattr(a, k), getattr(b, k))
        for k in ("rows", "group", "rep_rows", "rep_groups", "members_sorted")
    )


def test_a_new_generation_inherits_the_group_view_only_while_it_holds(seed_service):
    """After an add that groups nothing new, the serving process keeps its group view
    (no re-sorting at the switch); after an add that makes a new copy, or a merge
    that moves rows, it builds a new one, equal to one built from scratch."""
    from karabakh_qa.store.embedded.groups import GroupView

    folder = seed_service.settings.articles_dir
    before = seed_service.index()
    assert len(before.overlay)  # the seeds have near-duplicates
    write(folder, "100_unrelated.txt", "Title\n\nA paragraph about orchards and apples.\n")
    seed_service.build(only=["100_unrelated.txt"])
    after_add = seed_service.index()
    assert after_add.generation > before.generation
    assert after_add.groups is before.groups
    copied = (folder / sorted(p.name for p in folder.glob("0*.txt"))[0]).read_text()
    write(folder, "101_copy.txt", copied)
    seed_service.build(only=["101_copy.txt"])
    after_copy = seed_service.index()
    assert after_copy.manifest.groups != after_add.manifest.groups
    assert after_copy.groups is not after_add.groups
    seed_service.build(optimize=True)
    merged = seed_service.index()
    assert merged.groups is not after_copy.groups
    for snap in (after_copy, merged):
        assert _same_groups(snap.groups, GroupView(snap.overlay, snap.base_of))


def test_generation_files_load_once_while_unchanged_and_again_once_rewritten(tmp_path):
    import numpy as np

    from karabakh_qa.store.embedded.search import SegmentCache

    cache, path, loads = SegmentCache(), tmp_path / "relations-000003.npy", []

    def load(p):
        loads.append(p)
        return np.load(p)

    np.save(path, np.arange(5))
    first = cache.array(path, load)
    assert cache.array(path, load) is first and len(loads) == 1
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 9  # shared by every snapshot that lists the file
    os.remove(path)
    np.save(path, np.arange(7))  # a full rebuild may write a name again
    assert cache.array(path, load).tolist() == list(range(7)) and len(loads) == 2
