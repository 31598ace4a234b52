"""The job queue: uploads queued behind a running build are indexed by one build."""

import threading

from karabakh_qa.errors import ArticleError
from karabakh_qa.jobs import Jobs


class Builds:
    """A stand-in for SearchService.index_files: records each call's files; the
    first call waits until released (a build in progress); files named in
    ``failing`` fail any build that includes them."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        self.calls: list[list[str]] = []
        self.release = threading.Event()
        self.failing = failing

    def index_files(self, names: list[str]) -> dict:
        self.calls.append(list(names))
        if len(self.calls) == 1:
            self.release.wait(10)
        bad = [n for n in names if n in self.failing]
        if bad:
            raise ArticleError(f"{bad[0]}: cannot be indexed")
        return {"added": list(names)}


def submit_while_busy(jobs: Jobs, builds: Builds, names: list[str]) -> list[str]:
    """Queue ``first.txt`` (its build blocks), then ``names`` behind it, release."""
    first = jobs.submit_upload("first.txt", builds.index_files)
    while not builds.calls:
        threading.Event().wait(0.001)
    queued = [jobs.submit_upload(n, builds.index_files).id for n in names]
    builds.release.set()
    return [first.id, *queued]


def test_uploads_queued_during_a_build_are_indexed_by_one_build():
    jobs, builds = Jobs(), Builds()
    ids = submit_while_busy(jobs, builds, ["a.txt", "b.txt", "c.txt"])
    done = [jobs.wait(i, 10) for i in ids]
    assert builds.calls == [["first.txt"], ["a.txt", "b.txt", "c.txt"]]
    assert [j.state for j in done] == ["done"] * 4
    assert [j.result for j in done[1:]] == [{"added": ["a.txt", "b.txt", "c.txt"]}] * 3
    assert [j.source for j in done] == ["first.txt", "a.txt", "b.txt", "c.txt"]


def test_a_failed_batch_is_retried_an_upload_at_a_time():
    jobs, builds = Jobs(), Builds(failing=("b.txt",))
    ids = submit_while_busy(jobs, builds, ["a.txt", "b.txt", "c.txt"])
    done = [jobs.wait(i, 10) for i in ids]
    assert builds.calls == [
        ["first.txt"],
        ["a.txt", "b.txt", "c.txt"],
        ["a.txt"],
        ["b.txt"],
        ["c.txt"],
    ]
    assert [j.state for j in done] == ["done", "done", "failed", "done"]
    assert done[2].error == {"ok": False, "error": "b.txt: cannot be indexed", "status": 422}
    assert done[3].result == {"added": ["c.txt"]}


def test_a_reindex_between_uploads_keeps_its_place():
    jobs, builds = Jobs(), Builds()
    order: list[str] = []
    first = jobs.submit_upload("first.txt", builds.index_files)
    while not builds.calls:
        threading.Event().wait(0.001)
    a = jobs.submit_upload("a.txt", builds.index_files)
    r = jobs.submit("reindex", lambda: order.append("reindex") or {"reindexed": True})
    b = jobs.submit_upload("b.txt", builds.index_files)
    builds.release.set()
    for job in (first, a, r, b):
        jobs.wait(job.id, 10)
    # uploads behind the first one go together, ahead of the reindex queued between them
    assert builds.calls == [["first.txt"], ["a.txt", "b.txt"]]
    assert jobs.get(r.id).result == {"reindexed": True} and order == ["reindex"]
    assert jobs.get(b.id).finished <= jobs.get(r.id).finished
