"""Blob uploads (Ollama's `server/upload.go`) over the OCI distribution API.

1. `HEAD /v2/<ns>/<model>/blobs/<digest>`: any success means the registry has it already.
2. `POST /v2/<ns>/<model>/blobs/uploads/` (trailing slash), with `?from=<ns/model>&mount=<digest>`
   when the layer came from another model, so a registry that has it there mounts it (201) instead
   of receiving the bytes again. The upload URL is `Docker-Upload-Location`, else `Location`.
3. The blob in Ollama's parts (`total/16` clamped to [100 MB, 1000 MB]), one `PATCH` each, in
   order, with `Content-Range: <first>-<last>` (no `bytes ` prefix), `Content-Type:
   application/octet-stream`, `X-Redirect-Uploads: 1`; each answer names the next URL. A 307
   (ollama.com) means: PUT the part to the Location without auth.
4. `PUT <last URL>?digest=<digest>&etag=<md5 of the part md5s>-<parts>`, with the registry's own
   query parameters kept and the whole query re-encoded sorted (Go's url.Values.Encode).

Uploads of one blob to one repository are shared by concurrent pushes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from modelstore.manifest import Layer
from modelstore.names import Name, parse_name
from modelstore.store import ModelStore
from registry.auth import go_query_encode
from registry.download import MAX_RETRIES, part_plan, retry_delay
from registry.transfers import TRANSFERS
from registry.transport import RegistryClient, RegistryError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 413: "Request Entity Too Large", 416: "Requested Range Not Satisfiable",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def with_query(url: str, extra: list[tuple[str, str]]) -> str:
    """url with `extra` added to its query, all of it re-encoded with sorted keys."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True) + extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, go_query_encode(pairs), parts.fragment))


def upload_location(response_headers, base: str) -> str | None:
    location = response_headers.get("docker-upload-location") or response_headers.get("location")
    return urljoin(base, location) if location else None


def etag(part_md5s: list[bytes]) -> str:
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


