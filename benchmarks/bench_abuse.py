"""The server under abuse (issue 13): idle connections, uploads beside queries, a huge body.

Starts `karabakh-qa serve` (waitress, configured from Settings) on a copy of the
seed articles with the real model, then measures, printing figures (nothing asserted):
1. 150 connections opened and left idle: how long a normal question then takes;
2. queries/s of 4 clients alone, and while 8 uploads are saved and built as
   jobs (each waited for through ``GET /api/jobs/<id>``): the ratio;
3. a request announcing a 200 MB body: how long until the server answers, with
   how many body bytes sent by then (the server must refuse it from its length).

Run: .venv/bin/python benchmarks/bench_abuse.py [--seconds 8] [--json PATH]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit  # noqa: E402

from karabakh_qa.devserver import running_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-abuse-token"
QUESTION = "/api/ask?q=How+many+houses+have+been+destroyed%3F&k=5"


def ask_ms(port: int) -> tuple[int, float]:
    t = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", QUESTION)
    status = conn.getresponse().status
    return status, (time.perf_counter() - t) * 1000


def idle_connections(port: int, n: int = 150) -> dict:
    baseline = statistics.median(ask_ms(port)[1] for _ in range(5))
    idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
    try:
        time.sleep(0.5)
        status, ms = ask_ms(port)
    finally:
        for sock in idle:
            sock.close()
    return {
        "idle_connections": n,
        "query_ms_alone": baseline,
        "query_ms_beside_idle": ms,
        "query_status_beside_idle": status,
    }


def throughput(port: int, seconds: float, clients: int = 4) -> float:
    counts = [0] * clients
    stop = time.time() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.time() < stop:
            conn.request("GET", QUESTION)
            response = conn.getresponse()
            response.read()
            counts[i] += response.status == 200

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.time() - started)


def upload(port: int, i: int) -> str:
    body = json.dumps(
        {
            "text": f"Report {i}: engineers inspected dam number {i} near Tartar.\n\n"
            f"The inspection of dam {i} found cracks in {i + 3} places."
        }
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    conn.request("POST", "/api/articles", body, headers)
    response = conn.getresponse()
    data = json.loads(response.read())
    if response.status != 202:
        raise RuntimeError(f"upload {i}: {response.status} {data}")
    return data["job"]["id"]


def wait_jobs(port: int, ids: list[str], timeout: float = 300) -> list[str]:
    states, deadline = {}, time.time() + timeout
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.time() < deadline:
        for job_id in ids:
            conn.request("GET", f"/api/jobs/{job_id}", headers={"Authorization": f"Bearer {TOKEN}"})
            states[job_id] = json.loads(conn.getresponse().read())["job"]["state"]
        if all(s in ("done", "failed") for s in states.values()):
            break
        time.sleep(0.2)
    return [states[j] for j in ids]


def uploads_beside_queries(port: int, seconds: float) -> dict:
    idle_qps = throughput(port, seconds)
    result: dict = {}

    def uploader() -> None:
        ids = [upload(port, i) for i in range(8)]
        result["states"] = wait_jobs(port, ids)

    started = time.time()
    thread = threading.Thread(target=uploader)
    thread.start()
    busy_qps = throughput(port, seconds)
    thread.join()
    return {
        "qps_alone": idle_qps,
        "qps_during_8_uploads": busy_qps,
        "qps_ratio": busy_qps / idle_qps if idle_qps else None,
        "upload_jobs": result.get("states"),
        "uploads_wall_s": time.time() - started,
    }


def huge_body(port: int, announced: int = 200_000_000) -> dict:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {announced}\r\nConnection: close\r\n\r\n"
    ).encode()
    started = time.perf_counter()
    sock.sendall(head)
    sock.setblocking(False)
    chunk, sent, answer = b"x" * 65536, 0, b""
    while time.perf_counter() - started < 30 and sent < announced:
        try:
            answer += sock.recv(65536)
            if answer:
                break
        except BlockingIOError:
            pass
        except OSError:
            break
        try:
            sent += sock.send(chunk)
        except BlockingIOError:
            time.sleep(0.001)
        except OSError:  # the server closed the connection: refused
            break
    took = time.perf_counter() - started
    sock.close()
    return {
        "huge_body_announced_mb": announced / 1e6,
        "huge_body_answer_s": took,
        "huge_body_sent_mb": sent / 1e6,
        "huge_body_status": answer[:12].decode(errors="replace"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        articles = Path(tmp) / "articles"
        shutil.copytree(ROOT / "seeds", articles)
        env = {
            "KARABAKH_QA_ARTICLES": str(articles),
            "KARABAKH_QA_INDEX": str(Path(tmp) / "index"),
            "KARABAKH_QA_ADMIN_TOKEN": TOKEN,
        }
        with running_server(["--threads", "4"], {**os.environ, **env}) as (_, port):
            out = {
                **idle_connections(port),
                **uploads_beside_queries(port, args.seconds),
                **huge_body(port),
            }
    emit(out, args.json)


if __name__ == "__main__":
    main()
