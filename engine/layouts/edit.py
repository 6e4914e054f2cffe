"""An editable view of a GGUF file: its metadata and tensor list, changed in memory, written out by
`engine.layouts.write`. Tensor data is never read here: a tensor names where its bytes come from (ranges
of the source file, or a function that computes them), so unchanged tensors can be copied by the kernel.
"""

from __future__ import annotations

import fnmatch
import mmap
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from modelstore.gguf import GGUFInfo, read_gguf

# GGUF value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR_FORMATS = {UINT8: "B", INT8: "b", UINT16: "H", INT16: "h", UINT32: "I", INT32: "i", FLOAT32: "f",
                   BOOL: "?", UINT64: "Q", INT64: "q", FLOAT64: "d"}
F32 = int(GGMLQuantizationType.F32)
F16 = int(GGMLQuantizationType.F16)


class LayoutError(Exception):
    """A GGUF that cannot be turned into what llama.cpp loads."""


def tensor_nbytes(type_id: int, shape: list[int]) -> int:
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
    elements = 1
    for dim in shape:
        elements *= dim
    if shape and shape[0] % block:
        raise LayoutError(f"a row of {shape[0]} values does not fit blocks of {block}")
    return elements // block * size


def encode_string(text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    return struct.pack("<Q", len(data)) + data


def encode_value(value_type: int, value: Any, item_type: int | None = None) -> bytes:
    """The bytes after a key: the type code, then the value."""
    head = struct.pack("<I", value_type)
    if value_type == STRING:
        return head + encode_string(value)
    if value_type == ARRAY:
        assert item_type is not None
        head += struct.pack("<IQ", item_type, len(value))
        if item_type == STRING:
            return head + b"".join(encode_string(v) for v in value)
        return head + np.asarray(value, dtype=np.dtype("<" + _SCALAR_FORMATS[item_type])).tobytes()
    return head + struct.pack("<" + _SCALAR_FORMATS[value_type], value)


@dataclass
class Range:
    """Bytes [offset, offset + size) of the source file."""

    offset: int
    size: int


@dataclass
class Tensor:
    name: str
    shape: list[int]  # ggml order: the fastest-moving dimension first
    type_id: int
    # Where the data comes from: source ranges, concatenated, or a function of the source file.
    ranges: list[Range] = field(default_factory=list)
    compute: Callable[[Source], bytes] | None = None

    @property
    def nbytes(self) -> int:
        return tensor_nbytes(self.type_id, self.shape)


class Source:
    """The source GGUF, mapped read-only, for computed tensors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "rb")
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)

    def raw(self, offset: int, size: int) -> memoryview:
        return memoryview(self._map)[offset:offset + size]

    def close(self) -> None:
        self._map.close()
        self._file.close()


class GGUFEdit:
    """Metadata and tensors of a GGUF to write. Keys keep the source's order; new keys go last."""

    def __init__(self, path: Path, info: GGUFInfo | None = None) -> None:
        self.path = Path(path)
        self.info = info if info is not None else read_gguf(path)
        with open(self.path, "rb") as f:
            self._header = f.read(self.info.data_offset)  # every key's encoded value lies in here
        if self._header[:4] != b"GGUF" or self.info.version < 2 or self.info.version & 0xFFFF == 0:
            raise LayoutError("only little-endian GGUF v2/v3 files are translated")
        self._values: dict[str, Any] = {}  # decoded values of keys that were set here
        self._payloads: dict[str, Range | bytes] = {}  # encoded type + value of every key
        self.tensors: dict[str, Tensor] = {}
        self.alignment = self.info.kv.get("general.alignment", 32)
        for key, (start, end) in self.info.kv_spans.items():
            key_bytes = len(key.encode("utf-8", "surrogateescape"))
            self._payloads[key] = Range(start + 8 + key_bytes, end - start - 8 - key_bytes)
        for t in self.info.tensors:
            shape = list(t.shape)
            self.tensors[t.name] = Tensor(t.name, shape, t.type_id,
                                          [Range(self.info.data_offset + t.offset, tensor_nbytes(t.type_id, shape))])

    # --- metadata ---------------------------------------------------------------------------------

    @property
    def arch(self) -> str:
        return str(self.get("general.architecture", ""))

    def keys(self) -> list[str]:
        return list(self._payloads)

    def has(self, key: str) -> bool:
        return key in self._payloads

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._values:
            return self._values[key]
        if key in self._payloads:
            return self.info.kv.get(key, default)
        return default

    def item_type(self, key: str) -> int | None:
        payload = self.payload(key)
        if payload is None or struct.unpack_from("<I", payload)[0] != ARRAY:
            return None
        return struct.unpack_from("<I", payload, 4)[0]

    def payload(self, key: str) -> bytes | None:
        """The encoded type and value of `key`."""
        entry = self._payloads.get(key)
        if entry is None or isinstance(entry, bytes):
            return entry
        return self._header[entry.offset:entry.offset + entry.size]

    def set(self, key: str, value_type: int, value: Any, item_type: int | None = None) -> None:
        self._payloads[key] = encode_value(value_type, value, item_type)
        self._values[key] = value

    def set_str(self, key: str, value: str) -> None:
        self.set(key, STRING, value)

    def set_u32(self, key: str, value: int) -> None:
        self.set(key, UINT32, int(value))

    def set_f32(self, key: str, value: float) -> None:
        self.set(key, FLOAT32, float(value))

    def set_bool(self, key: str, value: bool) -> None:
        self.set(key, BOOL, bool(value))

    def set_array(self, key: str, item_type: int, values: Iterable[Any]) -> None:
        self.set(key, ARRAY, list(values), item_type)

    def inject(self, key: str, value_type: int, value: Any, item_type: int | None = None) -> None:
        if not self.has(key):
            self.set(key, value_type, value, item_type)

    def remove(self, key: str) -> None:
        self._payloads.pop(key, None)
        self._values.pop(key, None)

    def copy(self, source_key: str, key: str) -> None:
        """`key` takes `source_key`'s type and value, unless `key` is already there."""
        if self.has(key) or not self.has(source_key):
            return
        self._payloads[key] = self._payloads[source_key]
        if source_key in self._values:
            self._values[key] = self._values[source_key]
        elif source_key in self.info.kv:
            self._values[key] = self.info.kv[source_key]

    def move_prefix(self, old: str, new: str, *, skip: tuple[str, ...] = ()) -> None:
        """Rename every `old…` key to `new…` (a key already there keeps its value); keys whose rest
        starts with one of `skip` are dropped."""
        for key in [k for k in self.keys() if k.startswith(old)]:
            if not skip or not key[len(old):].startswith(skip):
                self.copy(key, new + key[len(old):])
            self.remove(key)

    def truncate_array(self, key: str, length: int) -> None:
        values = self.get(key)
        item = self.item_type(key)
        if isinstance(values, list) and item is not None and len(values) > length:
            self.set_array(key, item, values[:length])

    def keep_only(self, patterns: Iterable[str]) -> None:
        """Drop every key matching none of the glob patterns."""
        patterns = list(patterns)
        for key in self.keys():
            if not any(fnmatch.fnmatchcase(key, p) for p in patterns):
                self.remove(key)

    # --- tensors ----------------------------------------------------------------------------------

    def tensor(self, name: str) -> Tensor | None:
        return self.tensors.get(name)

    def has_prefix(self, prefix: str) -> bool:
        return any(name.startswith(prefix) for name in self.tensors)

    def drop(self, name: str) -> None:
        self.tensors.pop(name, None)

    def drop_prefix(self, *prefixes: str) -> None:
        for name in [n for n in self.tensors if n.startswith(prefixes)]:
            del self.tensors[name]

    def keep_prefix(self, *prefixes: str) -> None:
        for name in [n for n in self.tensors if not n.startswith(prefixes)]:
            del self.tensors[name]

    def rename(self, old: str, new: str) -> None:
        tensor = self.tensors.get(old)
        if tensor is None or new in self.tensors:
            return
        tensor.name = new
        self.tensors = {(new if name == old else name): t for name, t in self.tensors.items()}

    def rename_containing(self, needle: str, replacement: str) -> None:
        """Replace the first `needle` in every tensor name that has one."""
        for name in [n for n in self.tensors if needle in n]:
            self.rename(name, name.replace(needle, replacement, 1))

    def add(self, tensor: Tensor) -> None:
        self.tensors[tensor.name] = tensor
