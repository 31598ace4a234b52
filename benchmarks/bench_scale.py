"""Structural costs of the index at scale, on the synthetic corpus (issue 10).

Run: .venv/bin/python benchmarks/bench_scale.py --passages 100000 [--json PATH]
     [--workdir DIR] [--queries 200] [--store milvus]

``--store milvus`` puts the passages in Milvus Lite run as a server on a local
port (the C++ engine; a file beside the index), as production runs a cluster:
every build syncs to it over its URI and every query reads it. The same JSON
fields come out, with ``switch_stall_ms`` None (the probe watches the embedded
generation switch) and ``milvus_disk_bytes`` added. Lite's latency says nothing
of a cluster's.

Builds go through the ``karabakh-qa index`` CLI as subprocesses with the hashing
embedder ``hash-bow-384`` (no neural model); add/change/remove figures are the
command's own seconds after its imports, measured inside the child (RUNNER), and
are repeated with ``karabakh-qa journal`` running (``*_journal_one_s``);
``--keep-index`` reuses the cached index instead of a full build. Query, upload
and switch figures are measured in fresh child processes running the library
in-process (``--probe``),
so that the benchmark's own memory never adds to them. Progress goes to stderr,
one JSON object to stdout (and to ``--json PATH``). Figures are printed, never
asserted. The corpus is cached under ``.cache/bench_scale/corpus-N`` and restored
after the run (the add/change/remove steps touch it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, percentiles  # noqa: E402
from synthetic import (  # noqa: E402
    article_text,
    extra_paragraph,
    file_name,
    n_articles,
    questions,
    write_corpus,
)

ROOT = Path(__file__).resolve().parents[1]
MODEL = "hash-bow-384"
REPS = 3
ACCEPT_REPS = 7  # SearchService.add calls timed
SWITCH_REPS = 5  # switch probes per run: the stall is reported as their median and max
STARTUP_REPS = 5
WARMUP = 10
JOURNAL_SETTLE_S = 1.0
STORE_ARGS: list[str] = []  # --store milvus --milvus-uri URI for every build
MILVUS_DIR: list[Path] = []  # where the Lite server keeps its file
JOURNAL_REPS = 7  # these walls sit close to start-up: more samples for a steadier median
JOURNAL_CHANGE = [10 + 3 * r for r in range(JOURNAL_REPS)]
JOURNAL_REMOVE = [11 + 3 * r for r in range(JOURNAL_REPS)]
TOUCHED = ".bench-touched.json"  # hidden: which articles this run modified, for restoring

_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def cli_path() -> str:
    """The project's ``karabakh-qa`` entry point (next to this Python)."""
    for cand in (Path(sys.executable).parent / "karabakh-qa", ROOT / ".venv/bin/karabakh-qa"):
        if cand.exists():
            return str(cand)
    return "karabakh-qa"


