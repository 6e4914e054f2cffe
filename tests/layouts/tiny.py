"""Tiny random models of any llama.cpp architecture, in llama.cpp's own layout.

llama.cpp builds them itself: `llama_model_init_from_user` creates every tensor the architecture asks
for from the hyperparameters given (as llama.cpp's tests/test-llama-archs.cpp does), the tests fill them
with small deterministic values, and `llama_model_save_to_file` writes the GGUF. The tests then rewrite
such a file in Ollama's layout (tests/layouts/ollama.py) to check that pollama serves it.

The tokenizer is SentencePiece-style with byte fallback, so any text tokenizes: <unk>, <s>, </s>, the
256 byte tokens, the letters and a few words (with BPE merges for tokenizers that need them).
"""

from __future__ import annotations

import ctypes
import fnmatch
import hashlib
import math
import os
from pathlib import Path

import llama_cpp as lc
import numpy as np
from gguf import GGUFValueType, GGUFWriter

from modelstore.gguf import read_gguf
from tests.layouts.ollama import Value, ollama_copy

WORDS = ["the", "a", "sky", "blue", "is", "why", "hello", "world"]
# Every prefix of each word after the word-start mark, so that BPE merges can build the words.
PIECES = list(dict.fromkeys(["▁"] + list("abcdefghijklmnopqrstuvwxyz")
                            + ["▁" + word[:n] for word in WORDS for n in range(1, len(word) + 1)]))
MERGES = [f"{piece[:-1]} {piece[-1]}" for piece in PIECES if len(piece) > 1]
SPECIALS = ["<start_of_turn>", "<end_of_turn>"]
VOCAB = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + PIECES + SPECIALS


# Tensors llama.cpp creates for any Gemma 3 that real ones lack: quantization scales, attention biases.
GEMMA3_OPTIONAL = ("*.scale", "*.input_scale", "*.attn_q.bias", "*.attn_k.bias", "*.attn_v.bias")

# llama.cpp's loader log, which building a model prints at length, goes nowhere in the test process.
_SILENT = lc.llama_log_callback(lambda _level, _text, _user_data: None)


class _InitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


def _ggml() -> ctypes.CDLL:
    library = ctypes.CDLL(os.path.join(os.path.dirname(lc.__file__), "lib", "libggml-base.so"))
    library.gguf_init_from_file.restype = ctypes.c_void_p
    library.gguf_init_from_file.argtypes = [ctypes.c_char_p, _InitParams]
    library.gguf_free.argtypes = [ctypes.c_void_p]
    library.ggml_get_name.restype = ctypes.c_char_p
    library.ggml_get_name.argtypes = [ctypes.c_void_p]
    library.ggml_nbytes.restype = ctypes.c_size_t
    library.ggml_nbytes.argtypes = [ctypes.c_void_p]
    library.ggml_backend_tensor_set.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    return library


def hyperparameters(arch: str, *, layers: int = 2, width: int = 64, heads: int = 2, kv_heads: int = 2,
                    ffn: int = 96, context: int = 512, experts: int = 0) -> dict[str, Value]:
    """A superset of the keys llama.cpp's architectures read, small values (as test-llama-archs.cpp)."""
    u32, f32, boolean = GGUFValueType.UINT32, GGUFValueType.FLOAT32, GGUFValueType.BOOL
    head_dim = width // heads
    values: dict[str, Value] = {
        "vocab_size": (len(VOCAB), u32), "context_length": (context, u32), "embedding_length": (width, u32),
        "block_count": (layers, u32), "feed_forward_length": (ffn, u32), "attention.head_count": (heads, u32),
        "attention.head_count_kv": (kv_heads, u32), "attention.layer_norm_epsilon": (1e-5, f32),
        "attention.layer_norm_rms_epsilon": (1e-5, f32), "rope.dimension_count": (head_dim, u32),
        "attention.key_length": (head_dim, u32), "attention.value_length": (head_dim, u32),
        "use_parallel_residual": (False, boolean), "ssm.conv_kernel": (4, u32), "ssm.inner_size": (2 * width, u32),
        "ssm.state_size": (16, u32), "ssm.time_step_rank": (heads, u32), "ssm.group_count": (2, u32),
        "shortconv.l_cache": (3, u32), "full_attention_interval": (2, u32),
    }
    if experts:
        values |= {"expert_count": (experts, u32), "expert_used_count": (min(2, experts), u32),
                   "expert_feed_forward_length": (ffn, u32), "expert_shared_count": (1, u32),
                   "expert_shared_feed_forward_length": (ffn, u32), "leading_dense_block_count": (1, u32),
                   "interleave_moe_layer_step": (1, u32), "expert_gating_func": (1, u32)}
    return {f"{arch}.{key}": value for key, value in values.items()}


