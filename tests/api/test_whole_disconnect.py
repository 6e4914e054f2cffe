"""A client that goes away from a non-streamed generate or chat cancels its sequence in the runner, as a
streamed one does (test_scheduling.test_disconnect_frees_the_slot)."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Server

# SmolLM2 goes on with " 1 1 1 …", or "1\n1\n…" when asked to count, until num_predict: minutes for 20000
# tokens, even on a fast machine.
ENDLESS = " ".join(["1"] * 12)
COUNT = [{"role": "user", "content": "Count from 1 to 10000, separated by spaces."}]
LONG = {"temperature": 0, "seed": 0, "repeat_penalty": 1.0, "num_predict": 20000}


def _abandon(server: Server, path: str, body: dict, after: float = 1.0) -> None:
    """Send a request on a bare socket and close the connection before any answer comes."""
    url = urlsplit(server.url)
    payload = json.dumps(body).encode()
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        sock.settimeout(after)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nothing: the answer is the whole completion


@pytest.mark.parametrize(("path", "body"), [
    ("/api/generate", {"prompt": ENDLESS, "raw": True}),
    ("/api/chat", {"messages": COUNT}),
    ("/v1/chat/completions", {"messages": COUNT, "temperature": 0, "seed": 0, "max_tokens": 20000}),
])
def test_a_whole_answer_abandoned_frees_the_slot(one_slot_server: Server, path: str, body: dict) -> None:
    model = {"model": "smollm2:135m"}
    httpx.post(f"{one_slot_server.url}/api/generate", json=model, timeout=120)  # loaded: one slot
    _abandon(one_slot_server, path, {**model, "stream": False, "options": LONG, **body})
    started = time.perf_counter()
    r = httpx.post(f"{one_slot_server.url}/api/generate", json={
        **model, "prompt": "hi", "stream": False, "options": {"temperature": 0, "num_predict": 2}}, timeout=60)
    assert r.status_code == 200 and r.json()["done"] is True
    # Had the abandoned request kept the only slot (OLLAMA_NUM_PARALLEL=1), this would wait for its tokens.
    assert time.perf_counter() - started < 30
    assert f"client disconnected, cancelled POST {path}" in one_slot_server.output()