class BlobUpload:
    def __init__(self, store: ModelStore, client: RegistryClient, name: Name, layer: Layer) -> None:
        self.store = store
        self.client = client
        self.name = name
        self.layer = layer
        self.path: Path = store.blobs.path(layer.digest)
        self.total = 0
        self.completed = 0
        self.done = threading.Event()
        self.error: RegistryError | None = None
        self.references = 0
        self.key = (client.host, name.display_namespace_model(), layer.digest)

    def start(self) -> None:
        self.client.acquire()
        threading.Thread(target=self.run, name=f"push-{self.layer.digest[7:19]}", daemon=True).start()

    def run(self) -> None:
        try:
            self._run()
        except RegistryError as exc:
            self.error = exc
        except OSError as exc:
            self.error = RegistryError(f"open {exc.filename}: {(exc.strerror or str(exc)).lower()}"
                                       if exc.filename else str(exc))
        except Exception as exc:  # noqa: BLE001 - reported to every waiter
            log.exception("upload of %s failed", self.layer.digest)
            self.error = RegistryError(str(exc) or type(exc).__name__)
        finally:
            _forget(self)
            self.done.set()
            self.client.close()

    def _run(self) -> None:
        url = self.client.url(self.name, "blobs", "uploads", "")
        if self.layer.from_:
            source = parse_name(self.layer.from_).display_namespace_model()
            url = with_query(url, [("mount", self.layer.digest), ("from", source)])
        response = self.client.request("POST", url, retries=1)
        response.close()
        self.total = self.path.stat().st_size
        if response.status_code == 201:  # mounted from the other repository
            self.completed = self.total
            return
        location = upload_location(response.headers, url)
        if location is None:
            raise RegistryError("http: no Location header in response")
        parts = part_plan(self.total)
        log.info("uploading %s in %d part(s)", self.layer.digest[7:19], len(parts))
        md5s = []
        with open(self.path, "rb") as f:
            for offset, size in parts:
                location, md5 = self._upload_part(f, location, offset, size)
                md5s.append(md5)
        self._commit(location, md5s)

    def _body(self, f, offset: int, size: int, md5s: list) -> Iterator[bytes]:
        """The part's bytes, counted as progress; each (re)send starts a fresh md5 in md5s."""
        md5 = hashlib.md5()
        md5s.append(md5)
        position, end, base = offset, offset + size, self.completed
        sent = 0
        try:
            while position < end:
                f.seek(position)
                chunk = f.read(min(CHUNK, end - position))
                if not chunk:
                    raise RegistryError(f"read {self.path}: unexpected EOF")
                position += len(chunk)
                md5.update(chunk)
                sent += len(chunk)
                TRANSFERS.add_pushed(len(chunk))
                self.completed = base + sent
                yield chunk
        finally:
            if position < end:
                self.completed = base

    def _upload_part(self, f, location: str, offset: int, size: int) -> tuple[str, bytes]:
        failures = 0
        while True:
            before = self.completed
            try:
                return self._patch(f, location, offset, size)
            except RegistryError as exc:
                self.completed = before
                failures += 1
                if failures >= MAX_RETRIES:
                    raise RegistryError(f"max retries exceeded: {exc}") from exc
                sleep = retry_delay() * 2 ** (failures - 1)
                log.info("%s part at %d attempt %d failed: %s, retrying in %.0fs",
                         self.layer.digest[7:19], offset, failures - 1, exc, sleep)
                threading.Event().wait(sleep)

    def _patch(self, f, location: str, offset: int, size: int) -> tuple[str, bytes]:
        """One part; returns the next upload URL and the md5 of the bytes sent."""
        md5s: list = []
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size),
                   "X-Redirect-Uploads": "1", "Content-Range": f"{offset}-{offset + size - 1}"}
        before = self.completed
        response = self.client.request("PATCH", location, headers=headers,
                                       content=lambda: self._body(f, offset, size, md5s),
                                       follow_redirects=False, check=False, retries=1)
        try:
            status = response.status_code
            next_location = upload_location(response.headers, location)
            if status == 307:  # ollama.com: the bytes go to a bucket, the next URL comes from here
                target = response.headers.get("location")
                if not target or next_location is None:
                    raise RegistryError("http: no Location header in response")
                self.completed = before
                return next_location, self._put_redirected(f, urljoin(location, target), offset, size)
            if status >= 400:
                body = response.read().decode("utf-8", "replace")
                raise RegistryError(f"http status {status} {_REASONS.get(status, '')}".rstrip() + f": {body}")
            if next_location is None:
                raise RegistryError("http: no Location header in response")
            return next_location, md5s[-1].digest()
        finally:
            response.close()

    def _put_redirected(self, f, url: str, offset: int, size: int) -> bytes:
        """A part PUT to where a 307 pointed (a storage bucket): no auth, no Content-Range."""
        md5s: list = []
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        response = self.client.request("PUT", url, headers=headers, content=lambda: self._body(f, offset, size, md5s),
                                       follow_redirects=False, check=False, retries=1)
        try:
            if response.status_code >= 400:
                body = response.read().decode("utf-8", "replace")
                raise RegistryError(f"http status {response.status_code}: {body}")
        finally:
            response.close()
        return md5s[-1].digest()

    def _commit(self, location: str, md5s: list[bytes]) -> None:
        url = with_query(location, [("digest", self.layer.digest), ("etag", etag(md5s))])
        headers = {"Content-Type": "application/octet-stream", "Content-Length": "0"}
        failures = 0
        while True:
            try:
                self.client.request("PUT", url, headers=headers, content=b"", retries=1).close()
                return
            except RegistryError as exc:
                failures += 1
                if failures >= MAX_RETRIES or exc.message.startswith(("400", "404")):
                    raise
                threading.Event().wait(retry_delay() * 2 ** (failures - 1))


_uploads: dict[tuple[str, str, str], BlobUpload] = {}
_uploads_lock = threading.Lock()


def join_upload(store: ModelStore, client: RegistryClient, name: Name, layer: Layer) -> BlobUpload:
    upload = BlobUpload(store, client, name, layer)
    with _uploads_lock:
        running = _uploads.get(upload.key)
        if running is None:
            _uploads[upload.key] = upload
            upload.start()
            running = upload
        running.references += 1
        return running


def release(upload: BlobUpload) -> None:
    with _uploads_lock:
        upload.references -= 1


def _forget(upload: BlobUpload) -> None:
    with _uploads_lock:
        if _uploads.get(upload.key) is upload:
            del _uploads[upload.key]
