"""Pulls that are interrupted or go wrong: cut connections, a killed daemon, a client that leaves,
a corrupted blob in the registry, a full disk, and two pulls of one blob at once.

Bytes are counted by a TCP proxy between pollama and the registry, so "downloads only what was
missing" is measured on the wire.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.registry.distribution import Registry, start_registry
from tests.registry.helpers import copy, manifest_of, pull, push, statuses
from tests.registry.tcpproxy import CountingProxy

MODEL_SIZE = 98362432
SLACK = 300_000  # headers, the manifest and the three small blobs


@pytest.fixture
def proxy(registry: Registry) -> Iterator[CountingProxy]:
    instance = CountingProxy(registry.port)
    yield instance
    instance.close()


def model_digest(source: Server, name: str) -> str:
    return manifest_of(source, name)[1][0]


def state_completed(models: Path, digest: str) -> tuple[int, int]:
    """(sum of Completed, sum of Size) over the part state files of a blob."""
    completed = size = 0
    for path in (models / "blobs").glob(f"{digest.replace(':', '-')}-partial-*"):
        if path.name.rsplit("-", 1)[1].isdigit():
            state = json.loads(path.read_text())
            completed += state["Completed"]
            size += state["Size"]
    return completed, size


def kept_bytes(models: Path, digest: str) -> int:
    """What a resume can skip: each part's Completed plus pollama's extents beyond it."""
    completed, _ = state_completed(models, digest)
    extents = models / "blobs" / f".{digest.replace(':', '-')}-partial.extents"
    if extents.exists():
        completed += sum(length for _, length in json.loads(extents.read_text())["extents"])
    return completed


def wait_for_progress(models: Path, digest: str, at_least: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        completed, _ = state_completed(models, digest)
        if completed >= at_least:
            return completed
        time.sleep(0.05)
    raise AssertionError(f"the download of {digest} did not reach {at_least} bytes")


def pull_in_background(server: Server, name: str) -> threading.Thread:
    def run() -> None:
        try:
            pull(server, name)
        except httpx.HTTPError:
            pass  # the server is about to be killed

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def through(proxy: CountingProxy, name: str) -> str:
    """`name` with its registry host replaced by the proxy in front of it."""
    return name.replace(name.split("/")[0], f"127.0.0.1:{proxy.port}")


def check_blob(models: Path, digest: str) -> None:
    path = models / "blobs" / digest.replace(":", "-")
    assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert not list((models / "blobs").glob("*partial*"))


def test_a_cut_connection_resumes_where_it_stopped(source: Server, pushed: str, proxy: CountingProxy, fresh) -> None:
    server = fresh()
    digest = model_digest(source, pushed)
    name = through(proxy, pushed)
    proxy.cut_after(30_000_000)
    items = pull(server, name)
    assert items[-1] == {"status": "success"}, items[-3:]
    assert proxy.cuts == 1 and proxy.connections > 2
    assert MODEL_SIZE <= proxy.down <= MODEL_SIZE + SLACK  # nothing fetched twice
    check_blob(server.models, digest)


def test_a_killed_daemon_resumes_from_its_state_files(source: Server, pushed: str, proxy: CountingProxy,
                                                      fresh) -> None:
    digest = model_digest(source, pushed)
    name = through(proxy, pushed)
    first = fresh(POLLAMA_DOWNLOAD_STREAMS="4")
    proxy.rate = 20e6
    pull_in_background(first, name)
    wait_for_progress(first.models, digest, 25_000_000)
    first.stop(signal.SIGKILL)

    completed, size = state_completed(first.models, digest)
    assert size == MODEL_SIZE and 25_000_000 <= completed < MODEL_SIZE
    partial = first.models / "blobs" / (digest.replace(":", "-") + "-partial")
    original = (source.models / "blobs" / digest.replace(":", "-")).read_bytes()
    with partial.open("rb") as f:  # what the state claims is really there
        assert f.read(completed) == original[:completed]
    kept = kept_bytes(first.models, digest)
    assert not (first.models / "manifests").exists() or not any((first.models / "manifests").rglob("latest"))

    proxy.rate = None
    proxy.reset()
    second = fresh(models=first.models)
    items = pull(second, name)
    assert items[-1] == {"status": "success"}
    missing = MODEL_SIZE - kept
    assert missing <= proxy.down <= missing + SLACK
    check_blob(second.models, digest)
    first_event = next(i for i in items if i.get("digest") == digest)
    assert first_event["completed"] >= completed  # progress starts where the state left off


def test_a_pull_cut_by_shutdown_resumes_on_the_next_start(source: Server, pushed: str, proxy: CountingProxy,
                                                         fresh) -> None:
    """SIGTERM drains for POLLAMA_SHUTDOWN_TIMEOUT, cuts the pull still running, exits 0; the next start resumes."""
    digest = model_digest(source, pushed)
    name = through(proxy, pushed)
    first = fresh(POLLAMA_SHUTDOWN_TIMEOUT="1")
    proxy.rate = 20e6
    pull_in_background(first, name)
    wait_for_progress(first.models, digest, 25_000_000)
    signalled = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=30) == 0
    assert time.monotonic() - signalled < 10
    kept = kept_bytes(first.models, digest)
    assert 25_000_000 <= kept < MODEL_SIZE

    proxy.rate = None
    proxy.reset()
    second = fresh(models=first.models)
    items = pull(second, name)
    assert items[-1] == {"status": "success"}
    assert proxy.down <= MODEL_SIZE - kept + SLACK
    check_blob(second.models, digest)


def test_a_client_that_leaves_cancels_and_the_next_pull_resumes(source: Server, pushed: str, proxy: CountingProxy,
                                                                fresh) -> None:
    digest = model_digest(source, pushed)
    name = through(proxy, pushed)
    server = fresh(POLLAMA_DOWNLOAD_STREAMS="2")
    proxy.rate = 20e6
    with httpx.stream("POST", server.url + "/api/pull", json={"model": name, "insecure": True}, timeout=60) as r:
        for line in r.iter_lines():
            if json.loads(line).get("completed", 0) > 20_000_000:
                break
    # The server notices, cancels the download and keeps its state: the traffic stops.
    deadline, last = time.monotonic() + 20, -1
    while proxy.down != last and time.monotonic() < deadline:
        last = proxy.down
        time.sleep(0.7)
    assert proxy.down == last and proxy.down < MODEL_SIZE * 0.8
    time.sleep(0.5)  # the last state save
    kept = kept_bytes(server.models, digest)
    assert kept > 18_000_000
    assert state_completed(server.models, digest)[0] < kept  # two streams: not all of it contiguous

    proxy.rate = None
    proxy.reset()
    assert pull(server, name)[-1] == {"status": "success"}
    assert MODEL_SIZE - kept <= proxy.down <= MODEL_SIZE - kept + SLACK
    check_blob(server.models, digest)
    assert not list((server.models / "blobs").glob(".*"))


def most_streams(server: Server, digest: str) -> int:
    """How many streams the server's log says the download of `digest` used at most."""
    lines = [line for line in server.output().splitlines() if f"{digest[7:19]}: " in line and "stream(s)" in line]
    return int(re.search(r"at most (\d+) stream", lines[-1]).group(1))


