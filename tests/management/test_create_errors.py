"""Bad create input: each is refused with Ollama's text and leaves no layer and no manifest behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, start_server
from tests.management.conftest import create, statuses, store_snapshot, upload

MISSING = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("create-errors")
    server = start_server(directory / "models", directory / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def smol_digest(server: Server, smollm2_gguf: Path) -> str:
    return upload(server, smollm2_gguf)


@pytest.fixture(scope="module")
def text_digest(server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("text") / "notes.txt"
    path.write_text("these are notes, not weights\n")
    return upload(server, path)


def _refused(server: Server, body: dict) -> tuple[int, dict]:
    before = store_snapshot(server)
    r = httpx.post(f"{server.url}/api/create", json={**body, "stream": False}, timeout=120)
    assert store_snapshot(server) == before, "a failed create left files behind"
    return r.status_code, r.json()


def test_unknown_digest(server: Server) -> None:
    blob = server.models / "blobs" / MISSING.replace(":", "-")
    assert _refused(server, {"model": "m", "files": {"model.gguf": MISSING}}) == (
        400, {"error": f"open {blob}: no such file or directory"})
    assert _refused(server, {"model": "m", "files": {"model.safetensors": MISSING, "config.json": MISSING}}) == (
        400, {"error": f"open {blob}: no such file or directory"})
    # Without a telling suffix the type cannot even be sniffed.
    assert _refused(server, {"model": "m", "files": {"weights": MISSING}}) == (400, {"error": "unknown type"})


def test_neither_gguf_nor_safetensors(server: Server, text_digest: str) -> None:
    assert _refused(server, {"model": "m", "files": {"notes.txt": text_digest}}) == (400, {"error": "unknown type"})
    assert _refused(server, {"model": "m", "files": {"model.gguf": text_digest}}) == (
        400, {"error": "supplied file was not in GGUF format"})
    # Streamed, the error comes after the parsing status (Ollama's order).
    events = create(server, {"model": "m", "files": {"model.gguf": text_digest}})
    assert events == [{"status": "parsing GGUF"}, {"error": "supplied file was not in GGUF format"}]


def test_unsupported_quantization_type(server: Server, smol_digest: str) -> None:
    assert _refused(server, {"model": "m", "files": {"model.gguf": smol_digest}, "quantize": "q5_K_M"}) == (
        400, {"error": "unsupported quantization type Q5_K_M - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0"})
    # The source must be unquantized (SmolLM2 here is Q4_1).
    assert _refused(server, {"model": "m", "files": {"model.gguf": smol_digest}, "quantize": "q8_0"}) == (
        400, {"error": "quantization is only supported for F16, BF16 and F32 models"})


def test_invalid_name(server: Server, smol_digest: str) -> None:
    assert _refused(server, {"model": "bad name!", "files": {"model.gguf": smol_digest}}) == (
        400, {"error": "invalid model name"})
    assert _refused(server, {"model": "ok", "from": "bad name!"}) == (400, {"error": "invalid model name"})


@pytest.mark.parametrize("path", ["../model.gguf", "/abs/model.gguf", "a/../../model.gguf", "a//b.gguf"])
def test_path_must_be_relative(server: Server, smol_digest: str, path: str) -> None:
    assert _refused(server, {"model": "m", "files": {path: smol_digest}}) == (
        400, {"error": "file path must be relative"})


def test_nothing_to_create_from(server: Server) -> None:
    assert _refused(server, {"model": "m"}) == (400, {"error": "neither 'from' or 'files' was specified"})


def test_a_good_create_still_works(server: Server, smol_digest: str) -> None:
    events = create(server, {"model": "m", "files": {"model.gguf": smol_digest}})
    assert statuses(events)[-1] == "success"
