"""Issue 13 item 11: requests waiting for a slot of a loaded model count against OLLAMA_MAX_QUEUE: beyond it,
a quick 503 with Retry-After instead of a wait without bound."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import start_server
from tests.hardening.helpers import open_request

MODEL = "smollm2:135m"
LONG = {"temperature": 0, "seed": 0, "repeat_penalty": 1.0, "num_predict": 20000}
BUSY = "server busy, please try again.  maximum pending requests exceeded"


def test_requests_beyond_the_queue_get_503_with_retry_after(tmp_path: Path) -> None:
    server = start_server(tmp_path / "models", tmp_path / "server.log",
                          {"OLLAMA_NUM_PARALLEL": "1", "OLLAMA_MAX_QUEUE": "2"}, bundled=True)
    held = []
    try:
        assert httpx.post(f"{server.url}/api/generate", json={"model": MODEL}, timeout=120).status_code == 200
        endless = {"model": MODEL, "prompt": " ".join(["1"] * 12), "raw": True, "options": LONG}
        held.append(open_request(server, "/api/generate", endless))
        assert held[0].recv(1)  # running: it has the only slot
        for _ in range(2):  # the queue's two places
            held.append(open_request(server, "/api/generate", endless))
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(10):  # until both have reached the queue; a probe that got a place gives it up
                try:
                    r = http.post("/api/generate", json={**endless, "stream": False}, timeout=3)
                    break
                except httpx.ReadTimeout:
                    continue
            assert r.status_code == 503 and r.json() == {"error": BUSY}
            assert r.headers["retry-after"] == "2"
            chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
            r = http.post("/v1/chat/completions", json=chat)
            assert r.status_code == 503 and r.headers["retry-after"] == "2"
            assert r.json()["error"]["message"] == BUSY
            r = http.post("/api/embed", json={"model": MODEL, "input": "hi"})
            assert r.status_code == 503 and r.json() == {"error": BUSY}
            for sock in held:
                sock.close()
            held.clear()
            for _ in range(50):  # the server notices the disconnects, and the places are free again
                r = http.post("/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False,
                                                     "options": {"num_predict": 2}}, timeout=60)
                if r.status_code != 503:
                    break
                time.sleep(0.2)
            assert r.status_code == 200
    finally:
        for sock in held:
            sock.close()
        server.stop()
