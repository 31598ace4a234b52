"""Run `karabakh-qa serve` in a child process on a free loopback port.

Used by the browser test and the HTTP benchmark: both need the real waitress
server, started the way a user starts it, and stopped afterwards.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]  # (host, port) for AF_INET; typeshed says Any
        return port


@contextlib.contextmanager
def running_server(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 180.0
) -> Iterator[tuple[str, int]]:
    """Yield (base URL, port) once ``/api/health`` answers 200; stop the server after."""
    port = free_port()
    # The server's output goes to a file, not a pipe: under load waitress logs a
    # warning per queued request, and an undrained pipe would block the server.
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "karabakh_qa.cli", "serve", "--port", str(port), *args],
            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.time() + timeout
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/api/health")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.time() > deadline or proc.poll() is not None:
                    proc.kill()
                    log.seek(0)
                    raise RuntimeError("server did not start: " + log.read()[-2000:])
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}", port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
