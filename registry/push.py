"""`push`: Ollama's PushModel as an async stream of progress objects.

Statuses: `retrieving manifest`; for each blob (layers, then the config) `pushing <12 hex>` with
`digest`, `total`, `completed` every 60 ms (once, complete, when the registry has it already);
`pushing manifest`; `success`. A model that is not there gives `couldn't retrieve manifest`, then
the error `open <manifest path>: no such file or directory`.

The manifest goes last, as `json.Marshal` of the parsed local manifest (compact, no newline) with
`Content-Type: application/vnd.docker.distribution.manifest.v2+json`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from modelstore.manifest import MEDIA_TENSOR, Layer, ManifestError
from modelstore.names import Name
from modelstore.store import ModelStore
from registry import upload
from registry.download import retry_delay
from registry.pull import TICK, progress
from registry.threads import run_blocking
from registry.transport import MANIFEST_ACCEPT, NotFound, RegistryClient, RegistryError


def blob_exists(client: RegistryClient, name: Name, digest: str) -> bool:
    try:
        client.request("HEAD", client.url(name, "blobs", digest)).close()
    except NotFound:
        return False
    return True


def put_manifest(client: RegistryClient, name: Name, body: bytes) -> None:
    client.request("PUT", client.url(name, "manifests", name.tag), headers={"Content-Type": MANIFEST_ACCEPT},
                   content=body).close()


async def push_model(store: ModelStore, name: Name, *, insecure: bool = False,
                     client: RegistryClient | None = None) -> AsyncIterator[dict]:
    """Push `name` (canonicalised) from `store` to the registry its host names."""
    yield progress("retrieving manifest")
    if not name.is_valid():
        yield progress("couldn't retrieve manifest")
        raise RegistryError(f"unqualified name: {name}")
    try:
        manifest = store.read_manifest(name)
    except (ManifestError, OSError) as exc:
        yield progress("couldn't retrieve manifest")
        raise RegistryError(str(exc)) from exc
    if manifest is None:
        yield progress("couldn't retrieve manifest")
        raise RegistryError(f"open {store.manifest_path(name)}: no such file or directory")
    layers = [*manifest.layers, *([manifest.config] if manifest.config.digest else [])]
    if any(layer.media_type == MEDIA_TENSOR for layer in layers):
        raise RegistryError("pushing models with tensor layers is not supported")
    own_client = client is None
    client = client or RegistryClient.for_name(name, insecure=insecure, retry_delay=retry_delay())
    try:
        for layer in layers:
            async for item in _push_blob(store, client, name, layer):
                yield item
        yield progress("pushing manifest")
        await run_blocking(put_manifest, client, name, manifest.to_bytes(trailing_newline=False))
        yield progress("success")
    finally:
        if own_client:
            client.close()


async def _push_blob(store: ModelStore, client: RegistryClient, name: Name, layer: Layer) -> AsyncIterator[dict]:
    status = f"pushing {layer.digest[7:19]}"
    if await run_blocking(blob_exists, client, name, layer.digest):
        yield progress(status, layer.digest, layer.size, layer.size)
        return
    job = upload.join_upload(store, client, name, layer)
    try:
        while True:
            await asyncio.sleep(TICK)
            finished = job.done.is_set()
            yield progress(status, layer.digest, job.total, job.completed)
            if finished:
                break
    finally:
        upload.release(job)
    if job.error is not None:
        raise job.error
