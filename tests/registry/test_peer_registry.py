"""A pollama serving its store under /v2/ (POLLAMA_SERVE_REGISTRY=1): peers, Ollama's client shape, OCI tools."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.apt import ensure_command
from tests.conftest import Server, start_server
from tests.registry.distribution import start_registry
from tests.registry.helpers import generate, manifest_of, pull, server_env, statuses

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Server:
    directory = tmp_path_factory.mktemp("peer")
    server = start_server(directory / "models", directory / "server.log",
                          server_env(directory, POLLAMA_SERVE_REGISTRY="1"), bundled=True)
    yield server
    server.stop()


def host_of(server: Server) -> str:
    return server.url.removeprefix("http://")


def stored_manifest(server: Server) -> tuple[bytes, list[str]]:
    return manifest_of(server, "registry.ollama.ai/library/smollm2:135m")


def test_the_registry_is_off_unless_asked_for(server_factory) -> None:
    plain = server_factory()
    assert httpx.get(plain.url + "/v2/").status_code == 404


def test_manifests_by_tag_and_by_digest(peer: Server) -> None:
    raw, _ = stored_manifest(peer)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    base = httpx.get(peer.url + "/v2/")
    assert base.status_code == 200 and base.headers["docker-distribution-api-version"] == "registry/2.0"
    for path in ("library/smollm2/manifests/135m", "smollm2/manifests/135m", f"library/smollm2/manifests/{digest}",
                 "registry.ollama.ai/library/smollm2/manifests/135m", "Library/SmolLM2/manifests/135M"):
        response = httpx.get(f"{peer.url}/v2/{path}", headers={"Accept": MANIFEST_TYPE})
        assert response.status_code == 200, path
        assert response.content == raw
        assert response.headers["docker-content-digest"] == digest
        assert response.headers["content-type"] == MANIFEST_TYPE
    head = httpx.head(f"{peer.url}/v2/library/smollm2/manifests/135m")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(raw)) and not head.content
    assert httpx.get(f"{peer.url}/v2/library/smollm2/tags/list").json() == {"name": "library/smollm2",
                                                                           "tags": ["135m"]}
    assert "library/smollm2" in httpx.get(f"{peer.url}/v2/_catalog").json()["repositories"]


def test_blobs_whole_and_by_range(peer: Server) -> None:
    _, digests = stored_manifest(peer)
    path = peer.models / "blobs" / digests[0].replace(":", "-")
    data = path.read_bytes()
    url = f"{peer.url}/v2/library/smollm2/blobs/{digests[0]}"
    head = httpx.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)
    assert head.headers["docker-content-digest"] == digests[0]
    # Ollama's client reads the blob URL from Location, on a 200 as on a redirect.
    assert head.headers["location"] == url
    part = httpx.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    with httpx.stream("GET", url) as whole:
        digest = hashlib.sha256()
        for chunk in whole.iter_bytes():
            digest.update(chunk)
    assert "sha256:" + digest.hexdigest() == digests[0]


def test_unknown_things_get_registry_errors(peer: Server) -> None:
    _, digests = stored_manifest(peer)
    cases = {
        "library/nothing/manifests/latest": "MANIFEST_UNKNOWN",
        "library/smollm2/manifests/7b": "MANIFEST_UNKNOWN",
        "library/smollm2/manifests/sha256:" + "0" * 64: "MANIFEST_UNKNOWN",
        "library/smollm2/blobs/sha256:" + "0" * 64: "BLOB_UNKNOWN",
        "library/smollm2/blobs/not-a-digest": "BLOB_UNKNOWN",
        # a blob is served only under a repository whose manifests reference it
        f"library/other/blobs/{digests[0]}": "BLOB_UNKNOWN",
        "library/nothing/tags/list": "NAME_UNKNOWN",
    }
    for path, code in cases.items():
        response = httpx.get(f"{peer.url}/v2/{path}")
        assert response.status_code == 404, path
        assert response.json()["errors"][0]["code"] == code, path


def test_a_replica_pulls_a_model_from_its_peer_and_serves_it(peer: Server, server_factory, tmp_path: Path) -> None:
    replica = server_factory(env=server_env(tmp_path, POLLAMA_SERVE_REGISTRY="1"))
    name = f"{host_of(peer)}/library/smollm2:135m"
    items = pull(replica, name)
    assert statuses(items)[0] == "pulling manifest" and items[-1] == {"status": "success"}, items
    raw, digests = stored_manifest(peer)
    copied, copied_digests = manifest_of(replica, name)
    assert copied == raw and copied_digests == digests
    generate(replica, name)
    # the replica serves it on in turn, under the peer's address it was pulled from
    third = server_factory()
    items = pull(third, f"{host_of(replica)}/library/smollm2:135m")
    assert items[-1] == {"status": "success"}, items


def test_a_generic_oci_tool_reads_the_manifest(peer: Server) -> None:
    skopeo = ensure_command("skopeo")
    if skopeo is None:
        pytest.skip("skopeo is not installed and cannot be installed here")
    source = f"docker://{host_of(peer)}/library/smollm2:135m"
    inspect = subprocess.run([skopeo, "inspect", "--raw", "--tls-verify=false", source],
                             capture_output=True, text=True, timeout=120)
    assert inspect.returncode == 0, inspect.stderr
    raw, _ = stored_manifest(peer)
    assert json.loads(inspect.stdout) == json.loads(raw)


def test_a_docker_registry_mirrors_the_peer(peer: Server, registry_binary: str, server_factory,
                                            tmp_path: Path) -> None:
    """Docker Distribution as a pull-through cache in front of a pollama: models spread through any registry."""
    mirror = start_registry(tmp_path / "mirror", mirror_of=peer.url)
    try:
        replica = server_factory(env=server_env(tmp_path))
        items = pull(replica, f"{mirror.host}/library/smollm2:135m")
        assert items[-1] == {"status": "success"}, items
        raw, digests = stored_manifest(peer)
        assert manifest_of(replica, f"{mirror.host}/library/smollm2:135m") == (raw, digests)
        for digest in digests:  # the mirror kept its own copy
            assert mirror.blob_data(digest).is_file()
    finally:
        mirror.stop()


def test_a_keyed_peer_serves_pulls_that_carry_its_key_in_docker_config(fresh) -> None:
    keyed = fresh(bundled=True, POLLAMA_SERVE_REGISTRY="1", POLLAMA_API_KEYS="team-key")
    name = f"{host_of(keyed)}/library/smollm2:135m"
    refused = pull(fresh(), name)
    assert "error" in refused[-1], refused
    auth = base64.b64encode(b"pollama:team-key").decode()
    replica = fresh(docker_config={"auths": {host_of(keyed): {"auth": auth}}})
    items = pull(replica, name)
    assert items[-1] == {"status": "success"}, items
