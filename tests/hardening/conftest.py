"""Fixtures shared by the hardening tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.runner.llama import LlamaModel, init_backend


@pytest.fixture(scope="module")
def model(smollm2_gguf: Path) -> Iterator[LlamaModel]:
    init_backend()
    loaded = LlamaModel(str(smollm2_gguf), n_gpu_layers=0, main_gpu=0, use_mmap=None)
    yield loaded
    loaded.close()
