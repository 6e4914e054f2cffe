"""A runner that cannot load its model, or dies, leaves llama.cpp's reason in the daemon's log at the default level."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import Server
from tests.management.conftest import create, statuses, upload


def test_a_model_that_fails_to_load_logs_llama_cpps_reason(server_factory: Callable[..., Server],
                                                           smollm2_gguf: Path, tmp_path: Path) -> None:
    # The header (metadata, tensor list) is whole, so the daemon accepts it; the tensor data is cut short.
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(smollm2_gguf.read_bytes()[: 8 << 20])
    server = server_factory()  # OLLAMA_DEBUG unset: the default level
    events = create(server, {"model": "truncated", "files": {"truncated.gguf": upload(server, truncated)}})
    assert statuses(events)[-1] == "success", events

    r = httpx.post(f"{server.url}/api/generate", json={"model": "truncated", "prompt": "hi", "stream": False},
                   timeout=60)
    assert r.status_code == 500, r.text
    assert "llama runner process has terminated" in r.json()["error"]
    log = server.output()
    assert "data is not within the file bounds" in log, log
    assert "llama runner" in log and "WARNING" in log, log
