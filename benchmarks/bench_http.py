"""HTTP latency of /api/ask, and throughput of 8 concurrent clients.

Run: .venv/bin/python benchmarks/bench_http.py [--clients 8] [--seconds 30]
Starts `karabakh-qa serve` (waitress) on a free loopback port with a fresh index
built from seeds/, then stops it. Traffic goes to 127.0.0.1 only, bounded in time.

At scale: --index DIR --articles DIR --query-model sentence-transformers/all-MiniLM-L6-v2
serves an existing index (e.g. bench_scale.py's hash-bow-384 one) and embeds the
questions (the synthetic corpus's) with the real model: the costs of the served
path with the real query model; the answers are meaningless.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import percentiles  # noqa: E402

from karabakh_qa.devserver import running_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEV = json.loads((ROOT / "tests" / "data" / "seed_dev.json").read_text())
QUESTIONS = [q["q"] for q in DEV["questions"]] + DEV["off_topic"]


def ask(conn: http.client.HTTPConnection, question: str) -> int:
    conn.request("GET", "/api/ask?" + urllib.parse.urlencode({"q": question, "k": 5}))
    resp = conn.getresponse()
    resp.read()
    return resp.status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--server-threads", type=int, default=4)
    parser.add_argument("--index", type=Path, help="serve this existing index")
    parser.add_argument("--articles", type=Path, help="its articles folder")
    parser.add_argument("--query-model", help="embed questions with this model")
    parser.add_argument(
        "--settle", type=float, default=0.0, help="seconds to wait after warm-up (ANN bits)"
    )
    args = parser.parse_args()
    questions = QUESTIONS * 4
    serve_args = ["--threads", str(args.server_threads)]
    if args.query_model:
        serve_args += ["--query-model", args.query_model]
    if args.index:
        from synthetic import questions as synthetic_questions

        questions = synthetic_questions(200)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"KARABAKH_QA_INDEX": str(args.index or Path(tmp) / "index")}
        if args.articles:
            env["KARABAKH_QA_ARTICLES"] = str(args.articles)
        with running_server(serve_args, env, timeout=600) as (_, port):
            run(args, port, questions)


def run(args: argparse.Namespace, port: int, questions: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for q in questions[:5]:
        ask(conn, q)
    time.sleep(args.settle)  # a large segment's ANN bits build in the background
    conn.close()  # the server closes connections idle beyond server_idle_timeout_s
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    samples = []
    for q in questions:
        t = time.perf_counter()
        status = ask(conn, q)
        samples.append((time.perf_counter() - t) * 1000)
        assert status == 200, status
    p50, p95 = percentiles(samples)
    print(
        f"/api/ask sequential: p50 {p50:.2f} ms, p95 {p95:.2f} ms "
        f"over {len(samples)} requests (server threads {args.server_threads})"
    )

    counts, errors = [0] * args.clients, [0] * args.clients
    stop = time.time() + args.seconds

    def client(i: int) -> None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.time() < stop:
            try:
                ok = ask(c, questions[(i + n) % len(questions)]) == 200
            except OSError:
                ok = False
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            counts[i] += ok
            errors[i] += not ok
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    print(
        f"{args.clients} concurrent clients for {elapsed:.1f}s: {sum(counts)} requests, "
        f"{sum(counts) / elapsed:.1f} req/s, errors {sum(errors)}"
    )


if __name__ == "__main__":
    main()
