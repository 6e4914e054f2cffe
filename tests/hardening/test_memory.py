"""Issue 13, the memory test: a 256 MB prompt and a 100 MB JSON body (refused: over POLLAMA_MAX_BODY), a
60 MB prompt and a body of four million small JSON values (within it) leave the daemon and the runner under
BOUND of peak resident memory, and the server keeps answering. (Before: the 256 MB prompt grew the runner
to 18.6 GB, a large body to /api/show the daemon to 6.7 GB.)"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server, start_server
from tests.hardening.helpers import memory_kib

MODEL = b"smollm2:135m"
BOUND_KIB = 1 << 20  # 1 GiB
MB = 1 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("memory")
    server = start_server(directory / "models", directory / "server.log", bundled=True)
    yield server
    server.stop()


def prompt_body(size: int) -> bytes:
    words = b"word " * (size // 5)
    return b'{"model":"' + MODEL + b'","prompt":"' + words + b'","stream":false,"options":{"num_predict":1}}'


def test_huge_prompts_and_bodies_stay_within_a_bound(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=600) as http:
        assert http.post("/api/generate", json={"model": MODEL.decode()}).status_code == 200
        (runner,) = server.runner_pids()

        r = http.post("/api/generate", content=prompt_body(256 * MB))
        assert r.status_code == 413
        r = http.post("/api/show", content=b'{"model":"x","system":"' + b"x" * (100 * MB) + b'"}')
        assert r.status_code == 413

        r = http.post("/api/generate", content=prompt_body(60 * MB))  # under the limit: cut to the window
        assert r.status_code == 200, r.text
        assert r.json()["prompt_eval_count"] <= 4096

        values = b'{"model":"x","options":{"k":[' + b"{}," * 3_900_000 + b"{}]}}"
        r = http.post("/api/show", content=values)  # each `{}` a 64-byte dict once decoded
        assert r.status_code == 404

        daemon = memory_kib(server.process.pid)
        model = memory_kib(runner)
        assert daemon < BOUND_KIB, f"daemon peak {daemon // 1024} MiB"
        assert model < BOUND_KIB, f"runner peak {model // 1024} MiB"
        print(f"peak resident memory: daemon {daemon // 1024} MiB, runner {model // 1024} MiB")

        r = http.post("/api/generate", json={"model": MODEL.decode(), "prompt": "hi", "stream": False,
                                             "options": {"num_predict": 2}})
        assert r.status_code == 200 and r.json()["done"] is True
        assert server.runner_pids() == [runner]
