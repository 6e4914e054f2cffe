"""Issue 13 item 9: a client that sends its request slowly (slowloris), or not at all, cannot hold a socket
without bound: headers must arrive within POLLAMA_READ_TIMEOUT, and a body may not stall longer than that.
Tested with raw sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Server, start_server

TIMEOUT = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("slow")
    server = start_server(directory / "models", directory / "server.log", {"POLLAMA_READ_TIMEOUT": f"{TIMEOUT}s"})
    yield server
    server.stop()


def connect(server: Server) -> socket.socket:
    url = urlsplit(server.url)
    return socket.create_connection((url.hostname, url.port))


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes the connection within `within` seconds (reading what it sends)."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with connect(server) as sock:
        assert closed_by_server(sock, TIMEOUT + 8)


def test_headers_sent_a_byte_at_a_time_are_cut_off(server: Server) -> None:
    request = b"POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200
    with connect(server) as sock:
        started = time.monotonic()
        try:
            for byte in request:  # every byte well within the timeout: only a deadline for all of them helps
                sock.sendall(bytes([byte]))
                time.sleep(0.25)
                if time.monotonic() - started > TIMEOUT + 8:
                    pytest.fail("the server still reads headers sent a byte at a time")
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed_by_server(sock, TIMEOUT + 8)
    assert time.monotonic() - started < TIMEOUT + 8


def test_a_stalled_body_is_cut_off(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n" + b'{"model":')
        assert closed_by_server(sock, TIMEOUT + 8)


def test_a_slow_but_moving_body_is_read_whole(server: Server) -> None:
    body = b'{"model":"absent"}'
    with connect(server) as sock:
        sock.sendall(b"POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % len(body))
        for byte in body:  # 18 bytes over 4.5 s, more than the timeout, but never a pause as long
            sock.sendall(bytes([byte]))
            time.sleep(0.25)
        sock.settimeout(10)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 404") and b"model 'absent:latest' not found" in answer


def test_many_slow_clients_are_all_let_go_and_others_are_served(server: Server) -> None:
    sockets = [connect(server) for _ in range(50)]
    try:
        for sock in sockets:
            sock.sendall(b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        assert httpx.get(server.url + "/api/version", timeout=10).status_code == 200
        assert all(closed_by_server(sock, TIMEOUT + 8) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
