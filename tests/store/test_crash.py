"""Crash after every rename, replace and fsync of a build and of a merge: the old
generation keeps serving, and the next build succeeds with no manual clean-up."""

import shutil

import pytest

from karabakh_qa.service import SearchService
from karabakh_qa.store.embedded import build as build_module
from karabakh_qa.store.embedded import files
from karabakh_qa.store.embedded.build import build_index

from ..conftest import make_settings, write

QUERIES = ["houses destroyed", "ceasefire Moscow", "Geneva talks resumed", "Su-25 jet"]


class Crash(BaseException):
    """Stands for the process dying: nothing after the crash point runs."""


def answers(service: SearchService) -> list:
    return [[(h.passage.id, round(h.score, 9)) for h in service.search(q, 5).hits] for q in QUERIES]


def crash_after(monkeypatch, k: int) -> list[int]:
    """Make the k-th durable filesystem operation the last one."""
    count = [0]
    for name in ("rename", "replace", "fsync"):
        real = getattr(files, name)

        def wrapped(*args, _real=real):
            _real(*args)
            count[0] += 1
            if count[0] == k:
                raise Crash(f"after operation {k}")

        monkeypatch.setattr(files, name, wrapped)
    return count


def change_folder(folder):
    write(
        folder, "005_new.txt", "Peace talks resumed in Geneva on Tuesday.\n\nNobody expected it.\n"
    )
    changed = folder / "004_669fca5e7478b4f6.txt"
    changed.write_text(changed.read_text() + "\nA late update paragraph was appended.\n")
    (folder / "002_90d5f99ab22388b6.txt").unlink()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A built seed index, the changed folder, and the answers before and after."""
    from karabakh_qa.config import PROJECT_ROOT
    from karabakh_qa.embed import HashEmbedder

    root = tmp_path_factory.mktemp("crash-template")
    settings = make_settings(root)
    shutil.copytree(PROJECT_ROOT / "seeds", settings.articles_dir)
    embedder = HashEmbedder(64)
    build_index(settings, embedder)
    before = answers(SearchService(settings, embedder))
    change_folder(settings.articles_dir)
    probe = make_settings(root / "probe", settings.articles_dir)
    shutil.copytree(settings.index_dir, probe.index_dir)
    build_index(probe, embedder)
    after = answers(SearchService(probe, embedder))
    return root, settings, embedder, before, after


def count_ops(template, optimize: bool) -> int:
    root, settings, embedder, _, _ = template
    work = make_settings(root / f"count-{optimize}-{build_module.FLUSH_ARTICLES}")
    shutil.copytree(settings.articles_dir, work.articles_dir)
    shutil.copytree(settings.index_dir, work.index_dir)
    with pytest.MonkeyPatch.context() as mp:
        count = crash_after(mp, 10**9)
        build_index(work, embedder, optimize=optimize)
    return count[0]


@pytest.mark.parametrize(
    "optimize,flush",
    [(False, None), (True, None), (False, 1)],
    ids=["build", "build+merge", "build-in-two-flushes"],
)
def test_crash_after_every_durable_step(template, tmp_path, optimize, flush, monkeypatch):
    root, settings, embedder, before, after = template
    if flush:  # the two fresh articles become two segments, then one switch
        monkeypatch.setattr(build_module, "FLUSH_ARTICLES", flush)
    total = count_ops(template, optimize)
    # The segment's 3 files and folder fsynced, the folder renamed and its parent
    # fsynced; then deletions, statistics, groups, manifest (each fsync + rename), CURRENT.
    assert total >= 14
    for k in range(1, total + 1):
        work = make_settings(tmp_path / f"k{k}")
        shutil.copytree(settings.articles_dir, work.articles_dir)
        shutil.copytree(settings.index_dir, work.index_dir)
        serving = SearchService(work, embedder)
        assert answers(serving) == before
        with pytest.MonkeyPatch.context() as mp:
            crash_after(mp, k)
            with pytest.raises(Crash):
                build_index(work, embedder, optimize=optimize)
        # A server already serving keeps serving: the old generation, or the new one
        # when the crash came after CURRENT was replaced; never an error.
        assert answers(serving) in (before, after), f"crash after operation {k}"
        reopened = answers(SearchService(work, embedder))
        assert reopened in (before, after), f"crash after operation {k}"
        report = build_index(work, embedder, optimize=optimize)  # no manual clean-up
        assert answers(SearchService(work, embedder)) == after, f"crash after operation {k}"
        assert not list(work.index_dir.glob(".tmp-*")), report
