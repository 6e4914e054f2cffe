"""Reading tensors from safetensors files without torch: a JSON header, then raw little-endian data."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.convert.errors import ConvertError

# dtype -> (numpy dtype of the stored bytes, bytes per element)
_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_MAX_HEADER = 100 << 20


@dataclass
class SafeTensor:
    """One tensor of a safetensors file; `name` is the source name (before any renaming)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    path: Path
    offset: int  # absolute, in the file
    nbytes: int

    def raw(self) -> np.ndarray:
        """The stored values, memory-mapped (BF16 as uint16 bit patterns)."""
        if self.dtype not in _DTYPES:
            raise ConvertError(f"unknown data type: {self.dtype}")
        dtype = _DTYPES[self.dtype]
        count = int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1
        if count * dtype.itemsize != self.nbytes:
            raise ConvertError(f"{self.path.name}: tensor {self.name} has {self.nbytes} bytes for shape {self.shape}")
        if count == 0:
            return np.zeros(self.shape, dtype=dtype)
        data = np.memmap(self.path, dtype=dtype, mode="r", offset=self.offset, shape=(count,))
        return data.reshape(self.shape or (1,))

    def float32(self) -> np.ndarray:
        """The values as float32 (BF16 widened exactly)."""
        data = self.raw()
        if self.dtype == "BF16":
            return (data.astype(np.uint32) << 16).view(np.float32)
        if self.dtype in ("F32", "F16", "F64"):
            return np.asarray(data, dtype=np.float32)
        raise ConvertError(f"unknown data type: {self.dtype}")


def read_header(path: Path) -> list[SafeTensor]:
    """The tensors of one file, sorted by name (Ollama sorts the header keys)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ConvertError(f"{path.name}: not a safetensors file")
        (size,) = struct.unpack("<Q", head)
        if size > _MAX_HEADER:
            raise ConvertError(f"{path.name}: safetensors header too large")
        try:
            header = json.loads(f.read(size))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConvertError(f"{path.name}: invalid safetensors header: {e}") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{path.name}: invalid safetensors header")
    base = 8 + size
    tensors = []
    for name in sorted(header):
        entry = header[name]
        if name == "__metadata__" or not isinstance(entry, dict) or not entry.get("dtype"):
            continue
        try:
            start, end = (int(v) for v in entry["data_offsets"])
            shape = tuple(int(d) for d in entry.get("shape", []))
        except (KeyError, TypeError, ValueError):
            raise ConvertError(f"{path.name}: invalid entry for tensor {name}") from None
        tensors.append(SafeTensor(name, str(entry["dtype"]), shape or (1,), path, base + start, end - start))
    return tensors


def read_safetensors(paths: list[Path]) -> list[SafeTensor]:
    tensors = []
    for path in sorted(paths):
        tensors += read_header(path)
    return tensors
