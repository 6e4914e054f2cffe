"""Safetensors import: a small Llama written by the test converts, quantizes, loads and generates."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelstore.gguf import read_gguf
from tests.conftest import Server, start_server
from tests.management.conftest import create, referenced_blobs, statuses, store_snapshot, upload_dir
from tests.management.tiny import write_safetensors, write_tiny_llama

ZERO_DIGEST = "0" * 19


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("convert")
    server = start_server(directory / "models", directory / "server.log")
    yield server
    server.stop()


def _generate(server: Server, model: str) -> dict:
    r = httpx.post(f"{server.url}/api/generate", json={
        "model": model, "prompt": "the", "raw": True, "stream": False,
        "options": {"num_predict": 6, "temperature": 0, "seed": 1}}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_llama_converts_quantizes_loads_and_generates(server: Server, tmp_path: Path) -> None:
    files = upload_dir(server, write_tiny_llama(tmp_path / "tiny"))
    events = create(server, {"model": "tiny-llama", "files": files, "quantize": "q4_K_M"})
    seen = statuses(events)
    assert seen[0] == "converting model", events
    quantizing = [e for e in events if e.get("status") == "quantizing F16 model to Q4_K_M"]
    assert quantizing and all(e["digest"] == ZERO_DIGEST for e in quantizing)
    assert quantizing[-1]["completed"] == quantizing[-1]["total"] > 0
    after = seen[seen.index("verifying conversion") + 1:]
    assert after[0].startswith("creating new layer sha256:")
    assert "using autodetected template chatml" in after  # from tokenizer_config.json's chat_template
    assert after[-2:] == ["writing manifest", "success"]

    shown = httpx.post(f"{server.url}/api/show", json={"model": "tiny-llama"}).json()
    assert shown["details"]["format"] == "gguf"
    assert shown["details"]["family"] == "llama"
    assert shown["details"]["quantization_level"] == "Q4_K_M"
    assert shown["model_info"]["general.file_type"] == 15
    assert shown["model_info"]["llama.attention.head_count_kv"] == 2
    types = {t["name"]: t["type"] for t in shown["tensors"]}
    assert types["blk.0.attn_q.weight"] == "Q4_K" and types["blk.0.attn_norm.weight"] == "F32"
    assert shown["capabilities"] == ["completion"]

    reply = _generate(server, "tiny-llama")
    assert reply["done"] is True and reply["eval_count"] > 0

    # Only what manifests reference (plus the uploads) is left: the F16 conversion was not kept.
    blobs, _ = store_snapshot(server)
    uploads = {d.replace(":", "-") for d in files.values()}
    assert blobs == referenced_blobs(server) | uploads


def test_bf16_weights_stay_bf16_and_run(server: Server, tmp_path: Path) -> None:
    files = upload_dir(server, write_tiny_llama(tmp_path / "tiny-bf16", seed=3, bf16=True))
    events = create(server, {"model": "tiny-bf16", "files": files, "stream": True})
    assert statuses(events)[-1] == "success", events
    model_layer = json.loads((server.models / "manifests/registry.ollama.ai/library/tiny-bf16/latest").read_bytes())
    blob = server.models / "blobs" / model_layer["layers"][0]["digest"].replace(":", "-")
    info = read_gguf(blob)
    assert info.kv["general.file_type"] == 1  # Ollama labels every conversion F16
    types = {t.name: t.type_name for t in info.tensors}
    assert types["blk.1.ffn_up.weight"] == "BF16" and types["output_norm.weight"] == "F32"
    assert _generate(server, "tiny-bf16")["eval_count"] > 0


def test_unsupported_architecture_is_a_clear_400(server: Server, tmp_path: Path) -> None:
    directory = write_tiny_llama(tmp_path / "gpt2")
    config = json.loads((directory / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    (directory / "config.json").write_text(json.dumps(config))
    files = upload_dir(server, directory)
    before = store_snapshot(server)
    r = httpx.post(f"{server.url}/api/create", json={"model": "gpt2", "files": files, "stream": False}, timeout=60)
    assert (r.status_code, r.json()) == (400, {"error": 'unsupported architecture "GPT2LMHeadModel"'})
    assert store_snapshot(server) == before
    assert not any(p.name.startswith("ollama-safetensors") for p in server.models.iterdir())


# --- a numpy forward pass of the same Llama -------------------------------------------------------


def _load_f32(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header, data = json.loads(raw[8:8 + size]), raw[8 + size:]
    return {name: np.frombuffer(data[e["data_offsets"][0]:e["data_offsets"][1]], np.float32).reshape(e["shape"])
            .astype(np.float64) for name, e in header.items() if name != "__metadata__"}


def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight


def _rotary(x: np.ndarray, theta: float = 10000.0) -> np.ndarray:
    """Hugging Face's rotary embedding (`rotate_half`: the two halves of each head are the pairs)."""
    d = x.shape[-1]
    angles = np.arange(x.shape[1])[:, None] * theta ** (-np.arange(0, d, 2) / d)[None, :]
    cos, sin = np.cos(angles), np.sin(angles)
    first, second = x[..., :d // 2], x[..., d // 2:]
    return np.concatenate([first * cos - second * sin, first * sin + second * cos], -1)


def llama_logprobs(w: dict[str, np.ndarray], ids: list[int], layers: int, heads: int, kv_heads: int) -> np.ndarray:
    """Log-probabilities of the next token after `ids` (LlamaForCausalLM with tied embeddings)."""
    x, n = w["model.embed_tokens.weight"][ids], len(ids)
    for i in range(layers):
        p = f"model.layers.{i}."
        h = _rms_norm(x, w[p + "input_layernorm.weight"])
        q, k, v = ((h @ w[p + f"self_attn.{name}_proj.weight"].T + w.get(p + f"self_attn.{name}_proj.bias", 0))
                   .reshape(n, count, -1).transpose(1, 0, 2)
                   for name, count in (("q", heads), ("k", kv_heads), ("v", kv_heads)))
        q, k = _rotary(q), np.repeat(_rotary(k), heads // kv_heads, 0)
        v = np.repeat(v, heads // kv_heads, 0)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1]) + np.triu(np.full((n, n), -np.inf), 1)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        x = x + (scores @ v).transpose(1, 0, 2).reshape(n, -1) @ w[p + "self_attn.o_proj.weight"].T
        h = _rms_norm(x, w[p + "post_attention_layernorm.weight"])
        gate, up = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
    logits = _rms_norm(x, w["model.norm.weight"])[-1] @ w["model.embed_tokens.weight"].T
    return logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())


@pytest.mark.parametrize("architecture", ["LlamaForCausalLM", "Qwen2ForCausalLM"])
def test_converted_model_computes_what_the_weights_compute(server: Server, tmp_path: Path, architecture: str) -> None:
    """The next-token distribution must match the Hugging Face computation. For Llama the q/k rows are
    permuted for GGML's rotary layout (without that the top tokens change); Qwen2 keeps them and adds biases."""
    directory = write_tiny_llama(tmp_path / "tiny-ref", seed=5, architecture=architecture)
    events = create(server, {"model": "tiny-ref", "files": upload_dir(server, directory)})
    assert statuses(events)[-1] == "success", events
    prompt = "cat dog fox"  # no merges apply: one byte-level token per byte, and a token's id is its byte
    reply = httpx.post(f"{server.url}/api/generate", json={
        "model": "tiny-ref", "prompt": prompt, "raw": True, "stream": False, "logprobs": True, "top_logprobs": 5,
        "options": {"num_predict": 1, "temperature": 0}}, timeout=120).json()
    assert reply["prompt_eval_count"] == len(prompt), reply
    shown = httpx.post(f"{server.url}/api/show", json={"model": "tiny-ref"}).json()
    assert shown["details"]["family"] == {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}[architecture]
    top = reply["logprobs"][0]["top_logprobs"]
    expected = llama_logprobs(_load_f32(directory / "model.safetensors"), list(prompt.encode()), 2, 4, 2)
    best = np.argsort(-expected)[:5]
    assert [t["bytes"] for t in top] == [[int(i)] for i in best]
    assert np.allclose([t["logprob"] for t in top], expected[best], atol=0.01)


def test_sentencepiece_tokenizer_json(server: Server, tmp_path: Path) -> None:
    """Mistral / Llama 2 style: a tokenizer.json converted from SentencePiece becomes llama.cpp's SentencePiece
    vocabulary (scores from the merge order, byte tokens, a space prefix), so prompts tokenize as in HF."""
    directory = write_tiny_llama(tmp_path / "spm", architecture="MistralForCausalLM", sentencepiece=True)
    events = create(server, {"model": "tiny-spm", "files": upload_dir(server, directory)})
    assert statuses(events)[-1] == "success", events
    info = httpx.post(f"{server.url}/api/show", json={"model": "tiny-spm", "verbose": True}).json()["model_info"]
    assert info["general.architecture"] == "llama" and info["tokenizer.ggml.model"] == "llama"
    assert info["tokenizer.ggml.add_space_prefix"] is True and info["tokenizer.ggml.add_bos_token"] is True
    tokens, types = info["tokenizer.ggml.tokens"], info["tokenizer.ggml.token_type"]
    assert types[tokens.index("<0x41>")] == 6 and types[tokens.index("<unk>")] == 3
    assert "tokenizer.ggml.merges" not in info
    # `▁hello ▁world` after <s>; unknown characters fall back to bytes: <s> ▁ <0x7A> <0x7A>
    for prompt, count in (("hello world", 3), ("hello", 2), ("zz", 4)):
        reply = httpx.post(f"{server.url}/api/generate", json={
            "model": "tiny-spm", "prompt": prompt, "raw": True, "stream": False,
            "options": {"num_predict": 2, "temperature": 0}}, timeout=120).json()
        assert reply["prompt_eval_count"] == count, (prompt, reply)
        assert reply["eval_count"] > 0


def _top_logprobs(server: Server, model: str, prompt: str = "cat dog fox") -> list[tuple[list[int], float]]:
    reply = httpx.post(f"{server.url}/api/generate", json={
        "model": model, "prompt": prompt, "raw": True, "stream": False, "logprobs": True, "top_logprobs": 5,
        "options": {"num_predict": 1, "temperature": 0}}, timeout=120).json()
    return [(t["bytes"], t["logprob"]) for t in reply["logprobs"][0]["top_logprobs"]]


def test_safetensors_lora_matches_merged_weights(server: Server, tmp_path: Path) -> None:
    """A PEFT LoRA in safetensors is converted against its base model: applying it at load time gives what
    merging W + alpha/r·B·A into the weights gives (q/k included, whose rows the conversion permutes)."""
    base = write_tiny_llama(tmp_path / "base", seed=5)
    weights = {name: value.astype(np.float32) for name, value in _load_f32(base / "model.safetensors").items()}
    rng = np.random.default_rng(11)
    rank, alpha, lora = 4, 8.0, {}
    for i in range(2):
        for module in ("q_proj", "k_proj", "v_proj"):
            target = f"model.layers.{i}.self_attn.{module}"
            a = (rng.standard_normal((rank, 256)) * 0.3).astype(np.float32)
            b = (rng.standard_normal((weights[target + ".weight"].shape[0], rank)) * 0.3).astype(np.float32)
            lora[f"base_model.model.{target}.lora_A.weight"] = a
            lora[f"base_model.model.{target}.lora_B.weight"] = b
            weights[target + ".weight"] = weights[target + ".weight"] + alpha / rank * b @ a
    merged = write_tiny_llama(tmp_path / "merged", seed=5)
    write_safetensors(merged / "model.safetensors", weights)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    write_safetensors(adapter / "adapter_model.safetensors", lora)
    (adapter / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": rank, "lora_alpha": alpha, "target_modules": ["q_proj", "k_proj", "v_proj"]}))

    assert statuses(create(server, {"model": "lora-base", "files": upload_dir(server, base)}))[-1] == "success"
    assert statuses(create(server, {"model": "lora-merged", "files": upload_dir(server, merged)}))[-1] == "success"
    events = create(server, {"model": "lora-adapted", "from": "lora-base", "adapters": upload_dir(server, adapter)})
    assert statuses(events)[0] == "converting adapter" and statuses(events)[-1] == "success", events

    adapted, expected = _top_logprobs(server, "lora-adapted"), _top_logprobs(server, "lora-merged")
    assert adapted[0][0] == expected[0][0], (adapted, expected)
    got, want = ({tuple(t): p for t, p in top} for top in (adapted, expected))
    common = got.keys() & want.keys()
    assert len(common) >= 4, (adapted, expected)  # near-ties may swap places at the edge of the top five
    assert all(abs(got[k] - want[k]) < 0.02 for k in common), (adapted, expected)
    assert [t for t, _ in _top_logprobs(server, "lora-base")] != [t for t, _ in expected]
