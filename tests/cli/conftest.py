"""Running the `pollama` command line against real servers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, Server

# A model for answers that must be short and repeatable: SmolLM2 with greedy sampling and few tokens.
SHORT_MODELFILE = "FROM smollm2:135m\nPARAMETER temperature 0\nPARAMETER num_predict 8\n"


def cli_env(server: Server | str, home: Path | None = None, **extra: str) -> dict[str, str]:
    host = server if isinstance(server, str) else server.url
    env = {**os.environ, "OLLAMA_HOST": host, "PYTHONPATH": str(REPO), **extra}
    if home is not None:
        env["HOME"] = str(home)
    return env


def pollama(server: Server | str, *args: str, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=REPO, env=cli_env(server, **extra),
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def short_model(shared_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("short")
    (directory / "Modelfile").write_text(SHORT_MODELFILE)
    done = pollama(shared_server, "create", "smol-short", "-f", str(directory / "Modelfile"))
    assert done.returncode == 0, done.stderr
    yield "smol-short:latest"
    httpx.request("DELETE", f"{shared_server.url}/api/delete", json={"model": "smol-short"}, timeout=60)
