"""Three replicas behind a real load balancer (haproxy), on loopback.

Two replicas get the model from the third's /v2/ registry; then many clients send a bounded load through the
balancer while one replica is stopped with SIGTERM. Every request is counted: none may be lost or cut
mid-stream. Requests that reach the draining replica get a 503 that haproxy retries on another one.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.apt import ensure_command
from tests.conftest import Server, free_port, start_server

pytestmark = pytest.mark.timeout(1800)

CLIENTS = 8
REQUESTS_PER_CLIENT = 3
NUM_PREDICT = 8
# Each replica decodes all of its share of the clients together.
REPLICA_ENV = {"POLLAMA_SERVE_REGISTRY": "1", "OLLAMA_NUM_PARALLEL": "4", "POLLAMA_SHUTDOWN_TIMEOUT": "300"}

HAPROXY_CONFIG = """
global
    maxconn 512
defaults
    mode http
    log stdout format raw local0
    option httplog
    timeout connect 2s
    timeout client 600s
    timeout server 600s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response 503
backend replicas
    balance roundrobin
    option httpchk GET /api/ready
    http-check expect status 200
    default-server check inter 200ms fall 1 rise 2
{servers}
frontend api
    bind 127.0.0.1:{port}
    option http-buffer-request
    default_backend replicas
"""


def start_haproxy(directory: Path, replicas: list[Server]) -> tuple[subprocess.Popen, str, Path]:
    binary = ensure_command("haproxy")
    if binary is None:
        pytest.skip("haproxy is not installed and cannot be installed here")
    port = free_port()
    servers = "\n".join(f"    server r{i} {s.url.removeprefix('http://')}" for i, s in enumerate(replicas))
    config = directory / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(servers=servers, port=port))
    log = directory / "haproxy.log"
    process = subprocess.Popen([binary, "-f", str(config), "-db"], stdout=log.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/ready", timeout=1).status_code == 200:
                return process, url, log
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"haproxy did not answer:\n{log.read_text()}")


@pytest.fixture
def replicas(tmp_path: Path):
    started: list[Server] = []
    source = start_server(tmp_path / "r0", tmp_path / "r0.log", REPLICA_ENV, bundled=True)
    started.append(source)
    try:
        for index in (1, 2):
            replica = start_server(tmp_path / f"r{index}", tmp_path / f"r{index}.log", REPLICA_ENV)
            started.append(replica)
            peer_name = f"{source.url.removeprefix('http://')}/library/smollm2:135m"
            pulled = httpx.post(replica.url + "/api/pull", json={"model": peer_name, "insecure": True,
                                                                  "stream": False}, timeout=300)
            assert pulled.json() == {"status": "success"}, pulled.text
            httpx.post(replica.url + "/api/copy", json={"source": peer_name, "destination": "smollm2:135m"},
                       timeout=30).raise_for_status()
        yield started
    finally:
        for server in started:
            server.stop()


def one_request(url: str, client: int, number: int) -> dict:
    """A streamed generate or a whole chat; what came back, checked for completeness."""
    options = {"num_predict": NUM_PREDICT, "temperature": 0}
    if (client + number) % 2:
        body = {"model": "smollm2:135m", "prompt": f"Count from {client}.", "options": options}
        with httpx.stream("POST", url + "/api/generate", json=body, timeout=300) as response:
            lines = [json.loads(line) for line in response.iter_lines() if line]
        last = lines[-1] if lines else {}
        return {"kind": "stream", "status": response.status_code, "complete": last.get("done") is True,
                "tokens": last.get("eval_count", 0), "chunks": len(lines) - 1}
    body = {"model": "smollm2:135m", "stream": False, "options": options,
            "messages": [{"role": "user", "content": f"Say {number} words."}]}
    response = httpx.post(url + "/api/chat", json=body, timeout=300)
    answer = response.json()
    return {"kind": "whole", "status": response.status_code, "complete": answer.get("done") is True,
            "tokens": answer.get("eval_count", 0), "chunks": 1}


def test_a_replica_stopped_mid_load_loses_no_request(replicas: list[Server], tmp_path: Path) -> None:
    haproxy, url, log = start_haproxy(tmp_path, replicas)
    try:
        results: list[dict] = []
        errors: list[str] = []
        sent = threading.Event()

        def client(index: int) -> None:
            for number in range(REQUESTS_PER_CLIENT):
                try:
                    results.append(one_request(url, index, number))
                except httpx.HTTPError as e:
                    errors.append(f"client {index} request {number}: {e!r}")
                sent.set()

        stopping = replicas[1]
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(client, i) for i in range(CLIENTS)]
            sent.wait(timeout=300)
            time.sleep(1)  # the load is running: stop one replica in the middle of it
            signalled = time.monotonic()
            stopping.process.send_signal(signal.SIGTERM)
            for future in futures:
                future.result()
        exit_code = stopping.process.wait(timeout=330)
        drain_seconds = time.monotonic() - signalled
    finally:
        haproxy.terminate()
        haproxy.wait(timeout=10)

    total = CLIENTS * REQUESTS_PER_CLIENT
    statuses = Counter(r["status"] for r in results)
    served_by, retried = Counter(), 0
    for line in log.read_text().splitlines():
        # httplog: ... backend/server timers status ... actconn/feconn/beconn/srv_conn/[+]retries ... "METHOD path"
        if (match := re.search(r" replicas/(r\d) .* \d+/\d+/\d+/\d+/\+?(\d+) .*\"POST ", line)):
            served_by[match.group(1)] += 1
            retried += int(match.group(2)) > 0
    print(f"\nrequests: {total} sent, {len(results)} answered, statuses {dict(statuses)}, errors {len(errors)}; "
          f"served by {dict(served_by)}; retried by haproxy: {retried}; "
          f"the stopped replica exited {exit_code} after {drain_seconds:.1f} s")
    assert not errors, errors
    assert len(results) == total
    assert statuses == Counter({200: total})
    incomplete = [r for r in results if not r["complete"] or r["tokens"] < 1]
    assert not incomplete, incomplete
    assert all(r["tokens"] <= NUM_PREDICT for r in results)
    assert exit_code == 0
    assert sum(served_by.values()) == total
    assert served_by["r1"] >= 1, "the stopped replica should have served part of the load"
    assert served_by["r0"] >= 1 and served_by["r2"] >= 1
