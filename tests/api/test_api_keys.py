"""API keys (POLLAMA_API_KEYS): every route but the liveness probes is refused without a key, in its route
family's error shape, and served with one, through the real ollama, openai and anthropic packages."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from starlette.routing import Route

from server.app import ROUTERS
from server.envconfig import SettingsError, load_settings
from server.routes import oci
from tests.conftest import REPO, Server, free_port, start_server

FIRST_KEY = "sk-first-0123456789"
SECOND_KEY = "second key with spaces"
WRONG_KEY = "sk-not-a-key"
MODEL = "smollm2:135m"
ONE_TOKEN = {"temperature": 0, "num_predict": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("keys")
    keys = directory / "keys.txt"
    keys.write_text(f"# who has which key\n{FIRST_KEY}\n\n  {SECOND_KEY}  \n")
    server = start_server(directory / "models", directory / "server.log",
                          {"POLLAMA_API_KEYS": f"@{keys}", "OLLAMA_ORIGINS": "https://ui.example",
                           "POLLAMA_SERVE_REGISTRY": "1"}, bundled=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gguf_blob(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small file to upload as a blob (its content does not matter to the blob route)."""
    path = tmp_path_factory.mktemp("blob") / "blob.bin"
    path.write_bytes(b"not a model, just bytes")
    return path


def _ollama_client(server: Server, monkeypatch: pytest.MonkeyPatch, key: str | None) -> ollama.Client:
    # ollama-python sends OLLAMA_API_KEY as a bearer token, read when the client is made.
    if key is None:
        monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    else:
        monkeypatch.setenv("OLLAMA_API_KEY", key)
    return ollama.Client(host=server.url, timeout=120)


def _ollama_calls(server: Server, blob: Path) -> dict[str, Callable[[ollama.Client], Any]]:
    closed = f"127.0.0.1:{free_port()}/library/absent:latest"
    return {
        "list": lambda c: c.list(),
        "show": lambda c: c.show(MODEL),
        "ps": lambda c: c.ps(),
        "generate": lambda c: c.generate(MODEL, "Hi", options=ONE_TOKEN),
        "chat": lambda c: c.chat(MODEL, [{"role": "user", "content": "Hi"}], options=ONE_TOKEN),
        "embed": lambda c: c.embed(MODEL, "Hi"),
        "embeddings": lambda c: c.embeddings(MODEL, "Hi"),
        "create_blob": lambda c: c.create_blob(blob),
        "create": lambda c: c.create("keyed", from_=MODEL),
        "copy": lambda c: c.copy(MODEL, "keyed-copy"),
        "delete": lambda c: c.delete("keyed-copy"),
        "pull": lambda c: c.pull(closed, insecure=True),
        "push": lambda c: c.push(closed, insecure=True),
    }


CALL_NAMES = ["list", "show", "ps", "generate", "chat", "embed", "embeddings", "create_blob", "create", "copy",
              "delete", "pull", "push"]


@pytest.mark.parametrize("name", CALL_NAMES)
def test_ollama_client_is_refused_without_a_key(server: Server, gguf_blob: Path, monkeypatch: pytest.MonkeyPatch,
                                                name: str) -> None:
    for key in (None, WRONG_KEY):
        client = _ollama_client(server, monkeypatch, key)
        with pytest.raises(ollama.ResponseError) as refused:
            _ollama_calls(server, gguf_blob)[name](client)
        assert refused.value.status_code == 401
        expected = "missing API key" if key is None else "invalid API key"
        assert expected in refused.value.error


