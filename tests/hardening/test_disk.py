"""Issue 13 item 6: a full disk gives JSON errors and leaves no temporary behind, a streamed create ends with
an error line, and temporaries left by a dead process are removed at the next start, while those of a
live process (another server on the same store) survive."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from modelstore.blobs import is_temp_name
from tests.conftest import Server, start_server
from tests.management.conftest import upload_dir
from tests.management.tiny import write_tiny_llama


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 110 MB (room for the bundled model, 98 MB), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=110m", "tmpfs", str(mount)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a tmpfs here: {e}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def temporaries(models: Path) -> list[str]:
    names = [p.name for p in (models / "blobs").iterdir()] if (models / "blobs").is_dir() else []
    manifests = models / "manifests"
    names += [p.name for p in manifests.glob(".tmp-*")] if manifests.is_dir() else []
    return [n for n in names if is_temp_name(n) or n.startswith(".tmp-")]


def fill(directory: Path) -> None:
    """Take every free byte of the filesystem."""
    for index, size in enumerate((1 << 20, 4096, 1)):
        try:
            with open(directory / f"filler{index}", "wb", buffering=0) as f:
                while True:
                    f.write(b"\0" * size)
        except OSError:
            pass


def test_uploads_to_a_full_disk_are_json_errors_and_leave_nothing(small_disk: Path, tmp_path: Path) -> None:
    server = start_server(small_disk / "models", tmp_path / "server.log", bundled=True)
    try:
        data = b"\1" * (40 << 20)  # more than the 12 MB the bundled model leaves
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        for _ in range(8):
            r = httpx.post(f"{server.url}/api/blobs/{digest}", content=data, timeout=120)
            assert r.status_code == 500
            assert r.headers["content-type"].startswith("application/json")
            assert "No space left on device" in r.json()["error"]
            assert temporaries(small_disk / "models") == []
    finally:
        server.stop()


def test_a_streamed_create_on_a_full_disk_ends_with_an_error_line(small_disk: Path, tmp_path: Path) -> None:
    server = start_server(small_disk / "models", tmp_path / "server.log")
    try:
        files = upload_dir(server, write_tiny_llama(tmp_path / "tiny"))
        fill(small_disk)
        with httpx.stream("POST", server.url + "/api/create", timeout=120,
                          json={"model": "tiny", "files": files}) as r:
            lines = [json.loads(line) for line in r.iter_lines()]
        assert r.status_code == 200 and lines[0] == {"status": "converting model"}  # the stream had begun
        assert "No space left on device" in lines[-1]["error"], lines
        assert temporaries(small_disk / "models") == []
        assert httpx.get(server.url + "/api/tags", timeout=30).status_code == 200
    finally:
        server.stop()


def uploading(server: Server, data: bytes, digest: str) -> socket.socket:
    """An upload that has sent its first MiB and waits, its temporary file on disk."""
    before = set(temporaries(server.models))
    url = urlsplit(server.url)
    sock = socket.create_connection((url.hostname, url.port))
    sock.sendall(f"POST /api/blobs/{digest} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data[: 1 << 20])
    deadline = time.monotonic() + 30
    while not set(temporaries(server.models)) - before:
        assert time.monotonic() < deadline, "no temporary file for the upload"
        time.sleep(0.05)
    return sock


def test_a_dead_servers_temporaries_are_removed_at_the_next_start(tmp_path: Path) -> None:
    models = tmp_path / "models"
    first = start_server(models, tmp_path / "first.log")
    data = b"\3" * (8 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    sock = uploading(first, data, digest)
    stray = models / "manifests" / ".tmp-manifest-12345"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"{}")  # as a kill -9 between write and rename leaves it
    first.stop(signal.SIGKILL)
    sock.close()
    left = temporaries(models)
    assert len(left) == 2
    second = start_server(models, tmp_path / "second.log")
    try:
        assert temporaries(models) == []  # at once, not an hour later
    finally:
        second.stop()


def test_a_live_servers_temporaries_survive_another_servers_start(tmp_path: Path) -> None:
    models = tmp_path / "models"
    first = start_server(models, tmp_path / "first.log")
    data = b"\4" * (8 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (models / "blobs").mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", (  # a writer that locks nothing (as Ollama) but has it open
        "import sys, time; f = open(sys.argv[1], 'wb'); f.write(b'x'); f.flush(); print(flush=True); time.sleep(60)"),
        str(models / "blobs" / "sha256-424242")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline()
        sock = uploading(first, data, digest)
        before = sorted(temporaries(models))
        assert len(before) == 2
        second = start_server(models, tmp_path / "second.log")
        try:
            assert sorted(temporaries(models)) == before
            sock.sendall(data[1 << 20:])
            sock.settimeout(60)
            assert sock.recv(4096).startswith(b"HTTP/1.1 201")
            sock.close()
            assert (models / "blobs" / digest.replace(":", "-")).read_bytes() == data
        finally:
            second.stop()
    finally:
        holder.kill()
        holder.wait()
        first.stop()
