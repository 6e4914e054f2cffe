"""What the hardening tests observe from outside: a server's runner processes, their CPU time and memory,
and requests sent on bare sockets (to leave at a chosen moment, or to send slowly)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import Server

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def memory_kib(pid: int, field: str = "VmHWM") -> int:
    """VmHWM: the peak resident set so far; VmRSS: now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def wait_idle(pid: int, *, timeout: float = 30, window: float = 1.0, busy: float = 0.1) -> float:
    """Wait until the process uses less than `busy` CPU-seconds over `window` seconds; returns how long
    that took. A runner with no work blocks on its command queue and uses none."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < busy:
            return time.monotonic() - started
    raise AssertionError(f"process {pid} still busy after {timeout} s")


def open_request(server: Server, path: str, body: dict | bytes) -> socket.socket:
    """A POST sent on a bare socket; the caller reads from it or closes it (the client leaving)."""
    url = urlsplit(server.url)
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    sock = socket.create_connection((url.hostname, url.port))
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    return sock


def abandon(server: Server, path: str, body: dict, after: float) -> bytes:
    """Send a request, read whatever comes for `after` seconds, then close the connection."""
    sock = open_request(server, path, body)
    received = b""
    deadline = time.monotonic() + after
    with sock:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
    return received
