"""GGUFs in Ollama's own layout, written by the tests the way Ollama's converter (`convert/`, `fs/ggml`)
writes them: keys sorted by name, tensors sorted by block number then name, the vision tower and its
projector inside the model file under Ollama's names.

`ollama_copy` turns a GGUF in llama.cpp's layout into Ollama's: keys and tensors renamed, keys dropped or
added, extra tensors appended. The tensor data of the source is reused as it is.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, GGUFWriter

from modelstore.gguf import read_gguf

Value = tuple[Any, GGUFValueType] | tuple[Any, GGUFValueType, GGUFValueType]
Tensor = np.ndarray | tuple[np.ndarray, int, list[int]]  # an F32/F16 array, or (raw bytes, ggml type, shape)


def read_values(path: Path) -> dict[str, Value]:
    """Every key of a GGUF with its GGUF type (and item type for arrays)."""
    info = read_gguf(path)
    with open(path, "rb") as f:
        header = f.read(info.data_offset)
    values: dict[str, Value] = {}
    for name, value in info.kv.items():
        kind = GGUFValueType(info.value_types[name])
        if kind == GGUFValueType.ARRAY:
            start = info.kv_spans[name][0] + 8 + len(name.encode())  # key length and key
            item = GGUFValueType(struct.unpack_from("<I", header, start + 4)[0])
            values[name] = ([float(v) if item == GGUFValueType.FLOAT32 else v for v in value], kind, item)
        else:
            values[name] = (float(value) if kind == GGUFValueType.FLOAT32 else value, kind)
    return values


def _block(name: str) -> float:
    match = re.match(r"blk\.(\d+)\.", name)
    return int(match.group(1)) if match else float("inf")


def _nbytes(type_id: int, shape: list[int]) -> int:
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
    return int(np.prod(shape)) // block * size


def write_ollama_gguf(path: Path, values: dict[str, Value], tensors: dict[str, Tensor]) -> Path:
    """A GGUF as Ollama's WriteGGUF lays it out. A tensor is a numpy array (F32 or F16), or raw bytes with
    their ggml type and shape (ggml order)."""
    writer = GGUFWriter(path, str(values["general.architecture"][0]))
    for name in sorted(values):
        if name == "general.architecture":
            continue
        value, kind, *item = values[name]
        if kind == GGUFValueType.ARRAY and not value:
            continue  # the gguf package cannot write empty arrays; llama.cpp treats them as absent
        writer.add_key_value(name, value, kind, sub_type=item[0] if item else None)
    for name in sorted(tensors, key=lambda n: (_block(n), n)):
        tensor = tensors[name]
        if isinstance(tensor, np.ndarray):
            writer.add_tensor(name, tensor)
        else:
            data, type_id, shape = tensor
            kind = GGMLQuantizationType(type_id)
            if kind in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
                floats = data.view(np.float32 if kind == GGMLQuantizationType.F32 else np.float16)
                writer.add_tensor(name, floats.reshape(list(reversed(shape))))
            else:  # quantized: the writer takes rows of bytes
                row = _nbytes(type_id, shape[:1])
                writer.add_tensor(name, data.reshape(list(reversed(shape[1:])) + [row]), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def ollama_copy(source: Path, destination: Path, *, arch: str | None = None,
                set_values: dict[str, Value] | None = None, drop_keys: tuple[str, ...] = (),
                rename_key_prefix: tuple[str, str] | None = None,
                rename_tensor: Callable[[str], str | None] = lambda name: name,
                extra_tensors: dict[str, np.ndarray] | None = None) -> Path:
    """`source` (llama.cpp's layout) rewritten in Ollama's: `rename_tensor` returns a tensor's Ollama name
    (None drops it); `extra_tensors` (F32 or F16 arrays in numpy order) join it."""
    info = read_gguf(source)
    values = read_values(source)
    if rename_key_prefix is not None:
        old, new = rename_key_prefix
        values = {(new + k[len(old):] if k.startswith(old) else k): v for k, v in values.items()}
    for key in drop_keys:
        values.pop(key, None)
    values.update(set_values or {})
    if arch is not None:
        values["general.architecture"] = (arch, GGUFValueType.STRING)
    data = np.memmap(source, dtype=np.uint8, mode="r")
    tensors: dict[str, Tensor] = {}
    for tensor in info.tensors:
        name = rename_tensor(tensor.name)
        if name is not None:
            start = info.data_offset + tensor.offset
            tensors[name] = (data[start:start + _nbytes(tensor.type_id, tensor.shape)], tensor.type_id,
                             tensor.shape)
    tensors.update(extra_tensors or {})
    return write_ollama_gguf(destination, values, tensors)
