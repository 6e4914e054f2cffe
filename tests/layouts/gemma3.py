"""Gemma 3 in Ollama's layout: a real text model (llama.cpp's layout) plus a tiny SigLIP vision tower and
Gemma 3 projector under the names and keys of Ollama's `convert/convert_gemma3.go`.

The tower has random weights, so it sees nothing, but llama.cpp's mtmd runs every image through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFValueType

from modelstore.gguf import read_gguf
from tests.layouts.ollama import ollama_copy

IMAGE_SIZE = 56
PATCH_SIZE = 14
POOL = 2  # patches per side (4) pooled by 2: 4 image tokens
TOKENS_PER_IMAGE = (IMAGE_SIZE // PATCH_SIZE // POOL) ** 2


def vision_tower(text_width: int, *, width: int = 32, ffn: int = 64, blocks: int = 2, seed: int = 0
                 ) -> dict[str, np.ndarray]:
    """Ollama's gemma3 vision tensors (numpy order: the slowest dimension first)."""
    rng = np.random.default_rng(seed)

    def weights(*shape: int, scale: float = 0.05, dtype: type = np.float32) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(dtype)

    patches = (IMAGE_SIZE // PATCH_SIZE) ** 2
    tensors = {
        "v.patch_embedding.weight": weights(width, 3, PATCH_SIZE, PATCH_SIZE, dtype=np.float16),
        "v.patch_embedding.bias": weights(width),
        "v.position_embedding.weight": weights(patches, width, dtype=np.float16),
        "v.post_layernorm.weight": np.ones(width, np.float32),
        "v.post_layernorm.bias": np.zeros(width, np.float32),
        "mm.mm_input_projection.weight": weights(width, text_width, dtype=np.float16),
        "mm.mm_soft_emb_norm.weight": np.ones(width, np.float32),
    }
    for b in range(blocks):
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensors[f"v.blk.{b}.{name}.weight"] = weights(width, width, dtype=np.float16)
            tensors[f"v.blk.{b}.{name}.bias"] = weights(width)
        for name in ("layer_norm1", "layer_norm2"):
            tensors[f"v.blk.{b}.{name}.weight"] = np.ones(width, np.float32)
            tensors[f"v.blk.{b}.{name}.bias"] = np.zeros(width, np.float32)
        tensors[f"v.blk.{b}.mlp.fc1.weight"] = weights(ffn, width, dtype=np.float16)
        tensors[f"v.blk.{b}.mlp.fc1.bias"] = weights(ffn)
        tensors[f"v.blk.{b}.mlp.fc2.weight"] = weights(width, ffn, dtype=np.float16)
        tensors[f"v.blk.{b}.mlp.fc2.bias"] = weights(width)
    return tensors


def ollama_gemma3(source: Path, destination: Path, *, vision: bool = True) -> Path:
    """Gemma 3 as Ollama's converter writes the multimodal checkpoints: no RMS epsilon or RoPE bases (the
    loader's defaults), the image soft token left in the vocabulary, the vision tower inside."""
    u32, f32 = GGUFValueType.UINT32, GGUFValueType.FLOAT32
    kv = read_gguf(source).kv
    width = kv["gemma3.embedding_length"]
    tokens, scores, types = (kv[f"tokenizer.ggml.{k}"] for k in ("tokens", "scores", "token_type"))
    arr, string, i32 = GGUFValueType.ARRAY, GGUFValueType.STRING, GGUFValueType.INT32
    values = {
        "tokenizer.ggml.tokens": (tokens + ["<image_soft_token>"], arr, string),
        "tokenizer.ggml.scores": ([float(s) for s in scores] + [0.0], arr, f32),
        "tokenizer.ggml.token_type": (types + [3], arr, i32),
        "tokenizer.ggml.add_padding_token": (False, GGUFValueType.BOOL),
    }
    if vision:
        values |= {
            "gemma3.vision.block_count": (2, u32), "gemma3.vision.embedding_length": (32, u32),
            "gemma3.vision.feed_forward_length": (64, u32), "gemma3.vision.image_size": (IMAGE_SIZE, u32),
            "gemma3.vision.patch_size": (PATCH_SIZE, u32), "gemma3.vision.num_channels": (3, u32),
            "gemma3.vision.attention.head_count": (2, u32),
            "gemma3.vision.attention.layer_norm_epsilon": (1e-6, f32),
            "gemma3.mm.tokens_per_image": (TOKENS_PER_IMAGE, u32),
        }
    return ollama_copy(source, destination, set_values=values,
                       drop_keys=("gemma3.attention.layer_norm_rms_epsilon", "gemma3.rope.freq_base"),
                       extra_tensors=vision_tower(width) if vision else None)
