"""Issue 10: the change journal spares `index` the folder scan, and is trusted only
when it provably saw every change (a live watcher, the same instance, a cookie)."""

import fcntl
import json
import logging
import time
from pathlib import Path

import pytest

from karabakh_qa.errors import Conflict
from karabakh_qa.store.embedded.journal import sync
from karabakh_qa.watch import WATCHDOG_LOGGER, JournalWriter

from .conftest import write


@pytest.fixture
def writer(seed_settings):
    w = JournalWriter(seed_settings.articles_dir, seed_settings.index_dir)
    w.start()
    yield w
    w.stop()


def read(settings, **kw):
    """sync() and commit at once, as a successful build does."""
    s = sync(settings.articles_dir, settings.index_dir, **kw)
    s.commit()
    return s.names


def test_no_watcher_means_scan(seed_settings):
    assert sync(seed_settings.articles_dir, seed_settings.index_dir).names is None


def test_journal_names_exactly_what_changed(seed_settings, writer):
    folder = seed_settings.articles_dir
    assert read(seed_settings) is None  # first read of this watcher: scan once
    assert read(seed_settings) == []
    write(folder, "new.txt", "A heron nested on the Kura river bank.\n")
    write(folder, ".hidden.txt", "not an article\n")
    write(folder, "notes.pdf", "not an article either\n")
    assert read(seed_settings) == ["new.txt"]
    (folder / "new.txt").write_text("Changed text about the heron.\n")
    (folder / "new.txt").rename(folder / "moved.txt")
    assert read(seed_settings) == ["moved.txt", "new.txt"]
    (folder / "moved.txt").unlink()
    assert read(seed_settings) == ["moved.txt"]
    assert read(seed_settings) == []


def test_uncommitted_read_is_read_again(seed_settings, writer):
    read(seed_settings)
    write(seed_settings.articles_dir, "new.txt", "A heron nested on the Kura river bank.\n")
    assert sync(seed_settings.articles_dir, seed_settings.index_dir).names == ["new.txt"]
    assert read(seed_settings) == ["new.txt"]  # the failed build did not commit


@pytest.mark.parametrize("event", ["folder", "overflow"])
def test_folder_events_and_overflow_force_a_scan(seed_settings, writer, event):
    read(seed_settings)
    if event == "folder":
        (seed_settings.articles_dir / "sub").mkdir()
    else:
        logging.getLogger(WATCHDOG_LOGGER).warning("Inotify queue overflowed; events were lost")
    assert read(seed_settings) is None
    assert read(seed_settings) == []


def test_restarted_watcher_is_not_trusted(seed_settings, writer):
    read(seed_settings)
    writer.stop()
    write(seed_settings.articles_dir, "unseen.txt", "Written while no watcher ran.\n")
    again = JournalWriter(seed_settings.articles_dir, seed_settings.index_dir)
    again.start()
    try:
        assert read(seed_settings) is None
    finally:
        again.stop()
    assert sync(seed_settings.articles_dir, seed_settings.index_dir).names is None  # stopped


def test_second_watcher_refused(seed_settings, writer):
    other = JournalWriter(seed_settings.articles_dir, seed_settings.index_dir)
    with pytest.raises(Conflict, match="another journal watcher is running"):
        other.start()


def test_silent_watcher_times_out_to_a_scan(seed_settings):
    """A lock held by a watcher that no longer logs (hung): scan, leave no cookie."""
    folder = seed_settings.index_dir / "journal"
    folder.mkdir(parents=True)
    header = {"journal": 1, "instance": "x", "folder": str(seed_settings.articles_dir.resolve())}
    (folder / "log").write_text(json.dumps(header) + "\n")
    (folder / "read").write_text(json.dumps({"instance": "x", "offset": 0}))
    with open(folder / "lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        t = time.monotonic()
        assert sync(seed_settings.articles_dir, seed_settings.index_dir, timeout=0.05).names is None
        assert time.monotonic() - t < 1
    assert not [p for p in seed_settings.articles_dir.iterdir() if p.name.startswith(".karabakh")]


def test_build_uses_the_journal_and_equals_a_scan(seed_settings, seed_service, writer):
    assert seed_service.build().scope == "folder"  # first build with this watcher scans
    write(seed_settings.articles_dir, "heron.txt", "A heron nested on the Kura river bank.\n")
    (seed_settings.articles_dir / "heron.txt").touch()
    report = seed_service.build()
    assert (report.scope, report.added, report.changed, report.removed) == (
        "journal",
        ["heron.txt"],
        [],
        [],
    )
    assert report.unchanged == 0  # nothing else was looked at
    again = seed_service.build()
    assert (again.scope, again.wrote) == ("journal", False)
    writer.stop()
    scanned = seed_service.build()
    assert (scanned.scope, scanned.wrote, scanned.unchanged) == ("folder", False, report.articles)


def test_a_damaged_log_means_a_scan(seed_settings, writer):
    read(seed_settings)
    with open(seed_settings.index_dir / "journal" / "log", "a") as fh:
        fh.write("{not json\n")
    assert sync(seed_settings.articles_dir, seed_settings.index_dir).names is None


def test_a_folder_the_index_cannot_write_means_a_scan(seed_settings, writer, monkeypatch):
    read(seed_settings)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "touch", refuse)  # the cookie cannot be created
    assert sync(seed_settings.articles_dir, seed_settings.index_dir).names is None
