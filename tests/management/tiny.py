"""Small Hugging Face-style model directories written by the tests: safetensors weights, config.json,
tokenizer.json. Random weights: the point is the conversion, not the text."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

SMOLLM_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], bf16: bool = False) -> None:
    """A safetensors file: 8-byte header length, JSON header, then the data (F32, F16 or BF16)."""
    header: dict = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, array in tensors.items():
        if array.dtype == np.float32 and bf16 and array.ndim > 1:
            data, dtype = (array.view(np.uint32) >> 16).astype(np.uint16).tobytes(), "BF16"
        else:
            data, dtype = array.tobytes(), {"float32": "F32", "float16": "F16", "int64": "I64"}[str(array.dtype)]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def _byte_level_alphabet() -> list[str]:
    """GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100 onwards."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return [mapping[b] for b in range(256)]


def byte_level_tokenizer() -> dict:
    """A byte-level BPE tokenizer.json: 256 byte tokens, a few merges, and the special tokens."""
    vocab = {ch: i for i, ch in enumerate(_byte_level_alphabet())}
    merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["i", "n"], ["Ġ", "a"]]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    added = [{"id": len(vocab) + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in enumerate(specials)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None, "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "vocab": vocab, "merges": merges},
    }


def write_tiny_llama(directory: Path, *, hidden: int = 256, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                     ffn: int = 512, seed: int = 0, bf16: bool = False, architecture: str = "LlamaForCausalLM",
                     sentencepiece: bool = False) -> Path:
    """A LlamaForCausalLM with random weights (tied embeddings, as SmolLM has) and a byte-level tokenizer.
    With `architecture="Qwen2ForCausalLM"` the q/k/v projections get biases, as Qwen2's have."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer, tokenizer_config = sentencepiece_tokenizer() if sentencepiece else (byte_level_tokenizer(), {
        "bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>",
        "add_bos_token": False, "chat_template": SMOLLM_CHAT_TEMPLATE,
    })
    vocab = len({**tokenizer["model"]["vocab"], **{t["content"]: t["id"] for t in tokenizer["added_tokens"]}})
    rng = np.random.default_rng(seed)
    head_dim = hidden // heads

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    tensors = {"model.embed_tokens.weight": w(vocab, hidden), "model.norm.weight": np.ones(hidden, np.float32)}
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors |= {
            p + "input_layernorm.weight": np.ones(hidden, np.float32),
            p + "post_attention_layernorm.weight": np.ones(hidden, np.float32),
            p + "self_attn.q_proj.weight": w(heads * head_dim, hidden),
            p + "self_attn.k_proj.weight": w(kv_heads * head_dim, hidden),
            p + "self_attn.v_proj.weight": w(kv_heads * head_dim, hidden),
            p + "self_attn.o_proj.weight": w(hidden, heads * head_dim),
            p + "mlp.gate_proj.weight": w(ffn, hidden),
            p + "mlp.up_proj.weight": w(ffn, hidden),
            p + "mlp.down_proj.weight": w(hidden, ffn),
        }
        if architecture == "Qwen2ForCausalLM":
            tensors |= {p + f"self_attn.{n}_proj.bias": w(size) * 4 for n, size in
                        (("q", heads * head_dim), ("k", kv_heads * head_dim), ("v", kv_heads * head_dim))}
    write_safetensors(directory / "model.safetensors", tensors, bf16=bf16)
    config = {
        "architectures": [architecture], "model_type": architecture.removesuffix("ForCausalLM").lower(),
        "hidden_size": hidden,
        "intermediate_size": ffn, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "vocab_size": vocab, "tie_word_embeddings": True, "hidden_act": "silu",
        "torch_dtype": "float32",
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer))
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return directory


def write_lora_gguf(path: Path, *, arch: str, n_embd: int, layers: list[int], rank: int = 8, alpha: float = 32.0,
                    scale: float = 1.0, seed: int = 1) -> Path:
    """A LoRA adapter in llama.cpp's GGUF layout: `blk.N.attn_q.weight.lora_a` is (rank, n_embd) in numpy
    order (ggml ne = [n_embd, rank]) and `lora_b` is (n_embd, rank)."""
    import gguf

    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(path, arch)
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    for i in layers:
        for part, shape in (("lora_a", (rank, n_embd)), ("lora_b", (n_embd, rank))):
            values = (rng.standard_normal(shape) * scale).astype(np.float32)
            writer.add_tensor(f"blk.{i}.attn_q.weight.{part}", values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_projector_gguf(path: Path) -> Path:
    """A stand-in for a llama.cpp mmproj file (only its header matters to create and show)."""
    import gguf

    writer = gguf.GGUFWriter(path, "clip")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_uint32("clip.vision.embedding_length", 64)
    writer.add_uint32("clip.vision.block_count", 1)
    writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    writer.add_tensor("v.patch_embd.weight", np.zeros((64, 48), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def sentencepiece_tokenizer() -> tuple[dict, dict]:
    """A tokenizer.json as Hugging Face converts SentencePiece models (Llama 2, Mistral): BPE with byte
    fallback, `▁` for spaces and a prepended `▁`; and its tokenizer_config.json. `hello world` is
    `▁hello ▁world`; characters outside the vocabulary fall back to `<0xNN>` byte tokens."""
    specials = ["<unk>", "<s>", "</s>"]
    pieces = specials + [f"<0x{b:02X}>" for b in range(256)] + list("▁helowrd")
    merges = [["▁", "h"], ["l", "l"], ["ll", "o"], ["e", "llo"], ["▁h", "ello"],
              ["▁", "w"], ["o", "r"], ["or", "l"], ["orl", "d"], ["▁w", "orld"]]
    pieces += ["".join(pair) for pair in merges]
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, s in enumerate(specials)]
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None, "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": {p: i for i, p in enumerate(pieces)}, "merges": [" ".join(m) for m in merges]},
    }
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
              "add_eos_token": False}
    return tokenizer, config
