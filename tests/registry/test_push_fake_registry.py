"""Push to an ollama.com-shaped registry: parts are PATCHed, answered with a 307 to a storage bucket
(where the bytes go with a PUT, without Authorization or Content-Range), and the next upload URL comes
from `Docker-Upload-Location`. Then the commit with `digest` and the S3-style `etag`, and the manifest."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from modelstore.manifest import MEDIA_CONFIG, MEDIA_MODEL, Layer, Manifest
from modelstore.names import parse_name
from modelstore.store import ModelStore
from registry import download
from registry.push import push_model


def test_push_with_redirected_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "MIN_PART_SIZE", 100_000)  # several parts from a small blob
    monkeypatch.setattr("registry.upload.part_plan", download.part_plan)
    log: list[tuple[str, str, str, dict[str, str], int]] = []
    stored: dict[str, bytearray] = {}
    manifests: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802
            log.append((self.server.role, "HEAD", self.path, dict(self.headers), 0))
            self._answer(404)

        def do_POST(self) -> None:  # noqa: N802
            log.append((self.server.role, "POST", self.path, dict(self.headers), 0))
            uploads.append(len(uploads) + 1)
            self._answer(202, {"Location": f"http://{self.headers['Host']}/upload/{uploads[-1]}?n=0"})

        def do_PATCH(self) -> None:  # noqa: N802
            body = self._body()
            log.append((self.server.role, "PATCH", self.path, dict(self.headers), len(body)))
            n = int(parse_qs(urlsplit(self.path).query)["n"][0])
            upload = urlsplit(self.path).path.rsplit("/", 1)[1]
            first = self.headers["Content-Range"].split("-")[0]
            self._answer(307, {"Location": f"http://{bucket_host}/bucket/part?u={upload}&first={first}",
                               "Docker-Upload-Location": f"http://{self.headers['Host']}/upload/{upload}?n={n + 1}"})

        def do_PUT(self) -> None:  # noqa: N802
            body = self._body()
            log.append((self.server.role, "PUT", self.path, dict(self.headers), len(body)))
            if self.server.role == "bucket":
                query = parse_qs(urlsplit(self.path).query)
                first = int(query["first"][0])
                stored.setdefault(query["u"][0], bytearray(len(blob)))[first:first + len(body)] = body
                return self._answer(200)
            if "/manifests/" in self.path:
                manifests[self.path] = body
            return self._answer(201)

    def serve(role: str, host: str) -> str:
        server = ThreadingHTTPServer((host, 0), Handler)
        server.role = role  # type: ignore[attr-defined]
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"{host}:{server.server_address[1]}"

    servers: list[ThreadingHTTPServer] = []
    uploads: list[int] = []
    blob = bytes(range(256)) * 1500  # 384,000 bytes: 4 parts of 100,000 and one of 84,000
    bucket_host = serve("bucket", "localhost")
    registry_host = serve("registry", "127.0.0.1")
    try:
        store = ModelStore(tmp_path / "models")
        digest, _ = store.blobs.write_bytes(blob)
        config, _ = store.blobs.write_bytes(b'{"model_format":"gguf"}\n')
        name = parse_name(f"{registry_host}/me/m:v1")
        manifest = Manifest(config=Layer(MEDIA_CONFIG, config, 24), layers=[Layer(MEDIA_MODEL, digest, len(blob))])
        store.write_manifest(name, manifest)

        async def run() -> list[dict]:
            return [item async for item in push_model(store, name, insecure=True)]

        items = asyncio.run(run())
        assert [i["status"] for i in items if "digest" not in i] == [
            "retrieving manifest", "pushing manifest", "success"]
        assert bytes(stored["1"]) == blob

        model_patches = [h for role, method, path, h, _ in log if method == "PATCH" and h["Content-Length"] != "24"]
        assert [h["Content-Range"] for h in model_patches] == ["0-99999", "100000-199999", "200000-299999",
                                                                "300000-383999"]
        assert all(h["X-Redirect-Uploads"] == "1" and h["Content-Type"] == "application/octet-stream"
                   for h in model_patches)
        bucket_puts = [(h, size) for role, method, path, h, size in log if role == "bucket"]
        assert all("Content-Range" not in h and "Authorization" not in h for h, _ in bucket_puts)
        assert sorted(size for _, size in bucket_puts) == sorted([100000, 100000, 100000, 84000, 24])
        commits = [path for role, method, path, h, _ in log if role == "registry" and method == "PUT"
                   and path.startswith("/upload/")]
        md5s = [hashlib.md5(blob[i:i + 100000]).digest() for i in range(0, len(blob), 100000)]
        expected_etag = hashlib.md5(b"".join(md5s)).hexdigest() + "-4"
        assert f"/upload/1?digest=sha256%3A{digest[7:]}&etag={expected_etag}&n=4" in commits
        assert json.loads(manifests["/v2/me/m/manifests/v1"]) == json.loads(manifest.to_bytes())
        assert not manifests["/v2/me/m/manifests/v1"].endswith(b"\n")
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
