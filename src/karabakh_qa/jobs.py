"""Builds off the request threads, each a job whose outcome anyone can look up.

An upload or a reindex answers 202 at once with a job; one worker thread runs the
jobs in order (builds take the index lock one at a time anyway), and
``GET /api/jobs/<id>`` reports ``queued``, ``running``, ``done`` (with the build
report) or ``failed`` (with the error a user can act on). Before this a failed
background reindex was visible only in the server log. Queries never wait for a
job: they read the generation that serves. Like Elasticsearch's tasks API, but
in memory: a restart forgets finished jobs (the index and the folder are the
durable state; a queued upload's file is already saved and the next build takes it).

Uploads queued while a build runs are indexed together by the next one (group
commit, as Elasticsearch's refresh makes every document indexed since the last one
searchable at once): a burst of N uploads costs one build's fixed work (the
generation, its manifest and fsyncs, the reopen) instead of N. Each job of the
batch reports that build. A batch that fails is retried an upload at a time, so
that one upload's failure is its own and the others still land.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import KarabakhError, NotFound

log = logging.getLogger(__name__)

KEEP = 1000  # finished jobs remembered, the newest first out last
BATCH = 256  # uploads indexed by one build at most

BuildFiles = Callable[[list[str]], dict[str, Any]]  # indexes the named files, reports


@dataclass(frozen=True)
class Job:
    """One unit of background work and where it stands (``time.time`` stamps)."""

    id: str
    kind: str  # "reindex" or "upload"
    state: str = "queued"  # queued, running, done, failed
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: dict[str, Any] | None = None  # the API's error shape, when failed
    result: dict[str, Any] | None = None  # the build report, when done
    source: str | None = None  # the uploaded article, for an upload

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "source": self.source,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "error": self.error,
            "result": self.result,
        }


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


class Jobs:
    """The job queue and its one worker thread (started on the first job)."""

    def __init__(self, batch: int = BATCH) -> None:
        self._batch = max(1, batch)  # uploads one build takes at most (1: one each)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        # job id -> what runs it, given the files of its batch (an upload's: its file)
        self._work: dict[str, BuildFiles] = {}
        self._lock = threading.Condition()
        self._worker: threading.Thread | None = None
        self._seq = itertools.count(1)

    def submit(
        self, kind: str, work: Callable[[], dict[str, Any]], source: str | None = None
    ) -> Job:
        """Queue ``work`` (returns the report to keep); a reindex already queued is
        returned instead of a second one (it will see the same folder)."""
        with self._lock:
            if kind == "reindex":
                for job in self._jobs.values():
                    if job.kind == kind and job.state == "queued":
                        return job
            job = self._queue(kind, source)
            self._work[job.id] = lambda _files: work()
            return job

    def submit_upload(self, source: str, build: BuildFiles) -> Job:
        """Queue the indexing of the saved file ``source``; ``build(files)`` indexes
        files and returns its report. Uploads queued together with the same
        ``build`` are indexed by one call of it."""
        with self._lock:
            job = self._queue("upload", source)
            self._work[job.id] = build
            return job

    def _queue(self, kind: str, source: str | None) -> Job:
        """A new queued job, its worker started (call with the lock held)."""
        job = Job(f"{next(self._seq):06d}-{uuid.uuid4().hex[:8]}", kind, source=source)
        self._jobs[job.id] = job
        self._forget_old()
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="karabakh-jobs", daemon=True)
            self._worker.start()
        self._lock.notify_all()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} (finished jobs are kept until {KEEP} newer ones)")
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job has finished (for tests and the CLI), or the timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._jobs[job_id].state in ("queued", "running"):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._lock.wait(left)
            return self._jobs[job_id]

    def _set(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            self._jobs[job_id] = replace(self._jobs[job_id], **changes)
            self._lock.notify_all()

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in ("done", "failed")]
        for job_id in finished[: max(0, len(finished) - KEEP)]:
            del self._jobs[job_id]

    def _next(self) -> tuple[list[str], BuildFiles, list[str]]:
        """The next job in order with the uploads queued behind it that the same build
        takes (an upload's batch), what runs them, and their files."""
        with self._lock:
            while True:
                queued = [j for j in self._jobs.values() if j.state == "queued"]
                if queued:
                    break
                self._lock.wait()
            first, work = queued[0], self._work[queued[0].id]
            batch = [first]
            if first.kind == "upload":
                same = [j for j in queued if j.kind == "upload" and self._work[j.id] == work]
                batch = same[: self._batch]
            for job in batch:
                del self._work[job.id]
            return [j.id for j in batch], work, [j.source or "" for j in batch]

    def _run(self) -> None:
        while True:
            batch, build, files = self._next()
            for job_id in batch:
                self._set(job_id, state="running", started=time.time())
            if len(batch) == 1:
                self._finish(batch[0], build, files)
                continue
            try:
                result = build(files)
            except Exception:  # noqa: BLE001 (each upload alone says whose it was)
                log.warning("a build of %d uploads failed; indexing them one at a time", len(batch))
                for job_id, name in zip(batch, files, strict=True):
                    self._finish(job_id, build, [name])
                continue
            for job_id in batch:
                self._set(job_id, state="done", finished=time.time(), result=result)

    def _finish(self, job_id: str, build: BuildFiles, files: list[str]) -> None:
        """Run one job's work (``build(files)``) and record how it ended."""
        try:
            result = build(files)
        except KarabakhError as exc:
            log.warning("job %s failed: %s", job_id, exc.message)
            self._set(job_id, state="failed", finished=time.time(), error=exc.to_dict())
        except Exception:  # a bug: the job says so, the worker lives on
            log.exception("job %s failed", job_id)
            error = {"ok": False, "error": "internal error; the server log has details"}
            self._set(job_id, state="failed", finished=time.time(), error={**error, "status": 500})
        else:
            self._set(job_id, state="done", finished=time.time(), result=result)
