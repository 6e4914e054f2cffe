"""OLLAMA_KV_CACHE_TYPE as Ollama's era-A llm/server.go takes it: f16, q8_0 or q4_0 (any case); anything
else, or a quantized type with flash attention off, is ignored with a warning; the memory estimate uses
the type the runner really gets."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from engine.memory import effective_kv_cache_type, estimate
from engine.options import Options
from engine.scheduler import ModelSpec, Scheduler
from modelstore.gguf import read_gguf


@pytest.mark.parametrize(("requested", "flash", "expected"), [
    ("", None, "f16"), ("f16", False, "f16"), ("q8_0", None, "q8_0"), ("Q4_0", True, "q4_0"),
    ("q4_0", None, "q4_0"), (" q8_0 ", True, "q8_0"),
])
def test_supported_types(requested: str, flash: bool | None, expected: str, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert effective_kv_cache_type(requested, flash) == expected
    assert not caplog.records


@pytest.mark.parametrize("requested", ["q5_1", "f32", "bf16", "q8"])
def test_an_unknown_type_is_f16_with_a_warning(requested: str, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert effective_kv_cache_type(requested, None) == "f16"
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "kv cache type not supported" in record.getMessage() and requested in record.getMessage()


def test_a_quantized_type_needs_flash_attention(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert effective_kv_cache_type("q8_0", False) == "f16"
    [record] = caplog.records
    assert "quantized kv cache requested but flash attention disabled" in record.getMessage()


def _scheduler(kv_cache_type: str, flash_attention: bool | None) -> Scheduler:
    return Scheduler(num_parallel=1, max_loaded=1, max_queue=1, default_keep_alive=300, default_num_ctx=4096,
                     load_timeout=None, flash_attention=flash_attention, kv_cache_type=kv_cache_type)


@pytest.mark.parametrize(("requested", "flash", "effective"), [
    ("f32", None, "f16"), ("Q8_0", None, "q8_0"), ("q8_0", False, "f16"), ("q4_0", True, "q4_0"),
])
def test_the_estimate_uses_the_type_the_runner_gets(smollm2_gguf: Path, requested: str, flash: bool | None,
                                                    effective: str) -> None:
    scheduler = _scheduler(requested, flash)
    assert scheduler.kv_cache_type == effective  # what LoadSpec.kv_cache_type gets
    spec = ModelSpec(key=str(smollm2_gguf), model_path=str(smollm2_gguf), name="smol", digest="")
    opts = Options()
    plan = asyncio.run(scheduler._plan(spec, opts, scheduler._load_key(spec, opts, True)))
    info = read_gguf(str(smollm2_gguf))
    expected = estimate(info, num_ctx=4096, parallel=1, num_batch=opts.num_batch, gpus=[], kv_cache_type=effective)
    assert plan.kv == expected.kv
    if effective == "f16":
        assert plan.kv == estimate(info, num_ctx=4096, parallel=1, num_batch=opts.num_batch, gpus=[]).kv


def test_a_server_warns_and_loads_with_f16(server_factory) -> None:
    # llama.cpp cannot make a quantized V cache without flash attention: the model still loads, in f16.
    server = server_factory(env={"OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_FLASH_ATTENTION": "0"}, bundled=True)
    r = httpx.post(f"{server.url}/api/generate", json={"model": "smollm2:135m", "prompt": "hi", "stream": False,
                                                       "options": {"temperature": 0, "num_predict": 2}}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["done"] is True
    assert "WARNING" in server.output() and "quantized kv cache requested but flash attention disabled" in (
        server.output())
