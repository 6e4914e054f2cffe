"""Every architecture Ollama stores differently from llama.cpp, as a tiny model written both ways
(tests/layouts/architectures.py): llama.cpp refuses Ollama's file as it is; pollama's derived GGUF loads in
a real runner and gives the same greedy text (or embedding) as the model in llama.cpp's own layout."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.client import RunnerProcess
from engine.layouts import build_text, build_vision, plan, unsupported_reason
from engine.protocol import LoadSpec, RunnerError
from modelstore.gguf import read_gguf
from tests.engine.conftest import Aio, complete
from tests.features.projector import png
from tests.layouts.architectures import CASES, MLA, TOWERS, Case, with_tower
from tests.layouts.tiny import hyperparameters, tiny_model, tokenizer_values

PROMPT = "why is the sky blue"


@pytest.fixture(scope="module")
def aio() -> Iterator[Aio]:
    aio = Aio()
    yield aio
    aio.loop.close()


def _start(aio: Aio, path: Path, *, embedding: bool = False) -> RunnerProcess:
    return aio.run(RunnerProcess.start(LoadSpec(str(path), num_ctx=128, parallel=1, embedding=embedding),
                                       load_timeout=120), timeout=180)


def _output(aio: Aio, path: Path, case: Case) -> object:
    runner = _start(aio, path, embedding=case.embedding)
    try:
        if case.embedding:
            return aio.run(runner.embed([PROMPT])).embeddings[0]
        result = aio.run(complete(runner, PROMPT, options={"num_predict": 8}))
        assert result.done is not None
        return result.text
    finally:
        aio.run(runner.close())


@pytest.mark.parametrize("name", sorted(CASES))
def test_ollama_layout_runs_like_llama_cpp_layout(name: str, aio: Aio, tmp_path: Path) -> None:
    case = CASES[name]
    original, ollama = case.build(tmp_path)
    assert plan(ollama).text and not plan(original).text
    if case.refused:
        with pytest.raises(RunnerError):  # what llama.cpp makes of Ollama's file as it is
            aio.run(_start(aio, ollama, embedding=case.embedding).close())
    derived = tmp_path / "derived.gguf"
    build_text(ollama, derived)
    for key, value in case.derived_values.items():
        assert read_gguf(derived).kv.get(key) == value
    got = _output(aio, derived, case)
    if case.embedding:
        assert len(got) == len(_output(aio, original, case)) and all(math.isfinite(v) for v in got)
    elif case.same_output:
        assert got == _output(aio, original, case)
    else:
        assert got


@pytest.mark.parametrize("name", sorted(TOWERS))
def test_an_image_goes_through_the_projector_made_from_the_tower_inside(name: str, aio: Aio,
                                                                        tmp_path: Path) -> None:
    original, _ = CASES[name].build(tmp_path)
    ollama = with_tower(name, original, tmp_path / "with-tower.gguf")
    assert plan(ollama).vision
    build_text(ollama, tmp_path / "text.gguf")
    build_vision(ollama, tmp_path / "projector.gguf")
    spec = LoadSpec(str(tmp_path / "text.gguf"), num_ctx=2048, parallel=1,
                    projectors=[str(tmp_path / "projector.gguf")])
    runner = aio.run(RunnerProcess.start(spec, load_timeout=120), timeout=180)
    try:
        seen = aio.run(complete(runner, "why [img-0] is", images=[png(64, 64, (200, 10, 10))],
                                options={"num_predict": 4}), timeout=180)
        text = aio.run(complete(runner, "why is", options={"num_predict": 4}))
    finally:
        aio.run(runner.close())
    assert seen.done is not None and text.done is not None
    assert seen.done.prompt_eval_count >= text.done.prompt_eval_count + 8  # at least 8 image embeddings


def test_an_architecture_llama_cpp_lacks_is_refused_by_name(tmp_path: Path) -> None:
    # Llama 3.2 Vision (mllama) interleaves cross-attention layers that llama.cpp does not implement.
    reason = unsupported_reason("mllama")
    assert reason is not None and "'mllama'" in reason and "cross-attention" in reason
    path = tiny_model("llama", tmp_path / "llama.gguf", {**hyperparameters("llama"), **tokenizer_values()},
                      drop=("*.scale", "*.input_scale"))
    assert plan(path).arch == "llama" and unsupported_reason(plan(path).arch) is None


AS_IS = {"llama": {}, "qwen2": {}, "qwen3": {}, "qwen3moe": {"experts": 2}, "phi3": {}, "gemma2": {},
         "command-r": {}, "deepseek2": {"experts": 2, "width": 128, "heads": 1, "kv_heads": 1, "ffn": 192}}


@pytest.mark.parametrize("arch", sorted(AS_IS))
def test_architectures_ollama_stores_as_llama_cpp_does_load_as_they_are(arch: str, aio: Aio,
                                                                        tmp_path: Path) -> None:
    values = {**hyperparameters(arch, **AS_IS[arch]), **tokenizer_values()}
    if arch == "deepseek2":
        values |= MLA
    path = tiny_model(arch, tmp_path / f"{arch}.gguf", values, drop=("*.scale", "*.input_scale"))
    assert not plan(path).text and not plan(path).vision
    assert _output(aio, path, Case(arch, arch, lambda *_: path))
