"""A crowd of clients for the load test and the soak bench: each round sends CLIENTS streamed generate
requests at once; half read their answer to the end, the other half leave at a random point (while queued,
while the prompt is read, or after a few lines)."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import Server
from tests.hardening.helpers import open_request

MODEL = "smollm2:135m"
CLIENTS = 100


def body(rng: random.Random) -> dict:
    # Short answers: the round's cost is the crowd (queueing, cancelling, a hundred connections), not decoding.
    return {"model": MODEL, "prompt": f"Tell me a story about the number {rng.randrange(1000)}.",
            "options": {"temperature": 0.7, "seed": rng.randrange(1 << 30), "num_predict": rng.randrange(2, 10)}}


def completes(server: Server, request: dict) -> str:
    with httpx.stream("POST", f"{server.url}/api/generate", json=request, timeout=600) as r:
        lines = [json.loads(line) for line in r.iter_lines()]
    assert r.status_code == 200 and lines[-1]["done"] is True, lines[-1:]
    return "completed"


def leaves(server: Server, request: dict, rng: random.Random) -> str:
    """Leave before the first byte (while queued, or while the prompt is read) or after a few lines."""
    sock = open_request(server, "/api/generate", request)
    with sock:
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0, 2))
            return "left early"
        lines_wanted = rng.randrange(1, 4)
        received = b""
        sock.settimeout(600)
        while received.count(b"\n") < lines_wanted + 6:  # the status line and headers, then NDJSON lines
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return "left late"


def one_round(server: Server, seed: int) -> dict[str, int]:
    """How many clients completed, left early and left late."""
    rng = random.Random(seed)
    plans = [(body(rng), i % 2 == 0, random.Random(seed * 1000 + i)) for i in range(CLIENTS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = list(pool.map(
            lambda plan: leaves(server, plan[0], plan[2]) if plan[1] else completes(server, plan[0]), plans))
    return {outcome: outcomes.count(outcome) for outcome in set(outcomes)}
