"""HTTP latency of /api/ask on the seeds, and throughput of 8 concurrent clients.

Run: .venv/bin/python benchmarks/bench_http.py [--clients 8] [--seconds 30]
Starts `karabakh-qa serve` (waitress) on a free loopback port with a fresh index
built from seeds/, then stops it. Traffic goes to 127.0.0.1 only, bounded in time.
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
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_server(
            ["--threads", str(args.server_threads)],
            {"KARABAKH_QA_INDEX": str(Path(tmp) / "index")},
        ) as (_, port),
    ):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for q in QUESTIONS[:5]:
            ask(conn, q)
        samples = []
        for q in QUESTIONS * 4:
            t = time.perf_counter()
            status = ask(conn, q)
            samples.append((time.perf_counter() - t) * 1000)
            assert status == 200, status
        p50, p95 = percentiles(samples)
        print(
            f"/api/ask sequential, seeds: p50 {p50:.2f} ms, p95 {p95:.2f} ms "
            f"over {len(samples)} requests (server threads {args.server_threads})"
        )

        counts, errors = [0] * args.clients, [0] * args.clients
        stop = time.time() + args.seconds

        def client(i: int) -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            n = 0
            while time.time() < stop:
                try:
                    ok = ask(c, QUESTIONS[(i + n) % len(QUESTIONS)]) == 200
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
