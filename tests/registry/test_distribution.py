"""Push and pull against a real Docker Distribution registry (Debian's docker-registry) on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import ollama
import pexpect
import pytest

from tests.conftest import REPO, Server
from tests.registry.distribution import Registry, start_registry
from tests.registry.helpers import call, copy, delete, generate, manifest_of, pull, push, statuses
from tests.registry.tcpproxy import CountingProxy


def blob_file(server: Server, digest: str) -> Path:
    return server.models / "blobs" / digest.replace(":", "-")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def expected_pull(digests: list[str], prune: bool = False) -> list[str]:
    return (["pulling manifest", *[f"pulling {d[7:19]}" for d in digests], "verifying sha256 digest",
             "writing manifest"] + (["removing unused layers"] if prune else []) + ["success"])


def expected_push(digests: list[str]) -> list[str]:
    return ["retrieving manifest", *[f"pushing {d[7:19]}" for d in digests], "pushing manifest", "success"]


def test_push_pull_round_trip_same_digests_and_it_generates(source: Server, registry: Registry, pushed: str,
                                                            fresh) -> None:
    source_raw, digests = manifest_of(source, pushed)
    # The registry stores the manifest as pushed: Go's json.Marshal, compact, no newline.
    served = httpx.get(f"{registry.url}/v2/library/smol/manifests/latest",
                       headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert served.content == source_raw.rstrip(b"\n")
    assert len(digests) == 4 and digests[0] == sha256_file(blob_file(source, digests[0]))

    server = fresh()
    items = pull(server, pushed)
    assert statuses(items) == expected_pull(digests)
    progress = [i for i in items if i["status"] == f"pulling {digests[0][7:19]}"]
    assert progress[-1] == {"status": f"pulling {digests[0][7:19]}", "digest": digests[0],
                            "total": 98362432, "completed": 98362432}
    raw, pulled = manifest_of(server, pushed)
    assert pulled == digests and raw == served.content  # the manifest as the registry sent it
    for digest in digests:
        assert sha256_file(blob_file(server, digest)) == digest
        assert blob_file(server, digest).stat().st_size == blob_file(source, digest).stat().st_size
    assert not list((server.models / "blobs").glob("*partial*"))
    tags = httpx.get(server.url + "/api/tags").json()["models"]
    assert [(m["name"], m["digest"]) for m in tags] == [(pushed, hashlib.sha256(raw).hexdigest())]
    generate(server, pushed)

    # Delete it locally and pull it back.
    delete(server, pushed)
    assert not list((server.models / "blobs").iterdir())
    assert statuses(pull(server, pushed)) == expected_pull(digests)
    assert manifest_of(server, pushed) == (raw, digests)
    # Pulled again while present: each blob reported once, complete, nothing fetched.
    again = pull(server, pushed)
    assert statuses(again) == expected_pull(digests)
    assert [i for i in again if i["status"].startswith("pulling ") and "digest" in i] == [
        {"status": f"pulling {d[7:19]}", "digest": d, "total": blob_file(server, d).stat().st_size,
         "completed": blob_file(server, d).stat().st_size} for d in digests]


def test_ollama_client_sees_ollamas_statuses(source: Server, registry: Registry, pushed: str, fresh) -> None:
    name = f"{registry.host}/client/smol:v1"
    copy(source, "smollm2:135m", name)
    _, digests = manifest_of(source, name)
    client = ollama.Client(host=source.url)
    first = [p.status for p in client.push(name, insecure=True, stream=True)]
    assert statuses([{"status": s} for s in first]) == expected_push(digests)
    again = list(client.push(name, insecure=True, stream=True))  # everything is there now: one event each
    assert [p.status for p in again] == expected_push(digests)
    assert [(p.digest, p.total == p.completed) for p in again[1:-2]] == [(d, True) for d in digests]

    server = fresh()
    puller = ollama.Client(host=server.url)
    events = list(puller.pull(name, insecure=True, stream=True))
    assert statuses([{"status": p.status} for p in events]) == expected_pull(digests)
    final = puller.pull(name, insecure=True)  # stream=False: the last object
    assert final.status == "success"
    with pytest.raises(ollama.ResponseError) as caught:
        puller.pull(f"{registry.host}/client/nope:v1", insecure=True)
    assert caught.value.error == "pull model manifest: file does not exist"
    assert caught.value.status_code == 500
    with pytest.raises(ollama.ResponseError) as caught:
        list(puller.pull(f"{registry.host}/client/nope:v1", insecure=True, stream=True))
    assert caught.value.error == "pull model manifest: file does not exist"


def test_pull_errors_and_push_of_a_missing_model(source: Server, registry: Registry, fresh) -> None:
    server = fresh()
    status, items = call(server, "/api/pull", {"model": f"{registry.host}/library/nope", "insecure": True})
    assert status == 200
    assert items == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    status, items = call(server, "/api/pull", {"name": "bad//name", "insecure": True})
    assert (status, items) == (400, [{"error": "invalid model name"}])
    status, items = call(server, "/api/push", {"model": ""})
    assert (status, items) == (400, [{"error": "model is required"}])
    assert call(server, "/api/pull", {}) == (400, [{"error": "invalid model name"}])  # probe A35
    assert call(server, "/api/push", {}) == (400, [{"error": "model is required"}])  # probe A36
    for path in ("/api/pull", "/api/push"):
        response = httpx.post(server.url + path, content=b" ")
        assert (response.status_code, response.json()) == (400, {"error": "missing request body"})
        response = httpx.post(server.url + path, json={"model": "x", "insecure": "yes"})
        assert response.status_code == 400 and "cannot unmarshal string" in response.json()["error"]
    status, items = call(server, "/api/push", {"name": f"{registry.host}/library/absent", "insecure": True})
    path = server.models / "manifests" / registry.host / "library/absent/latest"
    assert items == [{"status": "retrieving manifest"}, {"status": "couldn't retrieve manifest"},
                     {"error": f"open {path}: no such file or directory"}]
    # Without `insecure` the registry is spoken to over https, which a plain-HTTP registry cannot answer.
    status, items = call(server, "/api/pull", {"model": f"{registry.host}/library/smol"})
    assert items[0] == {"status": "pulling manifest"}
    assert items[1]["error"].startswith(f'pull model manifest: Get "https://{registry.host}/v2/library/smol/')
    # create from a missing model pulls it (over https, as Ollama), the pull's lines in the create stream.
    status, items = call(server, "/api/create", {"model": "derived", "from": f"{registry.host}/library/smol"})
    assert items[0] == {"status": "pulling manifest"} and "pull model manifest" in items[-1]["error"]


def test_cross_repository_mount_and_pruning_of_replaced_layers(source: Server, registry: Registry, pushed: str,
                                                               fresh) -> None:
    proxy = CountingProxy(registry.port)
    try:
        # A model made from the pushed one: its layers carry `from`, so the push mounts them.
        derived = f"127.0.0.1:{proxy.port}/library/derived:latest"
        status, items = call(source, "/api/create", {"model": derived, "from": pushed, "system": "Be brief."})
        assert items[-1] == {"status": "success"}, items
        _, digests = manifest_of(source, derived)
        items = push(source, derived)
        assert statuses(items) == expected_push(digests)
        assert proxy.up < 1_000_000  # the 98 MB model layer was mounted, not uploaded
        model_events = [i for i in items if i.get("digest") == digests[0]]
        assert model_events[-1]["completed"] == model_events[-1]["total"] == 98362432
        log = registry.output()
        assert "mount=" in log and "from=library%2Fsmol" in log

        # A puller that had the derived model under a name gets a version without its system
        # layer: that layer is removed.
        server = fresh()
        name = f"{registry.host}/library/prune:latest"
        copy(source, derived, name)
        assert push(source, name)[-1] == {"status": "success"}
        pull(server, name)
        _, old = manifest_of(server, name)
        copy(source, pushed, name)
        assert push(source, name)[-1] == {"status": "success"}
        items = pull(server, name)
        _, new = manifest_of(server, name)
        assert statuses(items) == expected_pull(new, prune=True)
        gone = set(old) - set(new)
        assert gone and not any(blob_file(server, d).exists() for d in gone)
    finally:
        proxy.close()


def test_htpasswd_registry_with_docker_config_credentials(registry_binary: str, tmp_path: Path, fresh) -> None:
    from tests.registry.distribution import htpasswd_line

    users = tmp_path / "htpasswd"
    users.write_text(htpasswd_line("alice", "wonderland"))
    private = start_registry(tmp_path / "basic", auth={"htpasswd": {"realm": "basic-realm", "path": str(users)}})
    try:
        import base64

        config = {"auths": {private.host: {"auth": base64.b64encode(b"alice:wonderland").decode()}}}
        server = fresh(docker_config=config, bundled=True)
        name = f"{private.host}/team/smol:latest"
        copy(server, "smollm2:135m", name)
        _, digests = manifest_of(server, name)
        assert statuses(push(server, name)) == expected_push(digests)
        delete(server, name)
        delete(server, "smollm2:135m")
        assert not list((server.models / "blobs").iterdir())
        assert statuses(pull(server, name)) == expected_pull(digests)
        assert manifest_of(server, name)[1] == digests
        generate(server, name)

        # The config is read when a registry asks: no credentials, then wrong ones.
        delete(server, name)
        config_file = server.models.parent / "docker" / "config.json"
        config_file.unlink()
        items = pull(server, name)
        assert items[-1]["error"].startswith("pull model manifest: unauthorized: access denied (no credentials for")
        config_file.write_text(json.dumps({"auths": {private.host: {"username": "alice", "password": "nope"}}}))
        assert pull(server, name)[-1] == {"error": "pull model manifest: unauthorized: access denied"}
    finally:
        private.stop()


def test_cli_pull_and_push(source: Server, registry: Registry, pushed: str, fresh) -> None:
    def cli(server: Server, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "OLLAMA_HOST": server.url.removeprefix("http://")}
        return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)

    _, digests = manifest_of(source, pushed)
    name = f"{registry.host}/cli/smol:latest"
    copy(source, "smollm2:135m", name)
    done = cli(source, "push", "--insecure", name)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "retrieving manifest" and lines[-2:] == ["pushing manifest", "success"]
    assert f"pushing {digests[0][7:19]} 100% ▕{'█' * 25}▏ 98 MB/98 MB" in lines

    server = fresh()
    done = cli(server, "pull", "--insecure", name)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "pulling manifest", *[line for line in done.stderr.splitlines() if line.startswith("pulling ") and ":" in line],
        "verifying sha256 digest", "writing manifest", "success"]
    finished = {line.split(":")[0].removeprefix("pulling ") for line in done.stderr.splitlines()
                if line.startswith("pulling ") and " 100% " in line}
    assert finished == {digest[7:19] for digest in manifest_of(server, name)[1]}
    done = cli(server, "pull", "--insecure", f"{registry.host}/cli/absent")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "Error: pull model manifest: file does not exist"


def test_cli_progress_on_a_terminal(source: Server, registry: Registry, pushed: str, fresh) -> None:
    """On a terminal, push and pull redraw their lines in place: a spinner per status, a bar per layer."""
    def terminal(server: Server, *args: str) -> str:
        env = {**os.environ, "OLLAMA_HOST": server.url, "PYTHONPATH": str(REPO)}
        child = pexpect.spawn(sys.executable, ["-m", "server.cli", *args], cwd=str(REPO), env=env, encoding="utf-8",
                              timeout=300, dimensions=(24, 100))
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0, child.before
        return child.before

    name = f"{registry.host}/cli/smol-tty:latest"
    copy(source, "smollm2:135m", name)
    shown = terminal(source, "push", "--insecure", name)
    assert "\x1b[1G" in shown and "\x1b[K" in shown and "\x1b[?25l" in shown  # redrawn in place
    assert re.search(r"pushing [0-9a-f]{12} 100% ▕█+▏  98 MB", shown), shown
    assert shown.rstrip().endswith(f"You can find your model at:\r\n\r\n\t{name}")

    shown = terminal(fresh(), "pull", "--insecure", name)
    lines = [line.split("\x1b[K")[0] for line in re.split(r"\x1b\[1G|\r?\n", shown)]
    assert "pulling manifest " in lines and "verifying sha256 digest " in lines and "success " in lines
    assert any(re.fullmatch(r"pulling [0-9a-f]{12}: 100% ▕█+▏  98 MB +", line) for line in lines), lines


def test_cli_run_pulls_a_missing_model_first(source: Server, registry: Registry, pushed: str, fresh) -> None:
    name = f"{registry.host}/cli/smol-short:latest"
    status, items = call(source, "/api/create", {"model": name, "from": "smollm2:135m",
                                                 "parameters": {"temperature": 0, "num_predict": 4}})
    assert status == 200 and items[-1] == {"status": "success"}, items
    assert push(source, name)[-1] == {"status": "success"}
    server = fresh()
    env = {**os.environ, "OLLAMA_HOST": server.url, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "server.cli", "run", "--insecure", name, "Hi"], cwd=REPO, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "pulling manifest" and lines[-1] == "success"
    assert done.stdout.strip() and done.stdout.endswith("\n\n")
    assert name in [m["name"] for m in httpx.get(f"{server.url}/api/tags", timeout=30).json()["models"]]
