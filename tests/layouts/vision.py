"""Tiny vision towers under Ollama's names and keys, for the architectures whose projector the tests run
through llama.cpp's mtmd: random weights, so they see nothing, but every image goes through them."""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType
from gguf.quants import quantize

from tests.layouts.ollama import Value

U, F, A, I32 = GGUFValueType.UINT32, GGUFValueType.FLOAT32, GGUFValueType.ARRAY, GGUFValueType.INT32


def _weights(rng: np.random.Generator, *shape: int, dtype: type = np.float32) -> np.ndarray:
    return (rng.standard_normal(shape) * 0.05).astype(dtype)


def qwen25vl_tower(text_width: int, *, width: int = 32, ffn: int = 64, blocks: int = 2, patch: int = 14,
                   seed: int = 0) -> tuple[dict[str, Value], dict[str, np.ndarray]]:
    """Qwen2.5-VL's tower as Ollama's convert_qwen25vl.go writes it: the 3D patch convolution split into two
    frames (`patch_embd_0/1`), Q/K/V split, SwiGLU blocks with RMS norms, the merger under `v.merger`."""
    rng = np.random.default_rng(seed)
    keys: dict[str, Value] = {
        "qwen25vl.vision.block_count": (blocks, U), "qwen25vl.vision.embedding_length": (width, U),
        "qwen25vl.vision.attention.head_count": (2, U), "qwen25vl.vision.num_channels": (3, U),
        "qwen25vl.vision.patch_size": (patch, U), "qwen25vl.vision.spatial_merge_size": (2, U),
        "qwen25vl.vision.spatial_patch_size": (patch, U), "qwen25vl.vision.window_size": (112, U),
        "qwen25vl.vision.attention.layer_norm_epsilon": (1e-6, F), "qwen25vl.vision.rope.freq_base": (1e4, F),
        "qwen25vl.vision.fullatt_block_indexes": ([blocks - 1], A, I32),
        "qwen25vl.vision.temporal_patch_size": (2, U),
    }
    tensors = {
        "v.patch_embd_0.weight": _weights(rng, width, 3, patch, patch, dtype=np.float16),
        "v.patch_embd_1.weight": _weights(rng, width, 3, patch, patch, dtype=np.float16),
        "v.merger.ln_q.weight": np.ones(width, np.float32),
        "v.merger.mlp.0.weight": _weights(rng, 4 * width, 4 * width, dtype=np.float16),
        "v.merger.mlp.0.bias": _weights(rng, 4 * width),
        "v.merger.mlp.2.weight": _weights(rng, text_width, 4 * width, dtype=np.float16),
        "v.merger.mlp.2.bias": _weights(rng, text_width),
    }
    for b in range(blocks):
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            tensors[f"v.blk.{b}.{name}.weight"] = _weights(rng, width, width, dtype=np.float16)
            tensors[f"v.blk.{b}.{name}.bias"] = _weights(rng, width)
        tensors[f"v.blk.{b}.ln1.weight"] = np.ones(width, np.float32)
        tensors[f"v.blk.{b}.ln2.weight"] = np.ones(width, np.float32)
        for name in ("ffn_gate", "ffn_up"):
            tensors[f"v.blk.{b}.{name}.weight"] = _weights(rng, ffn, width, dtype=np.float16)
            tensors[f"v.blk.{b}.{name}.bias"] = _weights(rng, ffn)
        tensors[f"v.blk.{b}.ffn_down.weight"] = _weights(rng, width, ffn, dtype=np.float16)
        tensors[f"v.blk.{b}.ffn_down.bias"] = _weights(rng, width)
    return keys, tensors


def pixtral_tower(text_width: int, *, width: int = 32, ffn: int = 64, blocks: int = 2, patch: int = 14,
                  seed: int = 0) -> tuple[dict[str, Value], dict[str, np.ndarray]]:
    """Mistral Small 3.1's Pixtral tower as Ollama's convert_mistral.go writes it: `patch_conv`,
    `encoder_norm`, blocks with `attn_norm`/`ffn_norm`, the projector as `mm.linear_1/2` behind `mm.norm` and
    a 2x2 `mm.patch_merger.merging_layer`; vision Q and K left in Hugging Face's rotary order."""
    rng = np.random.default_rng(seed)
    keys: dict[str, Value] = {
        "mistral3.vision.block_count": (blocks, U), "mistral3.vision.embedding_length": (width, U),
        "mistral3.vision.feed_forward_length": (ffn, U), "mistral3.vision.attention.head_count": (2, U),
        "mistral3.vision.image_size": (patch * 8, U), "mistral3.vision.patch_size": (patch, U),
        "mistral3.vision.num_channels": (3, U), "mistral3.spatial_merge_size": (2, U),
        "mistral3.vision.rope.freq_base": (1e4, F),
    }
    tensors = {
        "v.patch_conv.weight": _weights(rng, width, 3, patch, patch, dtype=np.float16),
        "v.encoder_norm.weight": np.ones(width, np.float32),
        "mm.norm.weight": np.ones(width, np.float32),
        "mm.patch_merger.merging_layer.weight": _weights(rng, width, 4 * width, dtype=np.float16),
        "mm.linear_1.weight": _weights(rng, text_width, width, dtype=np.float16),
        "mm.linear_2.weight": _weights(rng, text_width, text_width, dtype=np.float16),
    }
    for b in range(blocks):
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensors[f"v.blk.{b}.{name}.weight"] = _weights(rng, width, width, dtype=np.float16)
        tensors[f"v.blk.{b}.attn_norm.weight"] = np.ones(width, np.float32)
        tensors[f"v.blk.{b}.ffn_norm.weight"] = np.ones(width, np.float32)
        tensors[f"v.blk.{b}.ffn_gate.weight"] = _weights(rng, ffn, width, dtype=np.float16)
        tensors[f"v.blk.{b}.ffn_up.weight"] = _weights(rng, ffn, width, dtype=np.float16)
        tensors[f"v.blk.{b}.ffn_down.weight"] = _weights(rng, width, ffn, dtype=np.float16)
    return keys, tensors