def test_streams_are_added_where_each_connection_is_capped(source: Server, pushed: str, proxy: CountingProxy,
                                                          fresh) -> None:
    """Behind a per-connection cap (as CDNs have), more streams fetch more: the download ramps up."""
    digest = model_digest(source, pushed)
    name = through(proxy, pushed)
    server = fresh()
    proxy.connection_rate = 12e6
    assert pull(server, name)[-1] == {"status": "success"}
    assert most_streams(server, digest) >= 4
    assert MODEL_SIZE <= proxy.down <= MODEL_SIZE + SLACK  # nothing fetched twice
    check_blob(server.models, digest)


def test_one_stream_is_kept_where_more_do_not_fetch_more(source: Server, pushed: str, proxy: CountingProxy,
                                                         fresh) -> None:
    """Behind one cap for everything, a second stream brings nothing: the download goes back to one."""
    digest = model_digest(source, pushed)
    name = through(proxy, pushed)
    server = fresh()
    proxy.rate = 40e6
    assert pull(server, name)[-1] == {"status": "success"}
    assert most_streams(server, digest) == 2
    log = server.output()
    assert log.count(f"{digest[7:19]}: ") == 1
    check_blob(server.models, digest)


def test_two_pulls_of_one_blob_share_one_download(source: Server, pushed: str, proxy: CountingProxy,
                                                  fresh) -> None:
    name = through(proxy, pushed)
    server = fresh()
    proxy.rate = 40e6
    results: list[list[dict]] = []
    threads = [threading.Thread(target=lambda: results.append(pull(server, name))) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.3)
    for thread in threads:
        thread.join(120)
    assert [r[-1] for r in results] == [{"status": "success"}] * 2
    assert statuses(results[0]) == statuses(results[1])
    assert proxy.down <= MODEL_SIZE + 2 * SLACK
    check_blob(server.models, model_digest(source, pushed))


def test_a_blob_altered_in_the_registry_fails_with_ollamas_digest_mismatch(
        registry_binary: str, source: Server, tmp_path: Path, fresh) -> None:
    private = start_registry(tmp_path / "altered")
    try:
        name = f"{private.host}/library/smol:latest"
        copy(source, "smollm2:135m", name)
        assert push(source, name)[-1] == {"status": "success"}
        digest = model_digest(source, name)
        data = private.blob_data(digest)
        with data.open("r+b") as f:  # one byte in the middle, same size
            f.seek(50_000_000)
            byte = f.read(1)
            f.seek(50_000_000)
            f.write(bytes([byte[0] ^ 0xFF]))
        actual = "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest()

        server = fresh()
        items = pull(server, name)
        assert statuses(items)[-2:] == ["verifying sha256 digest",
                                        f"error: digest mismatch, file must be downloaded again: want {digest}, "
                                        f"got {actual}"]
        blobs = server.models / "blobs"
        assert not (blobs / digest.replace(":", "-")).exists()
        assert not list(blobs.glob("*partial*"))
        assert not (server.models / "manifests").exists() or not any((server.models / "manifests").rglob("*/*/*/*"))
        assert httpx.get(server.url + "/api/tags").json() == {"models": []}
    finally:
        private.stop()


def test_a_full_disk_is_reported_and_leaves_nothing_half_written(source: Server, pushed: str, tmp_path: Path,
                                                                 fresh) -> None:
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mountpoint)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        server = fresh(models=mountpoint / "models")
        digest = model_digest(source, pushed)
        items = pull(server, pushed)
        partial = mountpoint / "models" / "blobs" / (digest.replace(":", "-") + "-partial")
        assert items[0] == {"status": "pulling manifest"}
        assert items[-1] == {"error": f"write {partial}: no space left on device"}
        assert not any((mountpoint / "models" / "blobs").iterdir())
        assert not (mountpoint / "models" / "manifests").exists()
        status = httpx.post(server.url + "/api/pull", json={"model": pushed, "insecure": True, "stream": False})
        assert (status.status_code, status.json()) == (500, {"error": f"write {partial}: no space left on device"})
        server.stop()
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)
