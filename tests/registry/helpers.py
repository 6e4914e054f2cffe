"""Helpers for the registry tests: calling a pollama server and reading its store."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.conftest import Server


def server_env(directory: Path, docker_config: dict | None = None, **extra: str) -> dict[str, str]:
    """A HOME (for ~/.ollama) and DOCKER_CONFIG of the test's own, and quick retries."""
    home, docker = directory / "home", directory / "docker"
    home.mkdir(parents=True, exist_ok=True)
    docker.mkdir(parents=True, exist_ok=True)
    if docker_config is not None:
        (docker / "config.json").write_text(json.dumps(docker_config))
    return {"HOME": str(home), "DOCKER_CONFIG": str(docker), "POLLAMA_REGISTRY_RETRY_DELAY": "0.1", **extra}


def call(server: Server, path: str, body: dict, timeout: float = 300) -> tuple[int, list[dict]]:
    """POST and read an NDJSON (or single JSON) answer."""
    with httpx.stream("POST", server.url + path, json=body, timeout=timeout) as response:
        text = response.read().decode()
    items = [json.loads(line) for line in text.splitlines() if line.strip()]
    return response.status_code, items


def statuses(items: list[dict]) -> list[str]:
    """Status lines with repeats collapsed; an error line becomes `error: <text>`."""
    out: list[str] = []
    for item in items:
        line = f"error: {item['error']}" if "error" in item else item["status"]
        if not out or out[-1] != line:
            out.append(line)
    return out


def pull(server: Server, name: str, **extra: object) -> list[dict]:
    return call(server, "/api/pull", {"model": name, "insecure": True, **extra})[1]


def push(server: Server, name: str, **extra: object) -> list[dict]:
    return call(server, "/api/push", {"model": name, "insecure": True, **extra})[1]


def copy(server: Server, source: str, destination: str) -> None:
    httpx.post(server.url + "/api/copy", json={"source": source, "destination": destination}).raise_for_status()


def delete(server: Server, name: str) -> None:
    httpx.request("DELETE", server.url + "/api/delete", json={"model": name}).raise_for_status()


def generate(server: Server, name: str) -> dict:
    response = httpx.post(server.url + "/api/generate", timeout=300, json={
        "model": name, "prompt": "Say hi", "stream": False, "options": {"num_predict": 4, "temperature": 0}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["done"] is True and body["eval_count"] >= 1
    return body


def manifest_of(server: Server, name: str) -> tuple[bytes, list[str]]:
    """The manifest file's bytes and its blob digests (layers, then config)."""
    host, rest = name.split("/", 1)
    namespace, model_tag = rest.split("/", 1)
    model, _, tag = model_tag.partition(":")
    raw = (server.models / "manifests" / host / namespace / model / (tag or "latest")).read_bytes()
    obj = json.loads(raw)
    return raw, [layer["digest"] for layer in obj["layers"]] + [obj["config"]["digest"]]
