"""GGUF files the tests write: copies of a real GGUF with changed metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter


def _field_value(field: Any) -> Any:
    kind = field.types[0]
    if kind == GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    if kind == GGUFValueType.ARRAY:
        item = field.types[1]
        if item == GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    return field.parts[field.data[0]].tolist()[0]


def rewrite_gguf(source: Path, destination: Path, set_values: dict[str, tuple[Any, GGUFValueType]],
                 drop: tuple[str, ...] = ()) -> Path:
    """Copy `source` to `destination` with metadata keys set (value, GGUF type) or dropped."""
    reader = GGUFReader(source)
    arch = _field_value(reader.fields["general.architecture"])
    writer = GGUFWriter(destination, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture" or name in drop or name in set_values:
            continue
        kind = field.types[0]
        value = _field_value(field)
        if kind == GGUFValueType.ARRAY:
            writer.add_key_value(name, value, kind, sub_type=field.types[1])
        else:
            writer.add_key_value(name, value, kind)
    for name, (value, kind) in set_values.items():
        writer.add_key_value(name, value, kind)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, np.asarray(tensor.data), raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return destination


def embedding_gguf(source: Path, destination: Path) -> Path:
    """SmolLM2 marked as an embedding model: a pooling type (mean) and no chat template."""
    return rewrite_gguf(source, destination, {"llama.pooling_type": (1, GGUFValueType.UINT32)},
                        drop=("tokenizer.chat_template",))
