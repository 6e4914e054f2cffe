"""Pulls against small in-test registries that behave like ones pollama meets in the wild.

* registry.ollama.ai's shape: Bearer challenge with the realm on the registry's own host, token
  request signed with the ed25519 key, blob GETs answered with a 307 to a storage host (where no
  Authorization may go);
* a storage host that ignores Range (200 with the whole blob): detected, fetched as one stream;
* a registry that serves blobs itself (200/206), as Docker Distribution does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelstore.names import parse_name
from modelstore.store import ModelStore
from registry import auth, download
from registry.pull import pull_model
from registry.transport import RegistryError

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass
class Behaviour:
    blob: bytes
    config: bytes
    require_token: bool = False
    redirect_to: str | None = None  # base URL of the storage host
    storage_ignores_range: bool = False
    registry_ignores_range: bool = False
    head_fails: bool = False
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    token_requests: list[str] = field(default_factory=list)
    signature_ok: list[bool] = field(default_factory=list)

    @property
    def blob_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.blob).hexdigest()

    @property
    def config_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()

    def manifest(self) -> bytes:
        return json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": self.config_digest, "size": len(self.config)},
            "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": self.blob_digest,
                        "size": len(self.blob)}],
        }, separators=(",", ":")).encode()

    def data_for(self, digest: str) -> bytes | None:
        return {self.blob_digest: self.blob, self.config_digest: self.config}.get(digest)


def _send_bytes(handler: BaseHTTPRequestHandler, data: bytes, ignore_range: bool, head: bool = False) -> None:
    header = handler.headers.get("Range")
    if header and not ignore_range:
        first, _, last = header.removeprefix("bytes=").partition("-")
        start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
        body = data[start:end + 1]
        handler.send_response(206)
        handler.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
    else:
        body = data
        handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if not head:
        handler.wfile.write(body)


def make_handler(behaviour: Behaviour, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _record(self) -> None:
            behaviour.requests.append((role, f"{self.command} {self.path}", dict(self.headers.items())))

        def do_HEAD(self) -> None:  # noqa: N802
            if behaviour.head_fails and role == "registry":
                self._record()
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.do_GET(head=True)

        def do_GET(self, head: bool = False) -> None:  # noqa: N802
            self._record()
            if role == "storage":
                data = behaviour.data_for(self.path.rsplit("/", 1)[-1])
                if data is None:
                    return self._plain(404, b"no such object")
                return _send_bytes(self, data, behaviour.storage_ignores_range, head)
            if self.path.startswith("/token"):
                return self._token()
            if behaviour.require_token and self.headers.get("Authorization") != "Bearer good-token":
                self.send_response(401)
                host = self.headers["Host"]
                self.send_header("WWW-Authenticate", f'Bearer realm="http://{host}/token",service="fake",'
                                                     f'scope="repository:library/m:pull"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if "/manifests/" in self.path:
                return self._plain(200, behaviour.manifest(), MANIFEST_TYPE)
            digest = self.path.rsplit("/", 1)[-1]
            data = behaviour.data_for(digest)
            if data is None:
                return self._plain(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            if behaviour.redirect_to and not head:
                self.send_response(307)
                self.send_header("Location", f"{behaviour.redirect_to}/objects/{digest}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return _send_bytes(self, data, behaviour.registry_ignores_range, head)

        def _token(self) -> None:
            host = self.headers["Host"]
            url = f"http://{host}{self.path}"
            behaviour.token_requests.append(url)
            pub_b64, _, signature_b64 = self.headers.get("Authorization", "").partition(":")
            ok = False
            try:
                from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

                key = Ed25519PublicKey.from_public_bytes(base64.b64decode(pub_b64)[-32:])
                key.verify(base64.b64decode(signature_b64), auth.signing_string(url))
                ok = True
            except Exception:  # noqa: BLE001 - recorded, answered with 401
                ok = False
            behaviour.signature_ok.append(ok)
            if not ok:
                return self._plain(401, b'{"error":"bad signature"}')
            return self._plain(200, b'{"token":"good-token"}', "application/json")

        def _plain(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def servers() -> Iterator:
    started: list[ThreadingHTTPServer] = []

    def serve(behaviour: Behaviour, role: str, host: str = "127.0.0.1") -> str:
        server = ThreadingHTTPServer((host, 0), make_handler(behaviour, role))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return f"{host}:{server.server_address[1]}"

    yield serve
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def small_units(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(download, "UNIT_SIZE", 256 * 1024)
    monkeypatch.setenv("POLLAMA_REGISTRY_RETRY_DELAY", "0.05")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))


def run_pull(store: ModelStore, name: str, insecure: bool = True) -> list[dict]:
    async def collect() -> list[dict]:
        return [item async for item in pull_model(store, parse_name(name), insecure=insecure)]

    return asyncio.run(collect())


def _statuses(items: list[dict]) -> list[str]:
    out: list[str] = []
    for item in items:
        if not out or out[-1] != item["status"]:
            out.append(item["status"])
    return out


def test_ollama_shaped_registry_signed_token_and_cross_host_redirect(servers, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("cryptography", reason="ed25519 signing needs the cryptography package")
    monkeypatch.setenv("POLLAMA_DOWNLOAD_STREAMS", "4")  # parallel ranged GETs, one unit each
    behaviour = Behaviour(blob=os.urandom(3 * 1024 * 1024 + 17), config=b'{"model_format":"gguf"}\n',
                          require_token=True)
    storage = servers(behaviour, "storage", host="localhost")  # another hostname than the registry's
    behaviour.redirect_to = f"http://{storage}"
    registry = servers(behaviour, "registry")
    store = ModelStore(tmp_path / "models")

    items = run_pull(store, f"{registry}/library/m:latest")

    assert _statuses(items) == ["pulling manifest", f"pulling {behaviour.blob_digest[7:19]}",
                                f"pulling {behaviour.config_digest[7:19]}", "verifying sha256 digest",
                                "writing manifest", "success"]
    assert store.blobs.read_bytes(behaviour.blob_digest) == behaviour.blob
    manifest = store.manifest_path(parse_name(f"{registry}/library/m:latest")).read_bytes()
    assert manifest == behaviour.manifest()  # stored byte for byte
    # The token request was signed with the key created in ~/.ollama, and verified.
    assert (tmp_path / "home/.ollama/id_ed25519").exists()
    assert behaviour.signature_ok and all(behaviour.signature_ok)
    token_url = behaviour.token_requests[0]
    assert "scope=repository%3Alibrary%2Fm%3Apull" in token_url and "service=fake" in token_url
    # Registry requests carry the token after the challenge; the storage host never sees it.
    registry_gets = [h for role, line, h in behaviour.requests if role == "registry" and "/token" not in line]
    assert any(h.get("Authorization") == "Bearer good-token" for h in registry_gets)
    storage_requests = [(line, h) for role, line, h in behaviour.requests if role == "storage"]
    assert storage_requests and all("Authorization" not in h for _, h in storage_requests)
    # Ranged GETs: several, each `bytes=<first>-<last>` inside the blob.
    ranges = [h["Range"] for line, h in storage_requests if behaviour.blob_digest in line]
    assert len(ranges) >= 12 and all(r.startswith("bytes=") for r in ranges)
    manifest_request = next(h for role, line, h in behaviour.requests if "/manifests/" in line)
    assert manifest_request["Accept"] == MANIFEST_TYPE
    assert manifest_request["User-Agent"].startswith("ollama/")
    assert not list((tmp_path / "models/blobs").glob("*partial*"))


def test_a_fast_single_stream_asks_for_runs_of_units(servers, tmp_path: Path) -> None:
    """Unset, POLLAMA_DOWNLOAD_STREAMS starts with one stream, and one stream that is fast asks for many
    units per GET: a few requests, in order, that cover the blob once."""
    behaviour = Behaviour(blob=os.urandom(3 * 1024 * 1024 + 17), config=b"{}\n")
    storage = servers(behaviour, "storage", host="localhost")
    behaviour.redirect_to = f"http://{storage}"
    registry = servers(behaviour, "registry")
    store = ModelStore(tmp_path / "models")

    assert run_pull(store, f"{registry}/library/m:latest")[-1] == {"status": "success"}
    assert store.blobs.read_bytes(behaviour.blob_digest) == behaviour.blob
    ranges = [h["Range"] for role, line, h in behaviour.requests
              if role == "storage" and behaviour.blob_digest in line and h.get("Range", "") != "bytes=0-0"]
    spans = [tuple(int(v) for v in r.removeprefix("bytes=").split("-")) for r in ranges]
    assert spans[0][0] == 0 and spans[-1][1] == len(behaviour.blob) - 1
    assert all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:], strict=False))  # adjacent: one stream
    assert len(spans) <= 4 < len(behaviour.blob) // (256 * 1024)  # far fewer GETs than units


def test_a_storage_host_that_ignores_range_is_detected(servers, tmp_path: Path) -> None:
    behaviour = Behaviour(blob=os.urandom(2 * 1024 * 1024 + 5), config=b"{}\n", storage_ignores_range=True)
    storage = servers(behaviour, "storage", host="localhost")
    behaviour.redirect_to = f"http://{storage}"
    registry = servers(behaviour, "registry")
    store = ModelStore(tmp_path / "models")

    items = run_pull(store, f"{registry}/library/m:latest")

    assert items[-1] == {"status": "success"}
    assert store.blobs.read_bytes(behaviour.blob_digest) == behaviour.blob
    full_gets = [h for role, line, h in behaviour.requests
                 if role == "storage" and behaviour.blob_digest in line and not h.get("Range", "").startswith("bytes=")]
    assert full_gets or any(h.get("Range") == f"bytes=0-{len(behaviour.blob) - 1}" for _, _, h in behaviour.requests)


def test_a_registry_that_ignores_range_gets_one_stream(servers, tmp_path: Path) -> None:
    behaviour = Behaviour(blob=os.urandom(1024 * 1024 + 3), config=b"{}\n", registry_ignores_range=True)
    registry = servers(behaviour, "registry")
    store = ModelStore(tmp_path / "models")
    assert run_pull(store, f"{registry}/library/m:latest")[-1] == {"status": "success"}
    assert store.blobs.read_bytes(behaviour.blob_digest) == behaviour.blob
    blob_gets = [h.get("Range") for role, line, h in behaviour.requests
                 if line.startswith("GET") and behaviour.blob_digest in line]
    assert blob_gets == ["bytes=0-0", f"bytes=0-{len(behaviour.blob) - 1}"]  # the probe, then one stream


def test_unknown_model_and_https_without_insecure(servers, tmp_path: Path) -> None:
    behaviour = Behaviour(blob=b"x", config=b"{}")
    registry = servers(behaviour, "registry")
    store = ModelStore(tmp_path / "models")

    async def first_error(name: str, insecure: bool) -> tuple[list[dict], str]:
        items: list[dict] = []
        try:
            async for item in pull_model(store, parse_name(name), insecure=insecure):
                items.append(item)
        except RegistryError as exc:
            return items, exc.message
        return items, ""

    behaviour.data_for = lambda digest: None  # type: ignore[method-assign]
    items, error = asyncio.run(first_error(f"{registry}/library/m:latest", True))
    assert items == [{"status": "pulling manifest"}]
    assert error == "file does not exist"  # the blob HEAD got a 404
    assert not any((tmp_path / "models" / "blobs").iterdir())  # no empty -partial left behind
    # Without insecure the client speaks TLS to a plain-HTTP server and fails before any manifest.
    items, error = asyncio.run(first_error(f"{registry}/library/m:latest", False))
    assert items == [{"status": "pulling manifest"}]
    assert error.startswith(f'pull model manifest: Get "https://{registry}/v2/library/m/manifests/latest"')
    assert not store.manifests()


def test_an_empty_blob_and_a_registry_without_head(servers, tmp_path: Path) -> None:
    behaviour = Behaviour(blob=os.urandom(300_000), config=b"", head_fails=True)
    registry = servers(behaviour, "registry")
    store = ModelStore(tmp_path / "models")
    items = run_pull(store, f"{registry}/library/m:latest")
    assert items[-1] == {"status": "success"}
    assert store.blobs.read_bytes(behaviour.blob_digest) == behaviour.blob  # size taken from the manifest
    assert store.blobs.read_bytes(behaviour.config_digest) == b""
    assert {"status": f"pulling {behaviour.config_digest[7:19]}", "digest": behaviour.config_digest} in items


def test_http_proxy_from_the_environment_carries_every_request(servers, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import http.client
    from urllib.parse import urlsplit

    seen: list[str] = []

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            seen.append(f"{self.command} {self.path}")
            target = urlsplit(self.path)  # a proxy gets absolute URIs
            upstream = http.client.HTTPConnection(target.hostname, target.port)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
            upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""),
                             headers=headers)
            response = upstream.getresponse()
            body = response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", response.getheader("Content-Length") or str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            upstream.close()

        do_GET = _forward  # noqa: N815
        do_HEAD = _forward  # noqa: N815

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        behaviour = Behaviour(blob=os.urandom(700_000), config=b"{}\n")
        registry = servers(behaviour, "registry")
        for variable in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
        store = ModelStore(tmp_path / "models")
        assert run_pull(store, f"{registry}/library/m:latest")[-1] == {"status": "success"}
        assert store.blobs.read_bytes(behaviour.blob_digest) == behaviour.blob
        blob_requests = [line for line in seen if behaviour.blob_digest in line]
        assert len(blob_requests) >= 3  # HEAD, the Range probe and the ranged parts, all through the proxy
        assert len([r for _, r, _ in behaviour.requests if behaviour.blob_digest in r]) == len(blob_requests)
    finally:
        proxy.shutdown()
        proxy.server_close()
