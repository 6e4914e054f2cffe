"""GGUF header reader (`fs/ggml/gguf.go`): metadata and tensor descriptors, never tensor data.

The file is memory-mapped and only the header pages are touched. Numeric arrays are decoded with
numpy in one call; float32 values come back as `Float32` so JSON shows them as Go does.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelstore.gojson import Float32

MAGIC_LE = b"GGUF"
MAGIC_BE = b"FUGG"  # the magic as a big-endian file's reader sees it (Ollama's FILE_MAGIC_GGUF_BE)
DEFAULT_ALIGNMENT = 32
# Ollama's limits (fs/gguf): they keep a corrupt header from asking for absurd allocations.
MAX_ARRAY_SIZE = 64 << 20
MAX_TENSOR_DIMS = 4

# GGUF value type codes (gguf spec / ggufType* constants).
_TYPE_UINT8, _TYPE_INT8, _TYPE_UINT16, _TYPE_INT16, _TYPE_UINT32, _TYPE_INT32 = range(6)
_TYPE_FLOAT32, _TYPE_BOOL, _TYPE_STRING, _TYPE_ARRAY, _TYPE_UINT64, _TYPE_INT64, _TYPE_FLOAT64 = range(6, 13)

_SCALAR_FORMATS = {
    _TYPE_UINT8: "B", _TYPE_INT8: "b", _TYPE_UINT16: "H", _TYPE_INT16: "h", _TYPE_UINT32: "I",
    _TYPE_INT32: "i", _TYPE_FLOAT32: "f", _TYPE_BOOL: "?", _TYPE_UINT64: "Q", _TYPE_INT64: "q",
    _TYPE_FLOAT64: "d",
}
_INTEGER_TYPES = {_TYPE_UINT8, _TYPE_INT8, _TYPE_UINT16, _TYPE_INT16, _TYPE_UINT32, _TYPE_INT32,
                  _TYPE_UINT64, _TYPE_INT64}

# Ollama's FileType.String() (fs/ggml/type.go); anything else is "unknown".
_FILE_TYPE_NAMES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "MXFP4", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
    18: "Q6_K", 21: "Q2_K_S", 32: "BF16",
}
# Ollama's TensorType.String(); ggml types it does not name are "unknown".
_GGML_TYPE_NAMES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "MXFP4", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 28: "F64", 30: "BF16",
    39: "MXFP4",
}


class GGUFError(ValueError):
    """Not a GGUF file, or a header that cannot be decoded."""


def file_type_name(file_type: int) -> str:
    return _FILE_TYPE_NAMES.get(file_type, "unknown")


def ggml_type_name(tensor_type: int) -> str:
    return _GGML_TYPE_NAMES.get(tensor_type, "unknown")


def human_number(n: int) -> str:
    """Ollama's format.HumanNumber: `8B`, `7.6B`, `135M`, `134.52M`, `567K`, `0`."""
    if n >= 1_000_000_000:
        value = n / 1_000_000_000
        return f"{value:.0f}B" if value.is_integer() else f"{value:.1f}B"
    if n >= 1_000_000:
        value = n / 1_000_000
        return f"{value:.0f}M" if value.is_integer() else f"{value:.2f}M"
    if n >= 1_000:
        return f"{n / 1_000:.0f}K"
    return str(n)


def is_gguf(path_or_first_bytes: str | os.PathLike[str] | bytes) -> bool:
    """Whether a file (or its first bytes) starts with a GGUF magic, either byte order."""
    if isinstance(path_or_first_bytes, bytes | bytearray):
        head = bytes(path_or_first_bytes[:4])
    else:
        try:
            with open(path_or_first_bytes, "rb") as f:
                head = f.read(4)
        except OSError:
            return False
    return head in (MAGIC_LE, MAGIC_BE)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    type_name: str
    shape: list[int]
    type_id: int = 0
    offset: int = 0  # relative to the data section

    @property
    def elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass
