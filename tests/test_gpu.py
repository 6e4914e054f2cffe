"""The GPU path, where there is one: an NVIDIA GPU that NVML sees and a llama.cpp built with CUDA (the venv
bench/gpu.sh makes, which runs this file before its comparison; or the CUDA image). Skipped anywhere else.

The bundled model fits any GPU, so by default every layer goes there: /api/ps counts all of it in VRAM and the
GPU's own free memory drops by at least the weights while it is loaded. `num_gpu` 0 loads it again on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from engine.gpu import llama_gpu_offload, nvidia_gpus
from tests.conftest import Server

pytestmark = pytest.mark.skipif(not (llama_gpu_offload() and nvidia_gpus()),
                                reason="no NVIDIA GPU here, or this llama.cpp has no CUDA backend")

MODEL = "smollm2:135m"


def generate(server: Server, options: dict) -> dict:
    body = {"model": MODEL, "prompt": "Write a long story about the sea.", "stream": False,
            "options": {"temperature": 0, "num_predict": 16, **options}}
    response = httpx.post(server.url + "/api/generate", json=body, timeout=300)
    assert response.status_code == 200, response.text
    return response.json()


def loaded(server: Server) -> dict:
    [model] = httpx.get(server.url + "/api/ps", timeout=10).json()["models"]
    return model


def test_every_layer_goes_to_the_gpu_by_default(server_factory: Callable[..., Server], smollm2_gguf: Path) -> None:
    free_before = sum(gpu.free for gpu in nvidia_gpus())
    server = server_factory(bundled=True)

    answer = generate(server, {})
    assert answer["response"] and answer["eval_count"] == 16
    model = loaded(server)
    assert model["size_vram"] == model["size"] > 0
    weights = smollm2_gguf.stat().st_size
    assert free_before - sum(gpu.free for gpu in nvidia_gpus()) >= weights

    answer = generate(server, {"num_gpu": 0})
    assert answer["response"] and answer["eval_count"] == 16
    assert loaded(server)["size_vram"] == 0
