"""all-MiniLM-L6-v2 imported from safetensors through /api/create, checked against a numpy forward pass.

The reference is BERT as sentence-transformers runs it: word + position + token-type embeddings and a
layer norm, six post-norm encoder layers (12-head attention, GELU feed-forward), mean pooling, normalised.
"""

from __future__ import annotations

import json
import math
import struct
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import Server, start_server
from tests.management.conftest import create, statuses, upload_dir

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Embeddings turn text into vectors, and similar sentences land close together!",
    "pollama imports safetensors models",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("embed-import")
    server = start_server(directory / "models", directory / "server.log")
    yield server
    server.stop()


# --- the reference --------------------------------------------------------------------------------


def _load_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    data = raw[8 + size:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32":
            continue
        start, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype=np.float32).reshape(entry["shape"]).astype(np.float64)
    return tensors


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P") or (ch.isascii() and not ch.isalnum() and not ch.isspace())


def wordpiece(text: str, vocab: dict[str, int]) -> list[int]:
    """BERT's uncased tokenizer: lower-case, strip accents, split off punctuation, greedy longest-match pieces."""
    text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
    words: list[str] = []
    for chunk in text.split():
        current = ""
        for ch in chunk:
            if _is_punctuation(ch):
                words += [current, ch] if current else [ch]
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    ids = [vocab["[CLS]"]]
    for word in words:
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start and (word[start:end] if start == 0 else "##" + word[start:end]) not in vocab:
                end -= 1
            if end == start:
                pieces = [vocab["[UNK]"]]
                break
            pieces.append(vocab[word[start:end] if start == 0 else "##" + word[start:end]])
            start = end
        ids += pieces
    return ids + [vocab["[SEP]"]]


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


_erf = np.vectorize(math.erf)


def bert_embedding(w: dict[str, np.ndarray], ids: list[int], heads: int = 12, layers: int = 6) -> np.ndarray:
    n = len(ids)
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def linear(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (linear(x, f"attention.self.{s}").reshape(n, heads, -1).transpose(1, 0, 2)
                   for s in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(1, 0, 2).reshape(n, -1)
        x = _layer_norm(x + linear(context, "attention.output.dense"),
                        w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        hidden = linear(x, "intermediate.dense")
        hidden = 0.5 * hidden * (1 + _erf(hidden / math.sqrt(2)))
        x = _layer_norm(x + linear(hidden, "output.dense"),
                        w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


@pytest.fixture(scope="module")
def reference(minilm_dir: Path) -> np.ndarray:
    weights = _load_safetensors(minilm_dir / "model.safetensors")
    vocab = json.loads((minilm_dir / "tokenizer.json").read_text())["model"]["vocab"]
    return np.stack([bert_embedding(weights, wordpiece(s, vocab)) for s in SENTENCES])


# --- the tests ------------------------------------------------------------------------------------


def _embed(server: Server, model: str) -> np.ndarray:
    r = httpx.post(f"{server.url}/api/embed", json={"model": model, "input": SENTENCES}, timeout=120)
    assert r.status_code == 200, r.text
    vectors = np.array(r.json()["embeddings"], dtype=np.float64)
    assert vectors.shape == (len(SENTENCES), 384)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def files(server: Server, minilm_dir: Path) -> dict[str, str]:
    return upload_dir(server, minilm_dir)


def test_minilm_import_matches_reference(server: Server, files: dict[str, str], reference: np.ndarray) -> None:
    assert "1_Pooling/config.json" in files  # the pooling mode comes from the nested sentence-transformers config
    events = create(server, {"model": "all-minilm", "files": files})
    assert statuses(events)[0] == "converting model"
    assert statuses(events)[-1] == "success", events
    shown = httpx.post(f"{server.url}/api/show", json={"model": "all-minilm"}).json()
    assert shown["capabilities"] == ["embedding"]
    assert shown["details"]["family"] == "bert" and shown["details"]["quantization_level"] == "F16"
    assert shown["model_info"]["bert.pooling_type"] == 1
    cosines = np.sum(_embed(server, "all-minilm") * reference, axis=1)
    assert cosines.min() >= 0.99, cosines


def test_minilm_q8_0_stays_close(server: Server, files: dict[str, str], reference: np.ndarray) -> None:
    events = create(server, {"model": "all-minilm:q8_0", "files": files, "quantize": "q8_0"})
    assert "quantizing F16 model to Q8_0" in statuses(events)
    assert statuses(events)[-1] == "success", events
    shown = httpx.post(f"{server.url}/api/show", json={"model": "all-minilm:q8_0"}).json()
    assert shown["details"]["quantization_level"] == "Q8_0"
    cosines = np.sum(_embed(server, "all-minilm:q8_0") * reference, axis=1)
    assert cosines.min() >= 0.98, cosines
