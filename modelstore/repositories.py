"""The store seen as an OCI registry: which manifests a `/v2/<repository>/...` path names, which blobs it may serve.

A repository is `host/namespace/model`, or `namespace/model` and `model` with Ollama's defaults. Where the
host is left out, the default registry's copy is taken, and failing that any other host's, so a model
pulled from a peer (stored under that peer's address) can be served on to the next one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from modelstore.blobs import is_valid_digest
from modelstore.manifest import Manifest, ManifestError
from modelstore.names import DEFAULT_HOST, DEFAULT_NAMESPACE, Name
from modelstore.store import ModelStore


@dataclass(frozen=True)
class StoredManifest:
    name: Name
    raw: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.raw).hexdigest()

    @property
    def media_type(self) -> str:
        return Manifest.parse(self.raw).media_type


def repository_path(name: Name) -> str:
    """How a stored name is written as a repository: the default host is left out."""
    if name.host.lower() == DEFAULT_HOST:
        return f"{name.namespace}/{name.model}"
    return f"{name.host}/{name.namespace}/{name.model}"


class Repositories:
    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def catalog(self) -> list[str]:
        return sorted({repository_path(name) for name in self.store.manifest_names()})

    def tags(self, repository: str) -> list[Name]:
        """Every stored name of the repository (one per tag); empty when there is no such repository."""
        parts = repository.split("/")
        if not 1 <= len(parts) <= 3:
            return []
        host = parts[0] if len(parts) == 3 else ""
        namespace = parts[-2] if len(parts) >= 2 else DEFAULT_NAMESPACE
        model = parts[-1]
        names = [n for n in self.store.manifest_names()
                 if n.namespace.lower() == namespace.lower() and n.model.lower() == model.lower()]
        if host:
            return [n for n in names if n.host.lower() == host.lower()]
        hosts = sorted({n.host for n in names}, key=lambda h: (h.lower() != DEFAULT_HOST, h))
        return [n for n in names if hosts and n.host == hosts[0]]

    def manifest(self, repository: str, reference: str) -> StoredManifest | None:
        """The manifest a tag or a `sha256:` digest names in the repository, with its file's bytes."""
        by_digest = is_valid_digest(reference)
        for name in self.tags(repository):
            if not by_digest and name.tag.lower() != reference.lower():
                continue
            try:
                stored = StoredManifest(name, self.store.manifest_path(name).read_bytes())
            except OSError:
                continue
            if not by_digest or stored.digest == reference:
                return stored
        return None

    def blob(self, repository: str, digest: str) -> Path | None:
        """The blob file, when some manifest of the repository references the digest and the file is whole."""
        if not is_valid_digest(digest):
            return None
        for name in self.tags(repository):
            try:
                manifest = self.store.read_manifest(name)
            except ManifestError:
                continue
            if manifest is not None and digest in manifest.digests():
                path = self.store.blobs.path(digest)
                return path if path.is_file() else None
        return None