def tokenizer_values(model: str = "llama", vocabulary: list[str] | None = None) -> dict[str, Value]:
    """The tokenizer keys: SentencePiece (`llama`), or a BPE model (`gemma4`...) with merges. A longer
    `vocabulary` starts with VOCAB; its other tokens are control tokens."""
    tokens = vocabulary or VOCAB
    arr, string, f32, i32, u32 = (GGUFValueType.ARRAY, GGUFValueType.STRING, GGUFValueType.FLOAT32,
                                  GGUFValueType.INT32, GGUFValueType.UINT32)
    types = [2, 3, 3] + [6] * 256 + [1] * len(PIECES) + [3] * (len(tokens) - len(VOCAB) + len(SPECIALS))
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [float(len(p)) for p in PIECES] + [0.0] * (
        len(tokens) - len(VOCAB) + len(SPECIALS))
    merges = {"tokenizer.ggml.merges": (MERGES, arr, string)} if model != "llama" else {}
    return {
        **merges,
        "tokenizer.ggml.model": (model, string), "tokenizer.ggml.tokens": (tokens, arr, string),
        "tokenizer.ggml.scores": (scores, arr, f32), "tokenizer.ggml.token_type": (types, arr, i32),
        "tokenizer.ggml.bos_token_id": (1, u32), "tokenizer.ggml.eos_token_id": (2, u32),
        "tokenizer.ggml.unknown_token_id": (0, u32), "tokenizer.ggml.add_bos_token": (True, GGUFValueType.BOOL),
    }


def _value(name: str, size: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    if "norm" in name or name.endswith(("scale", ".input_scale")):
        return np.ones(size, np.float32)
    values = np.random.default_rng(seed).standard_normal(size).astype(np.float32) * 0.1
    return -np.abs(values) if "ssm_a" in name else values


def tiny_model(arch: str, destination: Path, values: dict[str, Value], *, drop: tuple[str, ...] = ()) -> Path:
    """Write a llama.cpp-layout GGUF of `arch` with these metadata values and random F32 weights.
    Tensors matching one of the `drop` glob patterns are left out (optional ones llama.cpp creates anyway)."""
    metadata = destination.with_suffix(".metadata.gguf")
    writer = GGUFWriter(metadata, arch)
    for key, (value, kind, *item) in values.items():
        writer.add_key_value(key, value, kind, sub_type=item[0] if item else None)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    lc.llama_backend_init()
    if not os.environ.get("TINY_VERBOSE"):
        lc.llama_log_set(_SILENT, ctypes.c_void_p())
    ggml = _ggml()
    context = ggml.gguf_init_from_file(str(metadata).encode(), _InitParams(True, None))
    assert context, f"gguf_init_from_file failed for {metadata}"

    def fill(tensor: int, _user_data: int) -> None:
        name = ggml.ggml_get_name(tensor).decode()
        size = ggml.ggml_nbytes(tensor)
        data = _value(name, size // 4).tobytes() if size % 4 == 0 else bytes(size)
        ggml.ggml_backend_tensor_set(tensor, data, 0, size)

    callback = lc.llama_model_set_tensor_data_t(fill)
    params = lc.llama_model_default_params()
    params.n_gpu_layers = 0
    model = lc.llama_model_init_from_user(context, callback, None, params)
    ggml.gguf_free(context)
    metadata.unlink()
    assert model, f"llama.cpp could not build a {arch} model from these values"
    full = destination.with_suffix(".full.gguf")
    try:
        lc.llama_model_save_to_file(model, str(full).encode())
    finally:
        lc.llama_model_free(model)
    # The saver writes every hyperparameter: drop an unset pooling type (-1, which would make it an embedding
    # model) and infinities (which JSON cannot show).
    kv = read_gguf(full).kv
    unset = [k for k, v in kv.items() if (k == f"{arch}.pooling_type" and v == 0xFFFFFFFF)
             or (isinstance(v, float) and not math.isfinite(v))]
    # Keys the saver does not write back (Gemma 4's per-layer input width): as they were given.
    missing = {key: value for key, value in values.items() if key not in kv}
    ollama_copy(full, destination, drop_keys=tuple(unset), set_values=missing,
                rename_tensor=lambda n: None if any(fnmatch.fnmatchcase(n, d) for d in drop) else n)
    full.unlink()
    return destination
