"""Issue 13: the HTTP server as the internet meets it (waitress, configured by Settings)."""

import socket
import threading

import pytest
import waitress
from waitress.adjustments import Adjustments

from karabakh_qa.web import server_options


def test_server_options_are_valid_waitress_settings(seed_settings):
    options = server_options(seed_settings.replace(server_idle_timeout_s=7), threads=3)
    adj = Adjustments(**options)
    assert (adj.threads, adj.connection_limit, adj.channel_timeout, adj.cleanup_interval) == (
        3,
        1000,
        7,
        2,
    )
    assert adj.max_request_body_size == seed_settings.max_request_bytes + 64 * 1024


@pytest.fixture
def server(app, seed_settings):
    srv = waitress.create_server(
        app, host="127.0.0.1", port=0, **server_options(seed_settings, threads=2)
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield srv.effective_port
    srv.close()


def exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_a_body_over_the_limit_is_refused_from_its_length_before_it_is_sent(server):
    head = (
        b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200000000\r\nConnection: close\r\n\r\n"
    )
    answer = exchange(server, head)  # no body at all: the answer cannot wait for it
    assert answer.startswith(b"HTTP/1.1 413")


def test_idle_connections_beyond_waitress_defaults_do_not_lock_clients_out(server):
    idle = [socket.create_connection(("127.0.0.1", server), timeout=10) for _ in range(120)]
    try:
        answer = exchange(
            server, b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        for sock in idle:
            sock.close()