def test_ollama_client_is_served_with_a_key(server: Server, gguf_blob: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    client = _ollama_client(server, monkeypatch, FIRST_KEY)
    calls = _ollama_calls(server, gguf_blob)
    assert MODEL in [m.model for m in calls["list"](client).models]
    assert "completion" in calls["show"](client).capabilities
    assert calls["generate"](client).eval_count == 1
    assert calls["chat"](client).message.role == "assistant"
    assert MODEL in [m.model for m in calls["ps"](client).models]
    assert len(calls["embed"](client).embeddings[0]) == 576
    assert len(calls["embeddings"](client).embedding) == 576
    digest = "sha256:" + hashlib.sha256(gguf_blob.read_bytes()).hexdigest()
    assert calls["create_blob"](client) == digest
    assert calls["create"](client).status == "success"
    assert calls["copy"](client).status == "success"
    assert calls["delete"](client).status == "success"
    # Pull and push reach their handlers: the registry at a closed port is what fails, not the key.
    for name in ("pull", "push"):
        with pytest.raises(ollama.ResponseError) as failed:
            calls[name](client)
        assert failed.value.status_code != 401, name


def test_openai_sdk(server: Server) -> None:
    def client(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=120)

    calls: dict[str, Callable[[openai.OpenAI], Any]] = {
        "models.list": lambda c: c.models.list(),
        "models.retrieve": lambda c: c.models.retrieve(MODEL),
        "chat": lambda c: c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                                    max_tokens=1, temperature=0),
        "completions": lambda c: c.completions.create(model=MODEL, prompt="Hi", max_tokens=1, temperature=0),
        "embeddings": lambda c: c.embeddings.create(model=MODEL, input="Hi"),
        "responses": lambda c: c.responses.create(model=MODEL, input="Hi", max_output_tokens=1, temperature=0),
    }
    for name, call in calls.items():
        with pytest.raises(openai.AuthenticationError) as refused:
            call(client(WRONG_KEY))
        assert refused.value.status_code == 401, name
        assert refused.value.body["message"] == "invalid API key"  # OpenAI's envelope: {"error": {...}}
    served = client(SECOND_KEY)
    assert MODEL in [m.id for m in calls["models.list"](served).data]
    assert calls["models.retrieve"](served).id == MODEL
    assert calls["chat"](served).usage.completion_tokens == 1
    assert calls["completions"](served).usage.completion_tokens == 1
    assert len(calls["embeddings"](served).data[0].embedding) == 576
    assert calls["responses"](served).usage.output_tokens == 1


def test_anthropic_sdk(server: Server) -> None:
    def create(key: str) -> anthropic.types.Message:
        with anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0, timeout=120) as client:
            return client.messages.create(model=MODEL, max_tokens=1, extra_body={"temperature": 0},
                                          messages=[{"role": "user", "content": "Hi"}])

    with pytest.raises(anthropic.AuthenticationError) as refused:
        create(WRONG_KEY)
    assert refused.value.body["type"] == "error"  # Anthropic's envelope
    assert refused.value.body["error"] == {"type": "authentication_error", "message": "invalid API key"}
    assert create(FIRST_KEY).usage.output_tokens == 1


def _every_route() -> list[tuple[str, str]]:
    """(method, path) for every route the app has, path parameters filled in."""
    found = []
    for router in (*ROUTERS, oci.router):
        for route in router.routes:
            assert isinstance(route, Route)
            path = (route.path.replace("{digest}", "sha256:" + "0" * 64).replace("{model}", MODEL)
                    .replace("{repository:path}", "library/smollm2").replace("{reference}", "135m"))
            found += [(method, path) for method in sorted(route.methods or ())]
    return found


def test_every_route_needs_a_key_but_the_probes(server: Server) -> None:
    routes = _every_route()
    assert ("POST", "/api/chat") in routes and ("POST", "/v1/messages") in routes
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for method, path in routes:
            answer = http.request(method, path)
            if path in ("/", "/api/version", "/api/ready") and method in ("GET", "HEAD"):
                assert answer.status_code == 200, (method, path)
                continue
            assert answer.status_code == 401, (method, path)
            registry = path.startswith("/v2/")
            assert answer.headers["www-authenticate"] == ('Basic realm="pollama"' if registry else "Bearer")
            if method == "HEAD":
                continue
            body = answer.json()
            if registry:
                assert body["errors"][0]["code"] == "UNAUTHORIZED", path
            elif path == "/v1/messages":
                assert body["error"]["type"] == "authentication_error", path
            elif path.startswith("/v1/"):
                assert body["error"]["message"].startswith("missing API key"), path
            else:
                assert body["error"].startswith("missing API key"), path


