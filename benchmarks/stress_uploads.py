"""Uploads in bursts while questions run: does anything fail?

A server process as ``karabakh-qa serve`` runs it (the refresher on): bursts of
uploads, half through ``SearchService.add`` and half through ``POST /api/articles``
(the Flask test client), while three threads ask questions through ``/api/ask``.
Prints the uploads, the questions answered, the failed requests and the failed
jobs (all should be 0) and how many builds indexed the uploads (coalesced). The
corpus is the synthetic one of bench_scale.py, built here in a temporary folder
with the hash embedder. Runs of it found two races (README "Reliability"), though
neither shows in every run: the unit tests that pin them down are the check.

Run: .venv/bin/python benchmarks/stress_uploads.py [--passages 20000] [--bursts 6]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import emit  # noqa: E402
from synthetic import article_text, questions, write_corpus  # noqa: E402

BURST = 25  # uploads per burst, back to back
QUERY_THREADS = 3


def run(passages: int, bursts: int) -> dict:
    from karabakh_qa.config import Settings
    from karabakh_qa.service import SearchService
    from karabakh_qa.web import create_app

    work = Path(tempfile.mkdtemp(prefix="kqa-stress-"))
    write_corpus(work / "articles", passages)
    settings = Settings(
        articles_dir=work / "articles",
        index_dir=work / "index",
        model_name="hash-bow-384",
        admin_token="stress",
    )
    svc = SearchService(settings)
    svc.build()
    svc.start_refresher()
    app = create_app(settings, svc)
    asked = questions(500)
    failed: list[object] = []
    answered = [0] * QUERY_THREADS
    stop = threading.Event()

    def ask(k: int) -> None:
        client, rng = app.test_client(), random.Random(k)
        while not stop.is_set():
            r = client.get("/api/ask", query_string={"q": rng.choice(asked), "k": 5})
            answered[k] += 1
            if r.status_code != 200:
                failed.append((r.status_code, r.get_json()))

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(QUERY_THREADS)]
    for t in threads:
        t.start()
    client, jobs = app.test_client(), []
    t0 = time.perf_counter()
    for burst in range(bursts):
        for i in range(BURST):
            n = 10_000_000 + burst * BURST + i
            if i % 2:
                jobs.append(svc.add(article_text(n).encode()).id)
                continue
            body = {"text": article_text(n).split("\n", 1)[1]}
            r = client.post("/api/articles", json=body, headers={"Authorization": "Bearer stress"})
            if r.status_code != 202:
                failed.append((r.status_code, r.get_json()))
            else:
                jobs.append(r.get_json()["job"]["id"])
        time.sleep(0.5)
    ended = [svc.jobs.wait(j, 300) for j in jobs]
    wall = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join()
    svc.stop_refresher()
    return {
        "passages": passages,
        "uploads": len(jobs),
        "seconds": round(wall, 1),
        "questions_answered": sum(answered),
        "failed_requests": len(failed),
        "failed_jobs": sum(j.state != "done" for j in ended),
        "builds": len({id(j.result) for j in ended if j.result is not None}),
        "first_failures": [str(f)[:300] for f in failed[:3]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--bursts", type=int, default=6)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    emit(run(args.passages, args.bursts), args.json)


if __name__ == "__main__":
    main()
