"""`pull`: Ollama's PullModel as an async stream of progress objects.

Statuses, in order: `pulling manifest`; for each blob (layers, then the config) `pulling <12 hex>`
with `digest`, `total`, `completed` every 60 ms (once, complete, for a blob already present);
`verifying sha256 digest`; `writing manifest`; `removing unused layers` when the previous version
of the name had blobs the new one lacks (unless `noprune`); `success`. Failures raise
`RegistryError` with Ollama's texts (`pull model manifest: file does not exist`,
`digest mismatch, file must be downloaded again: want …, got …`, …).

The manifest is stored byte for byte as the registry sent it, atomically, and only after every blob
is verified and in place: a failed pull leaves no manifest and no unverified blob.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from modelstore.blobs import InvalidDigest
from modelstore.manifest import MEDIA_TENSOR, Layer, Manifest, ManifestError
from modelstore.names import Name
from modelstore.store import ModelStore
from registry import download
from registry.threads import run_blocking
from registry.transport import MANIFEST_ACCEPT, RegistryClient, RegistryError

log = logging.getLogger(__name__)

TICK = 0.06  # between progress reports of a blob
POLL = 0.01  # between looks at whether a blob is done: its end is reported without waiting out a tick


def progress(status: str, digest: str = "", total: int = 0, completed: int = 0) -> dict:
    """A ProgressResponse with Go's omitempty: zero values are left out."""
    item: dict = {"status": status}
    if digest:
        item["digest"] = digest
    if total:
        item["total"] = total
    if completed:
        item["completed"] = completed
    return item


def fetch_manifest(client: RegistryClient, name: Name) -> bytes:
    response = client.request("GET", client.url(name, "manifests", name.tag), headers={"Accept": MANIFEST_ACCEPT})
    try:
        return response.read()
    finally:
        response.close()


def _previous_digests(store: ModelStore, name: Name) -> set[str]:
    try:
        previous = store.read_manifest(name)
    except (ManifestError, OSError) as exc:
        log.warning("pulling model with bad existing manifest %s: %s", name, exc)
        return set()
    return set(previous.digests()) if previous is not None else set()


async def pull_model(store: ModelStore, name: Name, *, insecure: bool = False, noprune: bool = False,
                     client: RegistryClient | None = None) -> AsyncIterator[dict]:
    """Pull `name` (already validated and canonicalised) into `store`."""
    previous = _previous_digests(store, name)
    yield progress("pulling manifest")
    own_client = client is None
    client = client or RegistryClient.for_name(name, insecure=insecure, retry_delay=download.retry_delay())
    try:
        try:
            raw = await run_blocking(fetch_manifest, client, name)
            manifest = Manifest.parse(raw)
        except (RegistryError, ManifestError) as exc:
            raise RegistryError(f"pull model manifest: {exc}") from exc
        if any(layer.media_type == MEDIA_TENSOR for layer in manifest.layers):
            raise RegistryError("this model requires MLX support, but the MLX runtime is not available")
        layers = [*manifest.layers, *([manifest.config] if manifest.config.digest else [])]
        mismatches: dict[str, str | None] = {}
        for layer in layers:
            async for item in _pull_blob(store, client, name, layer, mismatches):
                yield item
        yield progress("verifying sha256 digest")
        for layer in layers:
            actual = mismatches.get(layer.digest)
            if actual is not None:
                raise RegistryError(
                    f"digest mismatch, file must be downloaded again: want {layer.digest}, got {actual}")
        yield progress("writing manifest")
        await run_blocking(store.write_manifest, name, manifest)
        unused = previous - set(manifest.digests())
        if unused and not noprune:
            yield progress("removing unused layers")
            try:
                await run_blocking(store.remove_unreferenced, unused)
            except OSError as exc:
                yield progress(f"couldn't remove unused layers: {exc}")
        yield progress("success")
    finally:
        if own_client:
            client.close()


async def _pull_blob(store: ModelStore, client: RegistryClient, name: Name, layer: Layer,
                     mismatches: dict[str, str | None]) -> AsyncIterator[dict]:
    digest = layer.digest
    if not digest:
        raise RegistryError(f"{name.display_namespace_model()}: digest is empty")
    try:
        path = store.blobs.path(digest)
    except InvalidDigest as exc:
        raise RegistryError(str(exc)) from exc
    status = f"pulling {digest[7:19]}"
    if path.is_file():
        size = path.stat().st_size
        yield progress(status, digest, size, size)
        mismatches.setdefault(digest, None)
        return
    job = download.join_download(store, digest, client, client.url(name, "blobs", digest), layer.size)
    try:
        reported = 0.0
        while not job.done.is_set():
            await asyncio.sleep(POLL)
            now = time.monotonic()
            if now - reported >= TICK and job.prepared.is_set() and not job.done.is_set():
                reported = now
                yield progress(status, digest, job.total, job.completed)
    finally:
        download.release(job)
    if job.error is not None:
        raise job.error
    mismatches[digest] = job.actual_digest
    if job.actual_digest is None:
        yield progress(status, digest, job.total, job.total)
