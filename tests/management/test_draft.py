"""Draft models for speculative decoding, as Ollama stores them: `draft_files` in /api/create (Modelfile DRAFT)
become a draft layer and the config's `draft`; a model with one generates exactly what it does without, and
`draft_num_predict` sets how many tokens it drafts (0: none)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gguf import GGUFValueType

from modelstore.manifest import MEDIA_DRAFT, MEDIA_MODEL
from tests.conftest import Server, start_server
from tests.layouts.tiny import hyperparameters, tiny_model, tokenizer_values
from tests.management.conftest import create, statuses, store_snapshot, upload
from tests.management.test_cli_modelfile import pollama

OPTIONS = {"temperature": 0, "num_predict": 24}
DRAFT_CONFIG = {"model_format": "gguf", "architecture": "llama"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("draft")
    server = start_server(directory / "models", directory / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def smol(server: Server, smollm2_gguf: Path) -> str:
    return upload(server, smollm2_gguf)


@pytest.fixture(scope="module")
def drafted(server: Server, smol: str) -> list[dict]:
    """"plain" (SmolLM2) and "drafted" (SmolLM2 with itself as its draft); the events of creating the latter."""
    assert create(server, {"model": "plain", "files": {"model.gguf": smol}})[-1] == {"status": "success"}
    return create(server, {"model": "drafted", "files": {"model.gguf": smol}, "draft_files": {"draft.gguf": smol}})


@pytest.fixture(scope="module")
def tiny_f32(server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An unquantized llama with a vocabulary of its own (not SmolLM2's)."""
    path = tiny_model("llama", tmp_path_factory.mktemp("tiny") / "tiny.gguf",
                      {**hyperparameters("llama"), **tokenizer_values(),
                       "general.file_type": (0, GGUFValueType.UINT32)})  # all F32
    return upload(server, path)


def _manifest(server: Server, name: str) -> dict:
    return json.loads((server.models / "manifests/registry.ollama.ai/library" / name / "latest").read_text())


def _config(server: Server, manifest: dict) -> dict:
    blob = server.models / "blobs" / manifest["config"]["digest"].replace(":", "-")
    return json.loads(blob.read_text())


def _draft_layers(server: Server, name: str) -> list[dict]:
    return [layer for layer in _manifest(server, name)["layers"] if layer["mediaType"] == MEDIA_DRAFT]


def _generate(server: Server, model: str, **options: object) -> dict:
    r = httpx.post(f"{server.url}/api/generate", json={"model": model, "prompt": "Name three rivers.",
                                                       "stream": False, "options": {**OPTIONS, **options}},
                   timeout=300)
    assert r.status_code == 200, r.text
    return r.json()


def _drafting_requests(server: Server) -> int:
    """Requests whose runner drafted (the daemon's log reports how many draft tokens the model accepted)."""
    return server.output().count("speculative decoding: ")


def test_a_draft_is_stored_as_ollama_stores_it_and_changes_no_output(server: Server, smol: str,
                                                                     drafted: list[dict]) -> None:
    assert drafted[-1] == {"status": "success"} and statuses(drafted).count("parsing GGUF") == 2
    manifest = _manifest(server, "drafted")
    media = [layer["mediaType"] for layer in manifest["layers"]]
    assert media.index(MEDIA_DRAFT) > media.index(MEDIA_MODEL)
    assert [layer["digest"] for layer in _draft_layers(server, "drafted")] == [smol]
    assert _config(server, manifest)["draft"] == DRAFT_CONFIG
    modelfile = httpx.post(f"{server.url}/api/show", json={"model": "drafted"}).json()["modelfile"]
    assert "\nDRAFT " in modelfile

    before = _drafting_requests(server)
    assert _generate(server, "drafted")["response"] == _generate(server, "plain")["response"]
    assert _drafting_requests(server) == before + 1  # the drafted model's request, not the plain one's

    # a model made from it keeps the draft
    assert create(server, {"model": "derived", "from": "drafted", "system": "Be brief."})[-1] == {"status": "success"}
    assert [layer["digest"] for layer in _draft_layers(server, "derived")] == [smol]
    assert _config(server, _manifest(server, "derived"))["draft"] == DRAFT_CONFIG


def test_draft_num_predict(server: Server, drafted: list[dict]) -> None:
    _generate(server, "plain")
    plain_runner = server.runner_pids()
    # without a draft model the option changes nothing, not even the runner
    _generate(server, "plain", draft_num_predict=8)
    assert server.runner_pids() == plain_runner
    expected = _generate(server, "plain")["response"]

    before = _drafting_requests(server)
    assert _generate(server, "drafted", draft_num_predict=0)["response"] == expected
    assert _drafting_requests(server) == before  # 0 turns speculative decoding off
    assert _generate(server, "drafted", draft_num_predict=2)["response"] == expected
    assert _drafting_requests(server) == before + 1


def test_a_modelfile_draft_goes_through_the_cli(server: Server, smol: str, smollm2_gguf: Path, drafted: list[dict],
                                                tmp_path: Path) -> None:
    (tmp_path / "draft.gguf").symlink_to(smollm2_gguf)
    (tmp_path / "Modelfile").write_text("FROM plain\nDRAFT ./draft.gguf\nPARAMETER draft_num_predict 6\n")
    result = pollama(server, "create", "from-modelfile", "-f", str(tmp_path / "Modelfile"))
    assert result.returncode == 0, result.stderr
    assert [layer["digest"] for layer in _draft_layers(server, "from-modelfile")] == [smol]
    assert _config(server, _manifest(server, "from-modelfile"))["draft"] == DRAFT_CONFIG
    shown = pollama(server, "show", "from-modelfile", "--modelfile")
    assert "\nDRAFT " in shown.stdout and "PARAMETER draft_num_predict 6" in shown.stdout


def test_a_draft_is_quantized_when_asked(server: Server, smol: str, tiny_f32: str) -> None:
    events = create(server, {"model": "tiny-draft", "files": {"model.gguf": smol},
                             "draft_files": {"draft.gguf": tiny_f32}, "draft_quantize": "q8_0"})
    assert events[-1] == {"status": "success"}, events
    assert "quantizing F32 model to Q8_0" in statuses(events)
    [draft] = _draft_layers(server, "tiny-draft")
    assert draft["digest"] != tiny_f32
    # a draft that does not share the model's vocabulary cannot draft for it: the load says so
    r = httpx.post(f"{server.url}/api/generate", json={"model": "tiny-draft", "prompt": "hi", "stream": False,
                                                       "options": OPTIONS}, timeout=300)
    assert r.status_code == 500 and "the draft model's vocabulary does not match the model's" in r.json()["error"]


@pytest.mark.parametrize(("body", "error"), [
    ({"draft_quantize": "q8_0"}, "--draft-quantize requires a DRAFT model"),
    ({"draft_files": {"draft.gguf": ""}}, "invalid digest format"),
    ({"draft_files": {"../draft.gguf": "sha256:" + "ab" * 32}}, "file path must be relative"),
    ({"draft_files": {"draft.gguf": "SMOL"}, "draft_quantize": "q8_0"},
     "draft quantization requires an unquantized draft model, got Q4_1"),
])
def test_bad_drafts_are_refused(server: Server, smol: str, body: dict, error: str) -> None:
    body = json.loads(json.dumps(body).replace("SMOL", smol))
    before = store_snapshot(server)
    r = httpx.post(f"{server.url}/api/create", json={"model": "bad", "files": {"model.gguf": smol}, "stream": False,
                                                     **body}, timeout=120)
    assert (r.status_code, r.json()) == (400, {"error": error})
    assert store_snapshot(server) == before
