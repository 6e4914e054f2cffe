"""`kill -9` of the server in the middle of a blob upload or a create leaves nothing broken behind."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from modelstore.names import parse_name
from modelstore.store import ModelStore
from tests.conftest import start_server

CHUNK = 1 << 20


def _slow_body(total_chunks: int, started: threading.Event) -> Iterator[bytes]:
    for index in range(total_chunks):
        if index == 4:
            started.set()
        yield bytes([index % 251]) * CHUNK
        time.sleep(0.02)


def _assert_store_consistent(models: Path) -> None:
    """Every visible manifest's blobs exist and hash to their names; no blob is partial."""
    for blob in (models / "blobs").glob("sha256-*"):
        name = blob.name.removeprefix("sha256-")
        if len(name) == 64:
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == name, f"corrupt blob {blob.name}"
    for manifest in (models / "manifests").rglob("*"):
        if manifest.is_file():
            data = json.loads(manifest.read_bytes())
            for layer in [data["config"], *data["layers"]]:
                assert (models / "blobs" / layer["digest"].replace(":", "-")).exists(), manifest


def test_kill_during_blob_upload(tmp_path: Path) -> None:
    models = tmp_path / "models"
    server = start_server(models, tmp_path / "server.log")
    payload_digest = hashlib.sha256(b"".join(bytes([i % 251]) * CHUNK for i in range(200))).hexdigest()
    started = threading.Event()

    def upload() -> None:
        try:
            httpx.post(f"{server.url}/api/blobs/sha256:{payload_digest}", content=_slow_body(200, started),
                       timeout=60)
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=upload)
    thread.start()
    assert started.wait(30)
    time.sleep(0.2)
    server.stop(signal.SIGKILL)
    thread.join()
    assert not (models / "blobs" / f"sha256-{payload_digest}").exists()
    _assert_store_consistent(models)

    restarted = start_server(models, tmp_path / "restarted.log")
    try:
        assert httpx.head(f"{restarted.url}/api/blobs/sha256:{payload_digest}").status_code == 404
    finally:
        restarted.stop()


def test_kill_during_create(tmp_path: Path, smollm2_gguf: Path) -> None:
    """Kill the server at many points of a create: the model is either whole or absent."""
    models = tmp_path / "models"
    digest = "sha256:" + hashlib.sha256(smollm2_gguf.read_bytes()).hexdigest()
    outcomes = set()
    delays: list[float | None] = [0.0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, None]  # None: after it ends
    for attempt, delay in enumerate(delays):
        server = start_server(models, tmp_path / f"server{attempt}.log")
        if attempt == 0:
            with smollm2_gguf.open("rb") as f:
                assert httpx.post(f"{server.url}/api/blobs/{digest}", content=f, timeout=60).status_code == 201
        request = {"model": f"victim{attempt}", "files": {"model.gguf": digest},
                   "template": "{{ .Prompt }}", "system": f"attempt {attempt}", "parameters": {"seed": attempt}}
        thread = threading.Thread(target=_post_quietly, args=(f"{server.url}/api/create", request))
        thread.start()
        if delay is None:
            thread.join()
        else:
            time.sleep(delay)
        server.stop(signal.SIGKILL)
        thread.join()
        _assert_store_consistent(models)
        outcomes.add(ModelStore(models).manifest_path(parse_name(f"victim{attempt}")).exists())
    restarted = start_server(models, tmp_path / "final.log")
    try:
        listed = httpx.get(f"{restarted.url}/api/tags").json()["models"]
        for entry in listed:
            shown = httpx.post(f"{restarted.url}/api/show", json={"model": entry["name"]})
            assert shown.status_code == 200
    finally:
        restarted.stop()
    assert outcomes == {False, True}, "the earliest kill must beat the create and the last must follow it"


def _post_quietly(url: str, body: dict) -> None:
    try:
        httpx.post(url, json=body, timeout=60)
    except httpx.HTTPError:
        pass