class GGUFInfo:
    version: int
    kv: dict[str, Any]
    tensors: list[TensorInfo]
    data_offset: int
    value_types: dict[str, int] = field(default_factory=dict, repr=False)  # GGUF type code per key
    # Where each key's encoded entry (key, type, value) lies in the file: [start, end), for copying it as is.
    kv_spans: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    @property
    def architecture(self) -> str:
        value = self.kv.get("general.architecture")
        return value if isinstance(value, str) else "unknown"

    @property
    def parameter_count(self) -> int:
        """Sum of tensor elements; Ollama reports this instead of `general.parameter_count`."""
        return sum(tensor.elements for tensor in self.tensors)

    @property
    def file_type(self) -> int | None:
        value = self.kv.get("general.file_type")
        return value if self.value_types.get("general.file_type") in _INTEGER_TYPES else None

    def key(self, name: str) -> Any:
        """Value of `name`, prefixed with the architecture unless it is a general./tokenizer. key."""
        if not name.startswith(("general.", "tokenizer.")):
            name = f"{self.architecture}.{name}"
        return self.kv.get(name)

    def _int_key(self, name: str) -> int | None:
        value = self.key(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def context_length(self) -> int | None:
        return self._int_key("context_length")

    @property
    def embedding_length(self) -> int | None:
        return self._int_key("embedding_length")

    def show_model_info(self, *, verbose: bool) -> dict[str, Any]:
        """`/api/show` `model_info`: the KV map with the computed parameter count, without
        `general.name` and `tokenizer.chat_template`; unless verbose, non-empty arrays are None
        (Go skips reading them and marshals the nil slice as null)."""
        info = {key: value for key, value in self.kv.items()
                if key not in ("general.name", "tokenizer.chat_template")}
        info["general.parameter_count"] = self.parameter_count
        if not verbose:
            for key, value in info.items():
                if isinstance(value, list) and value:
                    info[key] = None
        return info


def _split_strings(region: np.ndarray, prefix_offsets: np.ndarray, n: int) -> list[str] | None:
    """Turn `len|text|len|text…` into `\0text\0text…` and decode it in one call.

    Returns None when a text holds a NUL byte, which would break the split.
    """
    region[prefix_offsets] = 0
    keep = np.ones(region.size, dtype=bool)
    for byte_index in range(1, 8):
        keep[prefix_offsets + byte_index] = False
    joined = region[keep].tobytes()
    if joined.count(0) != n:
        return None
    return joined.decode("utf-8", "surrogateescape").split("\0")[1:]


class _Reader:
    """Cursor over the mapped header."""

    def __init__(self, buffer: mmap.mmap, byte_order: str) -> None:
        self.buffer = buffer
        self.order = byte_order
        self.pos = 0
        self.version = 3
        self._u64 = struct.Struct(byte_order + "Q")

    def scalar(self, fmt: str) -> Any:
        value = self.scalar_at(fmt, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return value

    def count(self) -> int:
        """Header counts are uint32 in GGUF v1, uint64 later."""
        return self.scalar("I" if self.version == 1 else "Q")

    def string(self) -> str:
        text = self._text_at(self.pos)
        self.pos += 8 + self.scalar_at("Q", self.pos)
        return text

    def scalar_at(self, fmt: str, offset: int) -> Any:
        try:
            return struct.unpack_from(self.order + fmt, self.buffer, offset)[0]
        except struct.error as exc:
            raise GGUFError("unexpected end of GGUF header") from exc

    def _text_at(self, offset: int) -> str:
        """The string whose uint64 length prefix starts at offset."""
        length = self.scalar_at("Q", offset)
        if offset + 8 + length > len(self.buffer):
            raise GGUFError("unexpected end of GGUF header")
        raw = self.buffer[offset + 8 : offset + 8 + length]
        if self.version == 1:  # v1 strings carry a NUL terminator
            if not raw or raw[-1] != 0:
                raise GGUFError("invalid GGUF v1 string terminator")
            raw = raw[:-1]
        return raw.decode("utf-8", "surrogateescape")

    def strings(self, n: int) -> list[str]:
        """A string array. Tokenizer vocabularies make this the hot path, so the loop only finds
        where each string starts; the texts are then cut out and decoded in bulk."""
        buffer, unpack_u64, start = self.buffer, self._u64.unpack_from, self.pos
        if start + 8 * n > len(buffer):
            raise GGUFError("unexpected end of GGUF header")
        prefix_offsets = [0] * n
        pos = start
        try:
            for index in range(n):
                (length,) = unpack_u64(buffer, pos)
                prefix_offsets[index] = pos
                pos += 8 + length
        except struct.error as exc:
            raise GGUFError("unexpected end of GGUF header") from exc
        if pos > len(buffer):
            raise GGUFError("unexpected end of GGUF header")
        self.pos = pos
        if self.version > 1 and n:
            region = np.frombuffer(buffer, np.uint8, count=pos - start, offset=start).copy()
            texts = _split_strings(region, np.asarray(prefix_offsets, dtype=np.int64) - start, n)
            if texts is not None:
                return texts
        return [self._text_at(offset) for offset in prefix_offsets]

    def array(self) -> list[Any]:
        item_type = self.scalar("I")
        n = self.scalar("Q")
        if n > MAX_ARRAY_SIZE:
            raise GGUFError(f"GGUF array size {n} exceeds maximum {MAX_ARRAY_SIZE}")
        if item_type == _TYPE_STRING:
            return self.strings(n)
        if item_type == _TYPE_ARRAY:
            return [self.value(_TYPE_ARRAY) for _ in range(n)]
        fmt = _SCALAR_FORMATS.get(item_type)
        if fmt is None:
            raise GGUFError(f"invalid array type: {item_type}")
        dtype = np.dtype(self.order + fmt)
        end = self.pos + n * dtype.itemsize
        if end > len(self.buffer):
            raise GGUFError("unexpected end of GGUF header")
        values = np.frombuffer(self.buffer, dtype=dtype, count=n, offset=self.pos).tolist()
        self.pos = end
        if item_type == _TYPE_FLOAT32:
            return [Float32(v) for v in values]
        return values

    def value(self, value_type: int) -> Any:
        if value_type == _TYPE_STRING:
            return self.string()
        if value_type == _TYPE_ARRAY:
            return self.array()
        fmt = _SCALAR_FORMATS.get(value_type)
        if fmt is None:
            raise GGUFError(f"invalid type: {value_type}")
        value = self.scalar(fmt)
        return Float32(value) if value_type == _TYPE_FLOAT32 else value


def _decode(buffer: mmap.mmap) -> GGUFInfo:
    magic = buffer[:4]
    if magic not in (MAGIC_LE, MAGIC_BE):
        raise GGUFError("not a GGUF file")
    reader = _Reader(buffer, "<" if magic == MAGIC_LE else ">")
    reader.pos = 4
    reader.version = reader.scalar("I")
    if magic == MAGIC_LE and reader.version & 0xFFFF == 0:
        # llama.cpp's big-endian files keep the "GGUF" magic; only the version shows the byte order.
        reader = _Reader(buffer, ">")
        reader.pos = 4
        reader.version = reader.scalar("I")
    n_tensors = reader.count()
    n_kv = reader.count()
    if n_tensors > len(buffer) or n_kv > len(buffer):
        raise GGUFError("GGUF header counts exceed the file size")

    kv: dict[str, Any] = {}
    value_types: dict[str, int] = {}
    kv_spans: dict[str, tuple[int, int]] = {}
    for _ in range(n_kv):
        start = reader.pos
        key = reader.string()
        value_type = reader.scalar("I")
        kv[key] = reader.value(value_type)
        value_types[key] = value_type
        kv_spans[key] = (start, reader.pos)

    tensors = []
    for _ in range(n_tensors):
        name = reader.string()
        n_dims = reader.scalar("I")
        if n_dims > MAX_TENSOR_DIMS:
            raise GGUFError(f"tensor {name!r} dimensions {n_dims} exceeds maximum {MAX_TENSOR_DIMS}")
        shape = [reader.scalar("Q") for _ in range(n_dims)]
        type_id = reader.scalar("I")
        offset = reader.scalar("Q")
        tensors.append(TensorInfo(name, ggml_type_name(type_id), shape, type_id, offset))

    alignment = kv.get("general.alignment", DEFAULT_ALIGNMENT)
    if value_types.get("general.alignment") != _TYPE_UINT32:
        alignment = DEFAULT_ALIGNMENT
    if alignment == 0:
        raise GGUFError("invalid GGUF alignment: 0")
    data_offset = reader.pos + (-reader.pos % alignment)
    return GGUFInfo(reader.version, kv, tensors, data_offset, value_types, kv_spans)


_CACHE_SIZE = 16
_cache: OrderedDict[tuple[str, int, int], GGUFInfo] = OrderedDict()
_cache_lock = threading.Lock()


def read_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Decode a GGUF header; results are cached per (path, mtime, size)."""
    path = Path(path)
    stat = path.stat()
    cache_key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        if cache_key in _cache:
            _cache.move_to_end(cache_key)
            return _cache[cache_key]
    if stat.st_size < 8:
        raise GGUFError("not a GGUF file")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
        info = _decode(buffer)
    with _cache_lock:
        _cache[cache_key] = info
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return info
