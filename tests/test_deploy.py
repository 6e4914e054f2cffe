"""deploy/kubernetes: the manifests validate offline against Kubernetes' schemas, the CUDA variant asks for a
GPU, the probes name the server's real routes, and the init step's script really pulls from a peer."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import httpx
import jsonpatch
import kubernetes_validate
import pytest
import yaml

from server.lifecycle import READY_PATH
from tests.conftest import REPO, Server, start_server

KUBERNETES = REPO / "deploy" / "kubernetes"


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization(name: str) -> dict:
    return load(KUBERNETES / name / "kustomization.yaml")[0]


def base_resources() -> list[dict]:
    return [doc for resource in kustomization("base")["resources"] for doc in load(KUBERNETES / "base" / resource)]


def cuda_resources() -> list[dict]:
    """The CUDA overlay applied as kustomize applies it: the image tag, then the JSON patches on their target."""
    overlay = kustomization("cuda")
    assert overlay["resources"] == ["../base"]
    resources = copy.deepcopy(base_resources())
    for resource in resources:
        for container in resource.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for image in overlay["images"]:
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image['name']}:{image['newTag']}"
    for patch in overlay["patches"]:
        target = patch["target"]
        for index, resource in enumerate(resources):
            if resource["kind"] == target["kind"] and resource["metadata"]["name"] == target["name"]:
                resources[index] = jsonpatch.apply_patch(resource, yaml.safe_load(patch["patch"]))
    return resources


def statefulset(resources: list[dict]) -> dict:
    return next(r for r in resources if r["kind"] == "StatefulSet")


@pytest.mark.parametrize("variant", ["base", "cuda"])
def test_the_manifests_validate_against_kubernetes_schemas(variant: str) -> None:
    resources = base_resources() if variant == "base" else cuda_resources()
    assert {r["kind"] for r in resources} == {"ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget"}
    version = kubernetes_validate.latest_version()
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)


def test_the_cuda_variant_asks_for_a_gpu_and_the_cuda_image() -> None:
    container = statefulset(cuda_resources())["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "pollama:cuda"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in statefulset(base_resources())["spec"]["template"]["spec"]["containers"][0][
        "resources"]["limits"]


def test_probes_drain_and_volume_fit_the_server() -> None:
    spec = statefulset(base_resources())["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == READY_PATH
    assert container["livenessProbe"]["httpGet"]["path"] == "/"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["POLLAMA_SERVE_REGISTRY"] == "1"
    config = next(r for r in base_resources() if r["kind"] == "ConfigMap")["data"]
    drain = int(config["POLLAMA_SHUTDOWN_TIMEOUT"].removesuffix("s"))
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > drain + pause
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mount["models"] == env["OLLAMA_MODELS"]
    assert spec["volumeClaimTemplates"][0]["metadata"]["name"] == "models"


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Server:
    directory = tmp_path_factory.mktemp("peer")
    server = start_server(directory / "models", directory / "server.log", {"POLLAMA_SERVE_REGISTRY": "1"},
                          bundled=True)
    yield server
    server.stop()


def run_init_script(models: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    config = next(r for r in base_resources() if r["kind"] == "ConfigMap")["data"]
    script = models.parent / "pull-models.sh"
    script.write_text(config["pull-models.sh"])
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                   "OLLAMA_MODELS": str(models), "HOME": str(models.parent), **env}
    return subprocess.run(["/bin/sh", str(script)], env=environment, capture_output=True, text=True, timeout=600)


def test_the_init_step_copies_models_from_a_peer(peer: Server, tmp_path: Path) -> None:
    models = tmp_path / "models"
    done = run_init_script(models, {"POLLAMA_PULL": "smollm2:135m",
                                    "POLLAMA_PULL_PEER": peer.url.removeprefix("http://")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smollm2:135m: copied from" in done.stdout
    manifests = sorted(p.relative_to(models / "manifests").as_posix() for p in (models / "manifests").rglob("*")
                       if p.is_file())
    assert manifests == ["registry.ollama.ai/library/smollm2/135m"]  # the peer-named copy is gone
    assert (models / "manifests" / manifests[0]).read_bytes() == \
        (peer.models / "manifests" / manifests[0]).read_bytes()
    # a second run finds the model on the volume and pulls nothing
    again = run_init_script(models, {"POLLAMA_PULL": "smollm2:135m",
                                     "POLLAMA_PULL_PEER": peer.url.removeprefix("http://")})
    assert again.returncode == 0 and "already on the volume" in again.stdout
    server = start_server(models, tmp_path / "server.log")
    try:
        answer = httpx.post(server.url + "/api/generate", timeout=300, json={
            "model": "smollm2:135m", "prompt": "Hi", "stream": False, "options": {"num_predict": 3}})
        assert answer.status_code == 200 and answer.json()["done"] is True
    finally:
        server.stop()


def test_the_init_step_fails_when_a_model_cannot_be_had(peer: Server, tmp_path: Path) -> None:
    done = run_init_script(tmp_path / "models", {"POLLAMA_PULL": "nothing-like-it:7b",
                                                 "POLLAMA_PULL_PEER": peer.url.removeprefix("http://"),
                                                 "POLLAMA_REGISTRY_RETRY_DELAY": "0.01"})
    assert done.returncode != 0