def qwen3vl_tower(text_width: int, *, width: int = 32, ffn: int = 64, blocks: int = 2, patch: int = 16,
                  side: int = 4, seed: int = 0) -> tuple[dict[str, Value], dict[str, np.ndarray | tuple]]:
    """Qwen3-VL's tower as Ollama's published files hold it (`llama/compat`'s account of them): Q, K and V
    apart (V of the last block in Q8_0, as some files have it), the 3D patch convolution as one
    [patch, patch, 2 frames, out*in] tensor, `norm1/2` and `mlp.linear_fc1/2`, the merger and one deepstack
    merger (after block 0) under `v.merger` and `v.deepstack_merger.0`."""
    rng = np.random.default_rng(seed)
    keys: dict[str, Value] = {
        "qwen3vl.vision.block_count": (blocks, U), "qwen3vl.vision.embedding_length": (width, U),
        "qwen3vl.vision.attention.head_count": (2, U), "qwen3vl.vision.num_channels": (3, U),
        "qwen3vl.vision.patch_size": (patch, U), "qwen3vl.vision.spatial_merge_size": (2, U),
        "qwen3vl.vision.temporal_patch_size": (2, U), "qwen3vl.vision.rope.freq_base": (1e4, F),
        "qwen3vl.vision.attention.layer_norm_epsilon": (1e-6, F),
        "qwen3vl.vision.deepstack_visual_indexes": ([0], A, I32),
    }
    merged = 4 * width  # 2x2 patches merged
    tensors: dict[str, np.ndarray | tuple] = {
        "v.patch_embed.weight": _weights(rng, width * 3, 2, patch, patch, dtype=np.float16),
        "v.patch_embed.bias": _weights(rng, width),
        "v.pos_embed.weight": _weights(rng, side * side, width, dtype=np.float16),
        # The merger normalizes before the 2x2 merge, a deepstack merger after it.
        "v.merger.norm.weight": np.ones(width, np.float32), "v.merger.norm.bias": np.zeros(width, np.float32),
        "v.merger.linear_fc1.weight": _weights(rng, merged, merged, dtype=np.float16),
        "v.merger.linear_fc1.bias": _weights(rng, merged),
        "v.merger.linear_fc2.weight": _weights(rng, text_width, merged, dtype=np.float16),
        "v.merger.linear_fc2.bias": _weights(rng, text_width),
        "v.deepstack_merger.0.norm.weight": np.ones(merged, np.float32),
        "v.deepstack_merger.0.norm.bias": np.zeros(merged, np.float32),
        "v.deepstack_merger.0.linear_fc1.weight": _weights(rng, merged, merged, dtype=np.float16),
        "v.deepstack_merger.0.linear_fc1.bias": _weights(rng, merged),
        "v.deepstack_merger.0.linear_fc2.weight": _weights(rng, text_width, merged, dtype=np.float16),
        "v.deepstack_merger.0.linear_fc2.bias": _weights(rng, text_width),
    }
    for b in range(blocks):
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            tensors[f"v.blk.{b}.{name}.weight"] = _weights(rng, width, width, dtype=np.float16)
            tensors[f"v.blk.{b}.{name}.bias"] = _weights(rng, width)
        for name in ("norm1", "norm2"):
            tensors[f"v.blk.{b}.{name}.weight"] = np.ones(width, np.float32)
            tensors[f"v.blk.{b}.{name}.bias"] = np.zeros(width, np.float32)
        tensors[f"v.blk.{b}.mlp.linear_fc1.weight"] = _weights(rng, ffn, width, dtype=np.float16)
        tensors[f"v.blk.{b}.mlp.linear_fc1.bias"] = _weights(rng, ffn)
        tensors[f"v.blk.{b}.mlp.linear_fc2.weight"] = _weights(rng, width, ffn, dtype=np.float16)
        tensors[f"v.blk.{b}.mlp.linear_fc2.bias"] = _weights(rng, width)
    last_v = _weights(rng, width, width)
    tensors[f"v.blk.{blocks - 1}.attn_v.weight"] = (
        quantize(last_v, GGMLQuantizationType.Q8_0).reshape(-1), int(GGMLQuantizationType.Q8_0), [width, width])
    return keys, tensors