def child_env(articles: Path, index: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARABAKH_QA_")}
    env.update(
        HF_HUB_OFFLINE="1",
        KARABAKH_QA_ARTICLES=str(articles),
        KARABAKH_QA_INDEX=str(index),
    )
    return env


def settings_for(articles: Path, index: Path):
    from karabakh_qa.config import Settings

    return Settings(articles_dir=articles, index_dir=index, model_name=MODEL)


# --- subprocess helpers -----------------------------------------------------------


# Runs the CLI like its entry point does, and reports how long the command took
# after the imports: "beyond process start-up", measured inside the process (a wall
# minus a separately measured start-up is at the mercy of ±50 ms of noise here).
RUNNER = """import sys, time
from karabakh_qa.cli import main
t = time.perf_counter()
try:
    main(sys.argv[1:], prog_name="karabakh-qa")
finally:
    print(f"command_s {time.perf_counter() - t:.6f}", file=sys.stderr)
"""


def run_timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str, float]:
    """Run ``cmd``; return (wall seconds, the child's peak RSS in GB, its stdout, and
    the seconds its command took beyond start-up when it runs through RUNNER, else
    the wall)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stdout}{stderr[-3000:]}")
    m = re.search(r"^command_s ([0-9.]+)$", stderr, re.M)
    return wall, usage.ru_maxrss / 1024**2, stdout, float(m.group(1)) if m else wall


def index_cmd() -> list[str]:
    """``karabakh-qa index`` through RUNNER (the venv's Python, like the entry point)."""
    python = str(Path(cli_path()).parent / "python")
    return [python, "-c", RUNNER, "index", "--model", MODEL, *STORE_ARGS]


def cli_index(env: dict[str, str]) -> tuple[float, float]:
    """One ``karabakh-qa index`` run: (wall s, peak RSS GB)."""
    wall, peak, _, _ = run_timed(index_cmd(), env)
    return wall, peak


def probe(name: str, args: argparse.Namespace, articles: Path, index: Path, **extra) -> dict:
    """Run ``probe_<name>`` in a fresh Python child; return its JSON result."""
    cmd = [sys.executable, __file__, "--probe", name, "--articles", str(articles)]
    cmd += ["--index", str(index), "--queries", str(args.queries)]
    cmd += ["--probe-args", json.dumps(extra)]
    res = subprocess.run(cmd, env=child_env(articles, index), stdout=subprocess.PIPE, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"probe {name} failed ({res.returncode})")
    return json.loads(res.stdout.strip().splitlines()[-1])


# --- the corpus and its edits ------------------------------------------------------


class Corpus:
    """The cached synthetic folder, with the edits a run makes and their undoing."""

    def __init__(self, folder: Path, n_passages: int) -> None:
        self.folder = folder
        self.n_passages = n_passages
        self.restore()  # a previous run that was killed may have left edits behind
        t = time.perf_counter()
        self.n_articles = write_corpus(folder, n_passages)
        self.write_s = time.perf_counter() - t
        self.next_new = self.n_articles  # articles n, n+1, ... are new ones
        self.touched: set[int] = set()

    def touch(self, i: int) -> None:
        self.touched.add(i)
        (self.folder / TOUCHED).write_text(json.dumps(sorted(self.touched)))

    def add(self) -> str:
        i = self.next_new
        self.next_new += 1
        self.touch(i)
        (self.folder / file_name(i)).write_text(article_text(i), encoding="utf-8")
        return file_name(i)

    def change(self, i: int) -> str:
        self.touch(i)
        with open(self.folder / file_name(i), "a", encoding="utf-8") as fh:
            fh.write("\n" + extra_paragraph(i) + "\n")
        return file_name(i)

    def remove(self, i: int) -> str:
        self.touch(i)
        (self.folder / file_name(i)).unlink()
        return file_name(i)

    def restore(self) -> None:
        """Undo every recorded edit: originals rewritten, new articles deleted."""
        marker = self.folder / TOUCHED
        if not marker.exists():
            return
        n = n_articles(self.n_passages)
        for i in json.loads(marker.read_text()):
            path = self.folder / file_name(i)
            if i < n:
                path.write_text(article_text(i), encoding="utf-8")
            else:
                path.unlink(missing_ok=True)
        marker.unlink()


# --- figures measured by the benchmark process (CLI subprocesses) ---------------


def startup_s(env: dict[str, str]) -> float:
    """Median wall of ``karabakh-qa index --help``: process start-up plus imports."""
    walls = [run_timed([cli_path(), "index", "--help"], env)[0] for _ in range(STARTUP_REPS)]
    return statistics.median(walls)


def full_build(env: dict[str, str], index: Path) -> tuple[float, float]:
    """Wall and peak RSS (GB) of the first build into an empty index folder."""
    shutil.rmtree(index, ignore_errors=True)
    return cli_index(env)


ADDED = {"added": 1, "changed": 0, "removed": 0}
CHANGED = {"added": 0, "changed": 1, "removed": 0}
REMOVED = {"added": 0, "changed": 0, "removed": 1}


def timed_edits(
    env: dict[str, str],
    edits: list[Callable[[], str]],
    expect: dict[str, int],
    named_in: Path | None = None,
) -> list[float]:
    """After each edit of the corpus, the seconds of one ``karabakh-qa index`` beyond
    start-up (``index FILE`` with the edited file when ``named_in`` is its folder);
    warns when the build reports another diff than ``expect``."""
    out = []
    for edit in edits:
        name = edit()
        files = [str(named_in / name)] if named_in else []
        _, _, stdout, took = run_timed([*index_cmd(), *files], env)
        m = re.search(r"added (\d+), changed (\d+), removed (\d+)", stdout)
        got = dict(zip(expect, map(int, m.groups()), strict=True)) if m else {}
        if got != expect:
            log(f"WARNING: expected {expect}, the build reported {got or stdout!r}")
        out.append(took)
    return out


def add_one(env: dict[str, str], corpus: Corpus, reps: int = REPS) -> list[float]:
    """``index`` after writing one new 8-paragraph article, ``reps`` times."""
    return timed_edits(env, [corpus.add] * reps, ADDED)


def add_one_named(env: dict[str, str], corpus: Corpus) -> list[float]:
    """``index FILE`` (no folder scan) after writing one new article, REPS times."""
    return timed_edits(env, [corpus.add] * REPS, ADDED, corpus.folder)


def spread(corpus: Corpus, first: int) -> list[int]:
    """REPS existing articles spread over the corpus (``first`` 1, 2: change, remove)."""
    return [first + r * (corpus.n_articles // (REPS + 1)) for r in range(REPS)]


def change_one(env: dict[str, str], corpus: Corpus, which: list[int] | None = None) -> list[float]:
    """``index`` after appending a paragraph to each existing article ``which``."""
    which = spread(corpus, 1) if which is None else which
    return timed_edits(env, [functools.partial(corpus.change, i) for i in which], CHANGED)


def remove_one(env: dict[str, str], corpus: Corpus, which: list[int] | None = None) -> list[float]:
    """``index`` after deleting each existing article ``which``, one at a time."""
    which = spread(corpus, 2) if which is None else which
    return timed_edits(env, [functools.partial(corpus.remove, i) for i in which], REMOVED)


@contextlib.contextmanager
def journal_running(env: dict[str, str]) -> Iterator[None]:
    """``karabakh-qa journal`` in the background, and one ``index`` run that scans
    once and records where it read the journal (later runs read only the journal)."""
    proc = subprocess.Popen([cli_path(), "journal"], env=env, stdout=subprocess.DEVNULL)
    try:
        time.sleep(JOURNAL_SETTLE_S)  # the watcher places its inotify watches
        cli_index(env)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def disk_bytes(index: Path) -> int:
    """Total size of the files under the index folder."""
    total = 0
    for dirpath, _, names in os.walk(index):
        for name in names:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


# --- figures measured in fresh child processes (``--probe NAME``) ----------------


def probe_health(settings, n_queries: int, extra: dict) -> dict:
    """``health()`` of a freshly opened service: passages, articles, segments."""
    from karabakh_qa.service import SearchService

    h = SearchService(settings).health()
    return {k: h.get(k) for k in ("generation", "articles", "passages", "segments")}


def settle(svc) -> None:
    """Wait for the ANN sign bits of the segments that use them: a serving process
    builds them in the background on its first queries; figures are steady state."""
    from karabakh_qa.store.embedded.ann import uses_ann

    for seg in svc.index().segments:
        if uses_ann(svc.settings.dense, seg.rows):
            seg.vectors.signs.ready(wait=True)


def probe_queries(settings, n_queries: int, extra: dict) -> dict:
    """p50/p95 of in-process ``search(q, 10)`` over ``n_queries`` after WARMUP warm-ups."""
    from karabakh_qa.service import SearchService

    svc = SearchService(settings)
    qs = questions(n_queries + WARMUP)
    for q in qs[:WARMUP]:
        svc.search(q, 10)
    settle(svc)
    ms = []
    for q in qs[WARMUP:]:
        t = time.perf_counter()
        svc.search(q, 10)
        ms.append((time.perf_counter() - t) * 1000)
    p50, p95 = percentiles(ms)
    # What the ANN (Settings.dense "auto") returns against exact search, on these
    # hash-bow vectors (its parameters come from real embeddings: study_ann.py).
    index, recall = svc.index(), []
    for q in qs[WARMUP : WARMUP + 50]:
        qvec = svc.embedder.encode([q])[0]
        exact = set(index.dense_top(qvec, 100, None, "exact").tolist())
        auto = set(index.dense_top(qvec, 100, None, "auto").tolist())
        recall.append(len(exact & auto) / max(1, len(exact)))
    return {
        "query_p50_ms": p50,
        "query_p95_ms": p95,
        "query_max_ms": max(ms),
        "dense_auto_recall_at_100": statistics.mean(recall),
    }


def probe_rss(settings, n_queries: int, extra: dict) -> dict:
    """VmRSS (GB) of a process serving as ``karabakh-qa serve`` does (its refresher
    running): after 20 queries and a release of the mapped pages, and at most
    (VmHWM) while 200 more questions run back to back."""
    from karabakh_qa.service import SearchService

    svc = SearchService(settings)
    svc.start_refresher()
    for q in questions(20):
        svc.search(q, 10)
    settle(svc)
    svc.index().release()  # what the refresher does once RSS passes its threshold
    loaded = _status_kb()
    for q in questions(220)[20:]:
        svc.search(q, 10)
    after = _status_kb()
    return {
        "rss_loaded_gb": loaded["VmRSS"] / 1024**2,
        # RssFile: pages of the mapped index files this process has touched (page cache the
        # kernel reclaims under pressure); RssAnon: the process's own memory.
        "rss_loaded_anon_gb": loaded["RssAnon"] / 1024**2,
        "rss_loaded_file_gb": loaded["RssFile"] / 1024**2,
        "rss_serving_peak_gb": after["VmHWM"] / 1024**2,
        "rss_after_220_queries_gb": after["VmRSS"] / 1024**2,
    }


def _status_kb() -> dict[str, int]:
    status = Path("/proc/self/status").read_text()
    keys = ("VmRSS", "VmHWM", "RssAnon", "RssFile")
    return {k: int(re.search(rf"^{k}:\s+(\d+)", status, re.M).group(1)) for k in keys}


def probe_lib_add(settings, n_queries: int, extra: dict) -> dict:
    """Milliseconds of ``build(only=[name])`` for new articles; then of
    ``SearchService.add`` (the article checked, saved and queued: what a caller
    waits for), until the serving generation holds it (searchable) and until its job
    is done (a merge may follow the publish), one article at a time, in a process
    serving as ``karabakh-qa serve`` does (its refresher running)."""
    from karabakh_qa.service import SearchService

    svc = SearchService(settings)
    svc.health()  # a serving process has its index and embedder loaded already
    svc.embedder  # noqa: B018
    settle(svc)  # and its ANN bits built (they build in the background on open)
    api, ms = "build(only=...)", []
    for i in extra["new"]:
        name = file_name(i)
        (settings.articles_dir / name).write_text(article_text(i), encoding="utf-8")
        t = time.perf_counter()
        try:
            svc.build(only=[name])
        except TypeError as exc:
            if "only" not in str(exc):
                raise
            api = "build"
            t = time.perf_counter()
            svc.build()
        ms.append((time.perf_counter() - t) * 1000)
    accept, visible, done, names = [], [], [], []
    svc.start_refresher()
    for i in extra["accepted"]:  # SearchService.add: saved and queued, indexed behind
        raw = article_text(i).encode()
        t = time.perf_counter()
        job = svc.add(raw)
        accept.append((time.perf_counter() - t) * 1000)
        while svc.index().locate_article(job.source) is None:  # served: questions find it
            time.sleep(0.0002)
        visible.append((time.perf_counter() - t) * 1000)
        svc.jobs.wait(job.id)
        done.append((time.perf_counter() - t) * 1000)
        names.append(job.source)
    unindex(svc, names)
    return {
        "add_one_lib_ms": statistics.median(ms),
        "add_one_lib_samples_ms": ms,
        "api": api,
        "add_accept_lib_ms": statistics.median(accept),
        "add_accept_lib_samples_ms": accept,
        "add_visible_lib_ms": statistics.median(visible),
        "add_job_done_lib_ms": statistics.median(done),
    }


def unindex(svc, names: list[str]) -> None:
    """Delete uploaded files and take them out of the index (uploads carry their own
    names, which the corpus's restore does not know)."""
    for name in names:
        (svc.settings.articles_dir / name).unlink()
    svc.build(only=names)


BURST = 40  # uploads sent back to back by probe_burst


def probe_burst(settings, n_queries: int, extra: dict) -> dict:
    """A burst of BURST uploads over HTTP (``POST /api/articles``, the Flask test
    client) to a warm server: the median time to accept one (saved and fsynced, a
    job queued: 202) and the time until all are searchable, once with a build per
    upload (``Jobs(batch=1)``, as before coalescing) and once coalesced (the uploads
    that queue while a build runs go into the next one). The uploaded files are
    removed and unindexed afterwards."""
    from karabakh_qa.jobs import Jobs
    from karabakh_qa.service import SearchService
    from karabakh_qa.web import create_app

    settings = settings.replace(admin_token="bench")
    svc = SearchService(settings)
    svc.start_refresher()
    svc.health()
    svc.embedder  # noqa: B018
    settle(svc)
    out: dict = {}
    first = extra["first"]
    for label, batch in (("one_each", 1), ("coalesced", 256)):
        svc.jobs = jobs = Jobs(batch=batch)
        client, accept, ids, names = create_app(settings, svc).test_client(), [], [], []
        t0 = time.perf_counter()
        for i in range(first, first + BURST):
            body = {"text": article_text(i).split("\n", 1)[1], "title": f"Burst {i}"}
            t = time.perf_counter()
            r = client.post("/api/articles", json=body, headers={"Authorization": "Bearer bench"})
            accept.append((time.perf_counter() - t) * 1000)
            ids.append(r.get_json()["job"]["id"])
            names.append(r.get_json()["source"])
        states = [jobs.wait(j).state for j in ids]
        wall = time.perf_counter() - t0
        if states != ["done"] * BURST:
            raise RuntimeError(f"burst uploads ended {states}")
        out[f"burst_{label}_accept_ms"] = statistics.median(accept)
        out[f"burst_{label}_s"] = wall
        out[f"burst_{label}_per_s"] = BURST / wall
        unindex(svc, names)
        first += BURST
    svc.stop_refresher()
    return out


def probe_switch(settings, n_queries: int, extra: dict) -> dict:
    """Query latencies while a ``karabakh-qa index`` subprocess adds one article,
    in a service that refreshes in the background as the server does.

    A thread runs queries back to back. The stall (the issue's "slowest query that
    runs while the server switches to the new generation") is the slowest query in
    flight while the refresher opened a new generation, or the first query on it.
    ``build_window_max_ms`` is the slowest query that started between the build's
    start and 1 s after its end: what sharing 2 cores with a build costs, switch or
    not (this probe's stall until the refresher existed).
    """
    from karabakh_qa.service import SearchService

    svc = SearchService(settings)
    qs = questions(max(n_queries, 50) + WARMUP)
    for q in qs[:WARMUP]:
        svc.search(q, 10)
    settle(svc)
    svc.start_refresher()  # as `karabakh-qa serve` runs it
    gen_before = svc.health()["generation"]
    samples: list[tuple[float, float, int | None]] = []  # (start, end, generation)
    stop = threading.Event()

    def run_queries() -> None:
        k = 0
        while not stop.is_set():
            q = qs[WARMUP + k % (len(qs) - WARMUP)]
            k += 1
            t = time.perf_counter()
            res = svc.search(q, 10)
            samples.append((t, time.perf_counter(), res.index.get("generation")))

    i = extra["new"]
    (settings.articles_dir / file_name(i)).write_text(article_text(i), encoding="utf-8")
    worker = threading.Thread(target=run_queries, daemon=True)
    worker.start()
    time.sleep(1.0)
    t0 = time.perf_counter()
    build_wall = run_timed(index_cmd(), dict(os.environ))[0]
    t1 = time.perf_counter()
    time.sleep(1.0)
    stop.set()
    worker.join()
    window = [(e - s) * 1000 for s, e, _ in samples if t0 <= s <= t1 + 1.0]
    before = [(e - s) * 1000 for s, e, _ in samples if s < t0]
    first_new = [(e - s) * 1000 for s, e, g in samples if g is not None and g > gen_before]
    switches = [w for w in svc.switches if w.generation > gen_before]
    around = []
    for w in switches:  # in flight while it opened, and the first query on it
        around += [(e - s) * 1000 for s, e, _ in samples if s <= w.finished and e >= w.started]
        on_it = [(e - s) * 1000 for s, e, g in samples if g == w.generation]
        around += on_it[:1]
    return {
        "switch_stall_ms": max(around) if around else None,
        "switch_open_ms": [round((w.finished - w.started) * 1000, 2) for w in switches],
        "build_window_max_ms": max(window) if window else None,
        "switch_window_p50_ms": statistics.median(window) if window else None,
        "switch_window_queries": len(window),
        "switch_baseline_p50_ms": statistics.median(before) if before else None,
        "switch_build_wall_s": build_wall,
        "switch_generation_seen": bool(first_new),
        "switch_first_new_query_ms": first_new[0] if first_new else None,
        "switch_baseline_max_ms": max(before) if before else None,
        **_chore_costs(svc, samples),
    }


def _chore_costs(svc, samples: list[tuple[float, float, int | None]]) -> dict:
    """The slowest query overlapping each kind of refresher chore, and the slowest
    overlapping none (where a stall comes from)."""
    out, touched = {}, set()
    for kind in ("prepare", "release"):
        spans = [(s, e) for k, s, e in svc.chores if k == kind]
        hit = [
            i for i, (s, e, _) in enumerate(samples) if any(s <= ce and e >= cs for cs, ce in spans)
        ]
        touched.update(hit)
        slow = [(samples[i][1] - samples[i][0]) * 1000 for i in hit]
        out[f"chore_{kind}_ms"] = [round((e - s) * 1000, 2) for s, e in spans][-5:]
        out[f"chore_{kind}_query_max_ms"] = max(slow) if slow else None
    rest = [(e - s) * 1000 for i, (s, e, _) in enumerate(samples) if i not in touched]
    out["chore_free_query_max_ms"] = max(rest) if rest else None
    return out


def probe_lib_edits(settings, n_queries: int, extra: dict) -> dict:
    """Milliseconds of ``build(only=[name])`` in a warm service after changing, then
    after removing, an existing article (each undone, unmeasured, before the next)."""
    from karabakh_qa.service import SearchService

    svc = SearchService(settings)
    svc.health()  # the index, and a Milvus store, opened and loaded
    out: dict[str, list[float]] = {"change": [], "remove": []}
    for kind, which in (("change", extra["change"]), ("remove", extra["remove"])):
        for i in which:
            path = settings.articles_dir / file_name(i)
            if kind == "change":
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write("\n" + extra_paragraph(i) + "\n")
            else:
                path.unlink()
            t = time.perf_counter()
            svc.build(only=[file_name(i)])
            out[kind].append((time.perf_counter() - t) * 1000)
            path.write_text(article_text(i), encoding="utf-8")
            svc.build(only=[file_name(i)])
    return {
        "change_one_lib_ms": statistics.median(out["change"]),
        "remove_one_lib_ms": statistics.median(out["remove"]),
        "edit_one_lib_samples_ms": out,
    }


PROBES = {
    "lib_edits": probe_lib_edits,
    "health": probe_health,
    "queries": probe_queries,
    "rss": probe_rss,
    "lib_add": probe_lib_add,
    "burst": probe_burst,
    "switch": probe_switch,
}


# --- report ------------------------------------------------------------------------


def machine_info() -> dict:
    cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    mem = re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    spec = importlib.util.find_spec("karabakh_qa")
    return {
        "cpu": cpu.group(1) if cpu else platform.processor(),
        "cpus": len(os.sched_getaffinity(0)),
        "mem_gb": round(int(mem.group(1)) / 1024**2, 1) if mem else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": commit,
        "src_modified": bool(dirty),
        "karabakh_qa": str(Path(spec.origin).parent) if spec and spec.origin else None,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_1m_start": os.getloadavg()[0],  # other work on the box inflates every figure
    }


def rounded(d: dict) -> dict:
    def r(v):
        if isinstance(v, float):
            return round(v, 4 if abs(v) < 10 else 2)
        if isinstance(v, list):
            return [r(x) for x in v]
        return v

    return {k: r(v) for k, v in d.items()}


def run(args: argparse.Namespace) -> dict:
    base = args.workdir or ROOT / ".cache" / "bench_scale"
    articles = base / "corpus" if args.workdir else base / f"corpus-{args.passages}"
    index = base / "index" if args.workdir else base / f"index-{args.passages}"
    env = child_env(articles, index)
    out: dict = {"passages_requested": args.passages, "model": MODEL, "machine": machine_info()}

    log(f"corpus {articles}")
    corpus = Corpus(articles, args.passages)
    out["corpus_write_s"] = corpus.write_s
    log(f"{corpus.n_articles} articles ready in {corpus.write_s:.1f}s")
    try:
        startup = startup_s(env)
        log(f"startup {startup:.2f}s")

        if args.keep_index:  # bring the cached index up to date; no full-build figures
            log("keeping the cached index ...")
            cli_index(env)
            full_s = peak = None
        else:
            log("full build ...")
            full_s, peak = full_build(env, index)
        health = probe("health", args, articles, index)
        out.update(
            full_build_s=full_s,
            build_peak_gb=peak,
            passages=health["passages"],
            articles=health["articles"],
            segments_after_full_build=health.get("segments"),
            disk_bytes=disk_bytes(index),
        )
        out["disk_bytes_per_passage"] = out["disk_bytes"] / max(1, health["passages"])
        log(f"full build {full_s}s, peak {peak} GB, {health['passages']} passages")

        steps = (
            ("add", add_one),
            ("add_named", add_one_named),
            ("change", change_one),
            ("remove", remove_one),
        )
        for name, step in steps:
            walls = step(env, corpus)
            out[f"{name}_one_s"] = statistics.median(walls)
            out[f"{name}_one_net_s"] = walls
            log(f"{name} one: beyond start-up {', '.join(f'{w:.3f}' for w in walls)} s")
        out["startup_s"] = startup

        with journal_running(env):  # the same steps, on other articles, reading the journal
            steps = (
                ("add", functools.partial(add_one, reps=JOURNAL_REPS)),
                # articles 10-30: apart from spread()'s, which a stride of n/4 puts further
                ("change", functools.partial(change_one, which=JOURNAL_CHANGE)),
                ("remove", functools.partial(remove_one, which=JOURNAL_REMOVE)),
            )
            for name, step in steps:
                walls = step(env, corpus)
                out[f"{name}_journal_one_s"] = statistics.median(walls)
                out[f"{name}_journal_one_net_s"] = walls
                log(
                    f"{name} one with the journal: beyond start-up "
                    f"{', '.join(f'{w:.3f}' for w in walls)} s"
                )

        new = [corpus.next_new + k for k in range(REPS)]
        for i in new:
            corpus.touch(i)
        corpus.next_new += REPS
        accepted = [corpus.next_new + k for k in range(ACCEPT_REPS)]
        corpus.next_new += ACCEPT_REPS
        lib = probe("lib_add", args, articles, index, new=new, accepted=accepted)
        for key in ("add_one_lib_ms", "add_one_lib_samples_ms", "add_accept_lib_ms"):
            out[key] = lib[key]
        out["add_accept_lib_samples_ms"] = lib["add_accept_lib_samples_ms"]
        out["add_visible_lib_ms"] = lib["add_visible_lib_ms"]
        out["add_job_done_lib_ms"] = lib["add_job_done_lib_ms"]
        if lib["api"] != "build(only=...)":
            out["add_one_lib_api"] = lib["api"]
        log(f"library add {lib['add_one_lib_ms']:.0f} ms via {lib['api']}")
        log(
            f"library accept (SearchService.add) {lib['add_accept_lib_ms']:.2f} ms, "
            f"searchable after {lib['add_visible_lib_ms']:.0f} ms, "
            f"its job done after {lib['add_job_done_lib_ms']:.0f} ms"
        )
        burst = probe("burst", args, articles, index, first=corpus.next_new)
        corpus.next_new += 2 * BURST  # uploads carry their own names: nothing to restore
        out.update(burst)
        log(
            "burst of {n} uploads: accept {a:.2f} / {b:.2f} ms, all searchable after "
            "{c:.2f} / {d:.2f} s (a build each / coalesced)".format(
                n=BURST,
                a=burst["burst_one_each_accept_ms"],
                b=burst["burst_coalesced_accept_ms"],
                c=burst["burst_one_each_s"],
                d=burst["burst_coalesced_s"],
            )
        )

        if STORE_ARGS:  # a warm service's edits: what the server's upload path costs
            edits = {"change": [40, 4040, 8040], "remove": [41, 4041, 8041]}
            for i in [*edits["change"], *edits["remove"]]:
                corpus.touch(i)
            lib = probe("lib_edits", args, articles, index, **edits)
            out.update(lib)
            ms = (lib["change_one_lib_ms"], lib["remove_one_lib_ms"])
            log(f"library change {ms[0]:.0f} ms, remove {ms[1]:.0f} ms")

        stalls = []
        for _ in range(0 if STORE_ARGS else SWITCH_REPS):  # one stall: a sample of a max
            corpus.touch(corpus.next_new)
            switch = probe("switch", args, articles, index, new=corpus.next_new)
            corpus.next_new += 1
            stalls.append(switch["switch_stall_ms"])
            log(f"switch stall {switch['switch_stall_ms']} ms")
        if stalls:
            out.update(switch)  # the last run's details
        seen = [x for x in stalls if x is not None]
        out["switch_stall_ms"] = statistics.median(seen) if seen else None
        out["switch_stall_max_ms"] = max(seen) if seen else None
        out["switch_stall_samples_ms"] = stalls

        out.update(probe("queries", args, articles, index))
        log(f"queries p50 {out['query_p50_ms']:.1f} ms, p95 {out['query_p95_ms']:.1f} ms")
        out.update(probe("rss", args, articles, index))
        log(f"rss loaded {out['rss_loaded_gb']:.2f} GB")

        end = probe("health", args, articles, index)
        out.update(segments=end.get("segments"), passages_end=end["passages"])
        out["disk_bytes_end"] = disk_bytes(index)
        if STORE_ARGS:
            out["store"] = "milvus (Lite)"
            out["milvus_disk_bytes"] = disk_bytes(MILVUS_DIR[0])
            out["milvus_disk_bytes_per_passage"] = out["milvus_disk_bytes"] / max(
                1, end["passages"]
            )
    finally:
        corpus.restore()
    out["bench_wall_s"] = time.perf_counter() - _T0
    out["loadavg_1m_end"] = os.getloadavg()[0]
    order = [
        "full_build_s", "add_one_s", "add_named_one_s", "change_one_s", "remove_one_s",
        "add_journal_one_s", "change_journal_one_s", "remove_journal_one_s", "startup_s",
        "add_one_lib_ms", "switch_stall_ms", "switch_stall_max_ms", "build_window_max_ms",
        "query_p50_ms", "query_p95_ms",
        "dense_auto_recall_at_100",
        "disk_bytes_per_passage", "rss_loaded_gb", "build_peak_gb", "segments",
        "passages", "articles",
    ]  # fmt: skip
    return rounded({**{k: out.pop(k, None) for k in order}, **out})


def lite_server(db: Path) -> str:
    """Start Milvus Lite as a server on a free local port (stopped when this process
    exits); its URI."""
    import atexit
    import socket
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from milvus_lite.server import Server

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = Server(str(db), address=f"127.0.0.1:{port}")
    if not server.init() or not server.start():
        raise RuntimeError(f"Milvus Lite did not start on port {port}")
    atexit.register(server.stop)
    time.sleep(2)  # its gRPC port opens after the process starts
    return f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=20000)
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    parser.add_argument("--workdir", type=Path, help="corpus and index here (default .cache/)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--keep-index", action="store_true", help="reuse the cached index (no full build figures)"
    )
    parser.add_argument("--probe", choices=sorted(PROBES), help=argparse.SUPPRESS)
    parser.add_argument("--articles", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--probe-args", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--store", choices=["embedded", "milvus"], default="embedded")
    args = parser.parse_args()
    if args.store == "milvus" and not args.probe:
        base = args.workdir or ROOT / ".cache" / "bench_scale"
        lite = base / f"milvus-{args.passages}" / "lite.db"
        shutil.rmtree(lite.parent, ignore_errors=True)  # a full build starts it afresh
        lite.parent.mkdir(parents=True)
        server = lite_server(lite)
        MILVUS_DIR.append(lite.parent)
        STORE_ARGS.extend(["--store", "milvus", "--milvus-uri", server])
    if args.passages < 100:
        parser.error("--passages must be at least 100")
    if args.probe:
        from karabakh_qa.cli import GIL_SWITCH_S

        sys.setswitchinterval(GIL_SWITCH_S)  # as in the CLI's processes (serve among them)
        settings = settings_for(args.articles, args.index)
        result = PROBES[args.probe](settings, args.queries, json.loads(args.probe_args))
        print(json.dumps(result))
        return
    result = run(args)
    emit(result, args.json)


if __name__ == "__main__":
    main()
