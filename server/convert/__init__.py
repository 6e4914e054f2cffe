"""Safetensors (Hugging Face layout) to an F16 GGUF that llama.cpp loads, as Ollama's `convert` package does.

It lives in the server because only `/api/create` uses it; it needs nothing but numpy and the `gguf`
package (no torch). Supported `config.json` architectures: see `ARCHITECTURES`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from server.convert.errors import ConvertError
from server.convert.models import ARCHITECTURES, Converter, Replacer, block_number
from server.convert.safetensors import SafeTensor, read_safetensors
from server.convert.tokenizer import parse_tokenizer

__all__ = ["ConvertError", "convert_adapter", "convert_model", "supported_architectures"]

_F32_ALWAYS = ("token_types.weight",)


def supported_architectures() -> list[str]:
    return sorted(ARCHITECTURES)


def _read_json(directory: Path, name: str) -> Any:
    path = directory / name
    if not path.is_file():
        raise ConvertError(f"open {name}: no such file or directory")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"{name}: {e}") from None


def _load_config(directory: Path) -> dict[str, Any]:
    config = _read_json(directory, "config.json")
    if not isinstance(config, dict):
        raise ConvertError("config.json: not a JSON object")
    return config


def _converter(directory: Path) -> Converter:
    config = _load_config(directory)
    architectures = config.get("architectures") or []
    if not architectures:
        raise ConvertError("unknown architecture")
    cls = ARCHITECTURES.get(architectures[0])
    if cls is None:
        raise ConvertError(f"unsupported architecture {json.dumps(architectures[0])}")
    return cls(config, directory)


def _weights(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise ConvertError("unknown tensor format")
    return files


def _output_kind(name: str, source: SafeTensor) -> int:
    """Ollama's tensor kinds: 1-D tensors, biases and a few others F32; the rest F16 (BF16 stays BF16)."""
    if name.endswith(".bias") or name in _F32_ALWAYS or len(source.shape) <= 1:
        return gguf.GGMLQuantizationType.F32
    if source.dtype == "BF16":
        return gguf.GGMLQuantizationType.BF16
    return gguf.GGMLQuantizationType.F16


