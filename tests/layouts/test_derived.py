"""Derived GGUFs through a real server: a tiny Gemma 3 in Ollama's layout (vision tower inside) is served
from files pollama derives under `derived/`, made once, checked, rebuilt when missing or wrong, removed
with the model, left alone by the start-up prune, and the blob is never changed."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from gguf import GGUFValueType

from modelstore.derived import DerivedStore
from modelstore.gguf import read_gguf
from tests.conftest import Server, start_server
from tests.features.projector import png, write_projector
from tests.layouts.gemma3 import ollama_gemma3
from tests.layouts.ollama import ollama_copy
from tests.layouts.serving import create, upload
from tests.layouts.tiny import GEMMA3_OPTIONAL, hyperparameters, tiny_model, tokenizer_values

FAST = {"temperature": 0, "num_predict": 4}


def tiny_gemma3(path: Path) -> Path:
    values = {**hyperparameters("gemma3", layers=2), **tokenizer_values(),
              "gemma3.attention.sliding_window": (64, GGUFValueType.UINT32)}
    return tiny_model("gemma3", path, values, drop=GEMMA3_OPTIONAL)


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("gemma3")
    plain = tiny_gemma3(directory / "plain.gguf")
    return {"vision": ollama_gemma3(plain, directory / "vision.gguf"),
            "text": ollama_gemma3(plain, directory / "text.gguf", vision=False)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("derived")
    server = start_server(directory / "models", directory / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def model(http: httpx.Client, ggufs: dict[str, Path]) -> str:
    create(http, "g", ggufs["vision"])
    return "g"


def generate(http: httpx.Client, model: str, **body: object) -> dict:
    r = http.post("/api/generate", json={"model": model, "prompt": "why is the sky blue", "stream": False,
                                         "options": FAST, **body})
    assert r.status_code == 200, r.text
    return r.json()


def unload(http: httpx.Client, model: str) -> None:
    assert http.post("/api/generate", json={"model": model, "keep_alive": 0}).status_code == 200


def derived(server: Server) -> dict[str, Path]:
    """kind ("text", "vision") → derived GGUF."""
    files = sorted((server.models / "derived").glob("sha256-*.gguf"))
    return {path.name.split(".")[1].split("-")[0]: path for path in files}


def test_served_from_derived_files_without_changing_the_blob(http: httpx.Client, server: Server, model: str,
                                                             ggufs: dict[str, Path]) -> None:
    digest = upload(http, ggufs["vision"])
    assert generate(http, model)["response"]
    blob = server.models / "blobs" / digest.replace(":", "-")
    assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == digest
    files = derived(server)
    assert set(files) == {"text", "vision"}
    text, vision = read_gguf(files["text"]), read_gguf(files["vision"])
    assert not [t.name for t in text.tensors if t.name.startswith(("v.", "mm."))]
    assert len(text.kv["tokenizer.ggml.tokens"]) == text.kv["gemma3.vocab_size"]  # the image token is cut
    assert vision.kv["general.architecture"] == "clip" and vision.kv["clip.projector_type"] == "gemma3"
    for path in files.values():
        record = json.loads(path.with_suffix(".json").read_text())
        assert record["source"] == digest and record["size"] == path.stat().st_size
        assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_image_goes_through_the_derived_projector(http: httpx.Client, model: str) -> None:
    show = http.post("/api/show", json={"model": model}).json()
    assert "vision" in show["capabilities"]
    image = base64.b64encode(png(8, 8, (200, 30, 30))).decode()
    with_image = generate(http, model, images=[image])
    without = generate(http, model)
    # The image's embeddings take positions in the prompt: 4 pooled patches, plus its start/end markers.
    assert with_image["prompt_eval_count"] >= without["prompt_eval_count"] + 4


def test_made_once(http: httpx.Client, server: Server, model: str) -> None:
    generate(http, model)
    before = {kind: path.stat() for kind, path in derived(server).items()}
    unload(http, model)
    generate(http, model)
    after = {kind: path.stat() for kind, path in derived(server).items()}
    assert {k: (s.st_ino, s.st_mtime_ns) for k, s in before.items()} == \
        {k: (s.st_ino, s.st_mtime_ns) for k, s in after.items()}


def test_rebuilt_when_missing_or_changed(http: httpx.Client, server: Server, model: str) -> None:
    expected = generate(http, model)["response"]
    files = derived(server)
    digests = {kind: hashlib.sha256(path.read_bytes()).hexdigest() for kind, path in files.items()}
    unload(http, model)
    files["vision"].unlink()
    with open(files["text"], "r+b") as f:  # same size, one byte changed near the end (tensor data)
        f.seek(-100, 2)
        byte = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert generate(http, model)["response"] == expected
    rebuilt = derived(server)
    assert {kind: hashlib.sha256(path.read_bytes()).hexdigest() for kind, path in rebuilt.items()} == digests
    assert "does not match its record" in server.output()


def test_concurrent_first_loads_derive_once(http: httpx.Client, server: Server, ggufs: dict[str, Path]) -> None:
    create(http, "t1", ggufs["text"])
    create(http, "t2", ggufs["text"])  # same blob, another name: one runner, one derived file
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda name: generate(http, name), ["t1", "t2", "t1", "t2"]))
    assert all(r["response"] for r in results)
    digest = upload(http, ggufs["text"]).removeprefix("sha256:")
    assert server.output().count(f"derived sha256-{digest}.text-") == 1


def test_prune_at_start_keeps_derived_files_of_stored_models(server: Server, model: str,
                                                              tmp_path: Path) -> None:
    files = derived(server)
    restarted = start_server(server.models, tmp_path / "restart.log")
    try:
        assert httpx.get(restarted.url + "/api/tags").status_code == 200
    finally:
        restarted.stop()
    assert all(path.exists() for path in files.values())


def test_removed_with_the_model(http: httpx.Client, server: Server, ggufs: dict[str, Path]) -> None:
    create(http, "doomed", ggufs["text"])
    create(http, "doomed-too", ggufs["text"])
    generate(http, "doomed")
    digest = upload(http, ggufs["text"]).removeprefix("sha256:")

    def files() -> list[Path]:
        return list((server.models / "derived").glob(f"sha256-{digest}.*"))

    assert files()
    http.request("DELETE", "/api/delete", json={"model": "doomed"})
    assert files()  # the blob is still another model's
    for name in ("doomed-too", "t1", "t2"):  # every model of this blob (t1 and t2 may come from another test)
        http.request("DELETE", "/api/delete", json={"model": name})
    assert not files()


def test_one_build_at_a_time(tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    source = blobs / ("sha256-" + "ab" * 32)
    source.write_bytes(b"source")
    store = DerivedStore(tmp_path, blobs)
    builds: list[int] = []
    lock = threading.Lock()

    def build(_source: Path, destination: Path) -> None:
        with lock:
            builds.append(1)
        destination.write_bytes(b"derived")

    with ThreadPoolExecutor(6) as pool:
        paths = list(pool.map(lambda _: store.ensure(source, "text", "1", build), range(6)))
    assert len(builds) == 1 and len(set(paths)) == 1 and paths[0].read_bytes() == b"derived"
    source.unlink()
    assert store.sweep() == [paths[0].name] and not list((tmp_path / "derived").glob("sha256-*"))


def test_a_llava_projector_without_a_type_gets_mlp(http: httpx.Client, server: Server, smollm2_gguf: Path,
                                                   tmp_path: Path) -> None:
    # Old LLaVA/BakLLaVA projector blobs carry no clip.projector_type; clip.cpp needs one (`mlp` for them).
    typed = write_projector(tmp_path / "typed.gguf")
    untyped = ollama_copy(typed, tmp_path / "mmproj.gguf", drop_keys=("clip.projector_type",))
    files = {"model.gguf": upload(http, smollm2_gguf), "mmproj.gguf": upload(http, untyped)}
    r = http.post("/api/create", json={"model": "llava-like", "files": files, "stream": False})
    assert r.status_code == 200, r.text
    image = base64.b64encode(png(8, 8, (0, 0, 0))).decode()
    assert generate(http, "llava-like", images=[image])["response"] is not None
    made = read_gguf(next((server.models / "derived").glob("*.projector-*.gguf")))
    assert made.kv["clip.projector_type"] == "mlp"