@pytest.mark.parametrize("headers", [
    {"authorization": f"Bearer {FIRST_KEY}"}, {"authorization": f"bearer {SECOND_KEY}"}, {"x-api-key": FIRST_KEY},
])
def test_each_way_of_sending_the_key(server: Server, headers: dict[str, str]) -> None:
    assert httpx.get(server.url + "/api/tags", headers=headers).status_code == 200


def test_registry_clients_send_the_key_as_a_basic_password(server: Server) -> None:
    manifest = "/v2/library/smollm2/manifests/135m"
    assert httpx.get(server.url + manifest, auth=("anyone", FIRST_KEY)).status_code == 200
    assert httpx.get(server.url + manifest, auth=(FIRST_KEY, "")).status_code == 401


@pytest.mark.parametrize("headers", [
    {"authorization": FIRST_KEY},  # no scheme
    {"authorization": f"Basic {FIRST_KEY}"},
    {"authorization": f"Bearer {FIRST_KEY}x"},
    {"x-api-key": FIRST_KEY[:-1]},
    {"authorization": "Bearer # who has which key"},  # a comment line of the keys file is no key
    {"authorization": "Basic !!!"},
])
def test_near_misses_are_refused(server: Server, headers: dict[str, str]) -> None:
    assert httpx.get(server.url + "/api/tags", headers=headers).status_code == 401


def test_cors_preflight_needs_no_key_and_refusals_carry_cors(server: Server) -> None:
    origin = {"origin": "https://ui.example"}
    preflight = httpx.options(server.url + "/api/chat",
                              headers={**origin, "access-control-request-method": "POST",
                                       "access-control-request-headers": "authorization,content-type"})
    assert preflight.status_code == 204
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    refused = httpx.post(server.url + "/api/chat", headers=origin, json={})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "https://ui.example"


def test_keys_are_never_logged(server: Server) -> None:
    for key in (FIRST_KEY, WRONG_KEY):
        httpx.post(server.url + "/api/show", headers={"x-api-key": key}, json={"model": MODEL})
    deadline = time.monotonic() + 30
    while "POST /api/show 401" not in (log := server.output()):  # each request's line follows its answer
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    assert FIRST_KEY not in log and SECOND_KEY not in log and WRONG_KEY not in log


def test_key_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POLLAMA_API_KEYS", " k-one , k-two,,k-three ")
    settings = load_settings()
    assert settings.api_keys == ("k-one", "k-two", "k-three")
    assert "k-one" not in repr(settings)
    monkeypatch.setenv("POLLAMA_API_KEYS", "")
    assert load_settings().api_keys == ()
    monkeypatch.setenv("POLLAMA_API_KEYS", f"@{tmp_path / 'absent'}")
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings()
    (tmp_path / "empty").write_text("# nobody yet\n")
    monkeypatch.setenv("POLLAMA_API_KEYS", f"@{tmp_path / 'empty'}")
    with pytest.raises(SettingsError, match="no keys"):
        load_settings()


def test_an_unreadable_keys_file_stops_the_server(tmp_path: Path) -> None:
    env = {**os.environ, "POLLAMA_API_KEYS": f"@{tmp_path / 'absent'}", "OLLAMA_MODELS": str(tmp_path),
           "OLLAMA_HOST": f"127.0.0.1:{free_port()}"}
    done = subprocess.run([sys.executable, "-m", "server.cli", "serve"], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "POLLAMA_API_KEYS: cannot read" in done.stderr