def _encode(data: np.ndarray, kind: int) -> np.ndarray:
    if kind == gguf.GGMLQuantizationType.F32:
        return np.ascontiguousarray(data, dtype=np.float32)
    if kind == gguf.GGMLQuantizationType.F16:
        return np.ascontiguousarray(data.astype(np.float16))
    # BF16, rounded to nearest even as torch and Go's bfloat16 package do
    bits = np.ascontiguousarray(data, dtype=np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


_WRITERS: dict[str, Callable[[gguf.GGUFWriter, str, Any], None]] = {
    "string": lambda w, k, v: w.add_key_value(k, v, gguf.GGUFValueType.STRING),
    "uint32": lambda w, k, v: w.add_key_value(k, int(v), gguf.GGUFValueType.UINT32),
    "float32": lambda w, k, v: w.add_key_value(k, float(v), gguf.GGUFValueType.FLOAT32),
    "bool": lambda w, k, v: w.add_key_value(k, bool(v), gguf.GGUFValueType.BOOL),
    "strings": lambda w, k, v: w.add_key_value(k, list(v), gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING),
    "float32s": lambda w, k, v: w.add_key_value(k, list(v), gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.FLOAT32),
    "int32s": lambda w, k, v: w.add_key_value(k, list(v), gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32),
}


def convert_model(directory: Path, output: Path, progress: Callable[[int, int], None] | None = None) -> None:
    """Write `directory`'s safetensors model to `output` as GGUF; raises ConvertError for what cannot be
    converted. `progress(done, total)` is called after each tensor."""
    directory = Path(directory)
    converter = _converter(directory)
    tokenizer = parse_tokenizer(directory)
    vocab_size = int(converter.config.get("vocab_size") or
                     (converter.config.get("text_config") or {}).get("vocab_size") or 0)
    if vocab_size > len(tokenizer.tokens):
        tokenizer.pad_to(vocab_size)
    kv = converter.kv(tokenizer)

    replacer = Replacer(converter.replacements)
    tensors: list[tuple[str, SafeTensor]] = []
    seen: set[str] = set()
    for source in read_safetensors(_weights(directory)):
        if source.name in converter.skip or any(source.name.endswith("." + s) for s in converter.skip):
            continue
        name = replacer.replace(source.name)
        if name in seen:
            raise ConvertError(f"duplicate tensor name '{name}' was found for this model")
        seen.add(name)
        tensors.append((name, source))
    if not tensors:
        raise ConvertError("no tensors found")
    tensors.sort(key=lambda item: (block_number(item[0]), item[0]))

    writer = gguf.GGUFWriter(output, converter.arch)
    writer.kv_data[0].clear()  # keys in Ollama's order (sorted), the architecture among them
    for key in sorted(kv):
        kind, value = kv[key]
        _WRITERS[kind](writer, key, value)
    kinds = []
    for name, source in tensors:
        kind = _output_kind(name, source)
        kinds.append(kind)
        count = int(np.prod(source.shape, dtype=np.int64))
        itemsize = 4 if kind == gguf.GGMLQuantizationType.F32 else 2
        dtype = {gguf.GGMLQuantizationType.F32: np.float32, gguf.GGMLQuantizationType.F16: np.float16}.get(
            kind, np.uint16)
        writer.add_tensor_info(name, source.shape, np.dtype(dtype), count * itemsize,
                               raw_dtype=None if dtype is not np.uint16 else gguf.GGMLQuantizationType.BF16)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for done, ((name, source), kind) in enumerate(zip(tensors, kinds, strict=True), start=1):
            if source.dtype in ("F32", "F16") and not converter.needs_transform(name) and (
                    (source.dtype == "F32" and kind == gguf.GGMLQuantizationType.F32)
                    or (source.dtype == "F16" and kind == gguf.GGMLQuantizationType.F16)):
                data = np.ascontiguousarray(source.raw())
            else:
                values = source.float32()
                if converter.needs_transform(name):
                    values = converter.transform(name, values)
                data = _encode(values, kind)
            writer.write_tensor_data(data)
            if progress is not None:
                progress(done, len(tensors))
    finally:
        writer.close()


_LORA_REPLACEMENTS = [
    "base_model.model.", "",
    "model.layers", "blk",
    "self_attn.q_proj", "attn_q",
    "self_attn.k_proj", "attn_k",
    "self_attn.v_proj", "attn_v",
    "self_attn.o_proj", "attn_output",
    "mlp.gate_proj", "ffn_gate",
    "mlp.down_proj", "ffn_down",
    "mlp.up_proj", "ffn_up",
    "lora_A.weight", "weight.lora_a",
    "lora_B.weight", "weight.lora_b",
    "lora_a", "weight.lora_a",
    "lora_b", "weight.lora_b",
]


def convert_adapter(directory: Path, output: Path, base: dict[str, Any]) -> None:
    """A PEFT LoRA (adapter_config.json + safetensors) for a llama-architecture base model, written as a
    llama.cpp LoRA GGUF. `base` is the base model's GGUF metadata (architecture and head counts).

    `lora_a` (rank × in) and `lora_b` (out × rank) keep their layout; the rows of `lora_b` for q and k are
    permuted as the base model's q/k rows were, so B·A stays aligned with the converted weights."""
    directory = Path(directory)
    arch = base.get("general.architecture")
    if arch != "llama":
        raise ConvertError("unsupported architecture")
    config = _read_json(directory, "adapter_config.json")
    lora_parameters = config.get("lora_parameters") or {}
    alpha = float(lora_parameters.get("alpha") or config.get("lora_alpha") or 0)
    heads = int(base.get(f"{arch}.attention.head_count") or 0)
    kv_heads = int(base.get(f"{arch}.attention.head_count_kv") or heads)
    replacer = Replacer(_LORA_REPLACEMENTS)
    tensors = sorted(((replacer.replace(t.name), t) for t in read_safetensors(_weights(directory))),
                     key=lambda item: (block_number(item[0]), item[0]))

    writer = gguf.GGUFWriter(output, arch)
    writer.kv_data[0].clear()
    kv = {"general.architecture": ("string", arch), "general.type": ("string", "adapter"),
          "general.file_type": ("uint32", 1), "general.version": ("string", "v0.2"),
          "adapter.type": ("string", "lora"), "adapter.lora.alpha": ("float32", alpha)}
    for key in sorted(kv):
        _WRITERS[kv[key][0]](writer, key, kv[key][1])
    for name, source in tensors:
        if not name.endswith((".lora_a", ".lora_b")) or len(source.shape) != 2:
            raise ConvertError(f"unexpected tensor in a LoRA adapter: {source.name}")
        count = int(np.prod(source.shape, dtype=np.int64))
        writer.add_tensor_info(name, source.shape, np.dtype(np.float16), count * 2)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for name, source in tensors:
            values = source.float32()
            if name.endswith(("attn_q.weight.lora_b", "attn_k.weight.lora_b")) and heads:
                n = heads if ".attn_q." in name else kv_heads
                shape = values.shape
                values = values.reshape(n, 2, shape[0] // n // 2, shape[1]).swapaxes(1, 2).reshape(shape)
            writer.write_tensor_data(_encode(values, gguf.GGMLQuantizationType.F16))
    finally:
        writer.close()
