"""Helpers for tests that serve GGUFs they wrote: upload one as a blob, make a model of it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx


def upload(http: httpx.Client, path: Path) -> str:
    """Upload a file as a blob; returns its digest."""
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if http.head(f"/api/blobs/{digest}").status_code != 200:
        assert http.post(f"/api/blobs/{digest}", content=data).status_code in (200, 201)
    return digest


def create(http: httpx.Client, name: str, path: Path, **fields: object) -> None:
    """A model from one GGUF; `fields` are more /api/create fields (template, parameters...)."""
    r = http.post("/api/create", json={"model": name, "files": {path.name: upload(http, path)}, "stream": False,
                                       **fields})
    assert r.status_code == 200, r.text
