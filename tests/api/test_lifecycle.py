"""Readiness and the drain on SIGTERM: work in flight finishes, new work is turned away, the process exits 0."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import httpx

from tests.conftest import Server


def children(server: Server) -> list[int]:
    done = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True)
    return [int(pid) for pid in done.stdout.split()]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


class Stream(threading.Thread):
    """A streamed generation read in the background; `lines` fills as chunks arrive."""

    def __init__(self, server: Server, num_predict: int) -> None:
        super().__init__(daemon=True)
        self.server, self.num_predict = server, num_predict
        self.lines: list[dict] = []
        self.error: Exception | None = None
        self.start()

    def run(self) -> None:
        body = {"model": "smollm2:135m", "prompt": "Tell me a long story about a lighthouse keeper.",
                "options": {"num_predict": self.num_predict, "temperature": 0}}
        try:
            with httpx.stream("POST", self.server.url + "/api/generate", json=body, timeout=120) as response:
                for line in response.iter_lines():
                    self.lines.append(json.loads(line))
        except httpx.HTTPError as e:
            self.error = e

    def wait_for_first_chunk(self) -> None:
        deadline = time.monotonic() + 120
        while not self.lines and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.lines, self.error


def test_sigterm_lets_a_stream_finish_turns_new_work_away_and_exits_0(server_factory) -> None:
    server = server_factory(env={"POLLAMA_SHUTDOWN_TIMEOUT": "300"}, bundled=True)  # ample on a loaded machine
    assert httpx.get(server.url + "/api/ready").json() == {"status": "ready"}
    stream = Stream(server, num_predict=300)
    stream.wait_for_first_chunk()
    runners = children(server)
    assert runners
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)

    ready = httpx.get(server.url + "/api/ready")
    assert ready.status_code == 503 and ready.json() == {"error": "server is shutting down"}
    assert httpx.get(server.url + "/").status_code == 200  # still alive
    refused = httpx.post(server.url + "/api/generate", json={"model": "smollm2:135m", "prompt": "hi"})
    assert refused.status_code == 503 and refused.json() == {"error": "server is shutting down"}
    assert refused.headers["retry-after"] == "1"
    openai = httpx.post(server.url + "/v1/chat/completions",
                        json={"model": "smollm2:135m", "messages": [{"role": "user", "content": "hi"}]})
    assert openai.status_code == 503 and openai.json()["error"]["message"] == "server is shutting down"
    assert not stream.lines[-1].get("done"), "the stream should still be running during these checks"

    assert server.process.wait(timeout=300) == 0
    stream.join(timeout=10)
    assert stream.error is None
    last = stream.lines[-1]
    assert last["done"] is True and last["eval_count"] == 300
    time.sleep(0.5)
    assert not any(alive(pid) for pid in runners), "the runners must end with the server"


def test_the_drain_is_bounded(server_factory) -> None:
    server = server_factory(env={"POLLAMA_SHUTDOWN_TIMEOUT": "2"}, bundled=True)
    stream = Stream(server, num_predict=100_000)
    stream.wait_for_first_chunk()
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0
    assert time.monotonic() - signalled < 10
    stream.join(timeout=10)
    assert not stream.lines[-1].get("done")


def test_ready_means_the_preloaded_models_are_loaded(server_factory) -> None:
    server = server_factory(env={"POLLAMA_PRELOAD": "smollm2:135m, missing:latest"}, bundled=True)
    deadline = time.monotonic() + 120
    while (ready := httpx.get(server.url + "/api/ready")).status_code != 200:
        assert ready.status_code == 503 and ready.json() == {"error": "server is starting"}
        assert time.monotonic() < deadline
        time.sleep(0.05)
    loaded = httpx.get(server.url + "/api/ps").json()["models"]
    assert [m["name"] for m in loaded] == ["smollm2:135m"]
    assert int(loaded[0]["expires_at"][:4]) > 2300  # pinned: Ollama's "forever"
    assert "could not preload missing:latest" in server.output()
