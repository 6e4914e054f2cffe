"""Write a GGUFEdit as a new GGUF file.

Tensors whose bytes lie in the source unchanged are copied with copy_file_range: the data never passes
through Python, and a filesystem with reflinks (XFS, btrfs) shares the blocks instead of copying them
where the source and destination offsets are block-aligned alike. The header is padded so that the
largest such run of tensors sits at the same offset modulo 4096 as in the source.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from engine.layouts.edit import STRING, GGUFEdit, LayoutError, Source, encode_string

BLOCK = 4096
PADDING_KEY = "pollama.padding"  # filler that places the data section for block-aligned copies
_COPY_CHUNK = 1 << 30


def _pad(n: int, alignment: int) -> int:
    return n + (-n % alignment)


@dataclass
class _Run:
    """Adjacent tensors copied in one go: source bytes [source, source+size) to data offset `dest`."""

    source: int
    dest: int
    size: int


def _runs(edit: GGUFEdit, offsets: dict[str, int]) -> list[_Run]:
    runs: list[_Run] = []
    for tensor in edit.tensors.values():
        if tensor.compute is not None:
            continue
        dest = offsets[tensor.name]
        for piece in tensor.ranges:
            last = runs[-1] if runs else None
            if last is not None and piece.offset - last.source == dest - last.dest and dest >= last.dest + last.size:
                last.size = dest + piece.size - last.dest
            else:
                runs.append(_Run(piece.offset, dest, piece.size))
            dest += piece.size
    return runs


def _header(edit: GGUFEdit, offsets: dict[str, int], padding: int | None) -> bytes:
    keys = [k for k in edit.keys() if k != PADDING_KEY]
    parts = [b"GGUF", struct.pack("<IQQ", 3, len(edit.tensors), len(keys) + (padding is not None))]
    for key in keys:
        payload = edit.payload(key)
        assert payload is not None
        parts.append(encode_string(key) + payload)
    if padding is not None:
        parts.append(encode_string(PADDING_KEY) + struct.pack("<I", STRING) + encode_string(" " * padding))
    for tensor in edit.tensors.values():
        parts.append(encode_string(tensor.name) + struct.pack("<I", len(tensor.shape)))
        parts.append(struct.pack(f"<{len(tensor.shape)}Q", *tensor.shape))
        parts.append(struct.pack("<IQ", tensor.type_id, offsets[tensor.name]))
    return b"".join(parts)


def _copy(source_fd: int, dest_fd: int, source_offset: int, dest_offset: int, size: int) -> None:
    """Copy a range between files. Where both offsets sit alike within a block, the block-aligned middle
    goes in a call of its own: a filesystem shares blocks only for whole, aligned blocks."""
    if (source_offset - dest_offset) % BLOCK == 0 and size > 2 * BLOCK:
        head = -source_offset % BLOCK
        body = (size - head) // BLOCK * BLOCK
        for start, length in ((0, head), (head, body), (head + body, size - head - body)):
            if length:
                _copy_range(source_fd, dest_fd, source_offset + start, dest_offset + start, length)
    else:
        _copy_range(source_fd, dest_fd, source_offset, dest_offset, size)


def _copy_range(source_fd: int, dest_fd: int, source_offset: int, dest_offset: int, size: int) -> None:
    done = 0
    while done < size:
        count = min(size - done, _COPY_CHUNK)
        try:
            n = os.copy_file_range(source_fd, dest_fd, count, source_offset + done, dest_offset + done)
        except OSError:  # a filesystem pair the kernel cannot copy between: copy through a buffer
            n = 0
        if n <= 0:
            data = os.pread(source_fd, min(count, 16 << 20), source_offset + done)
            if not data:
                raise LayoutError("the source GGUF is shorter than its header says")
            n = os.pwrite(dest_fd, data, dest_offset + done)
        done += n


def write_gguf(edit: GGUFEdit, destination: Path) -> int:
    """Write the edit to `destination` (which must not exist); returns its size in bytes."""
    alignment = edit.alignment
    offsets: dict[str, int] = {}
    position = 0
    for tensor in edit.tensors.values():
        offsets[tensor.name] = position
        position = _pad(position + tensor.nbytes, alignment)
    data_size = position
    runs = _runs(edit, offsets)
    header = _header(edit, offsets, None)
    data_start = _pad(len(header), alignment)
    largest = max(runs, key=lambda r: r.size, default=None)
    if largest is not None and largest.size >= 2 * BLOCK:  # a run with whole blocks to share
        want = (largest.source - largest.dest) % BLOCK
        if data_start % BLOCK != want and want % alignment == 0 and BLOCK % alignment == 0:
            bare = len(_header(edit, offsets, 0))
            data_start = bare + (want - bare) % BLOCK
            header = _header(edit, offsets, data_start - bare)
    source = Source(edit.path)
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.ftruncate(fd, data_start + data_size)
        os.pwrite(fd, header, 0)
        with open(edit.path, "rb") as src:
            for run in runs:
                _copy(src.fileno(), fd, run.source, data_start + run.dest, run.size)
        for tensor in edit.tensors.values():
            if tensor.compute is None:
                continue
            data = tensor.compute(source)
            if len(data) != tensor.nbytes:
                raise LayoutError(f"tensor {tensor.name}: computed {len(data)} bytes, expected {tensor.nbytes}")
            os.pwrite(fd, data, data_start + offsets[tensor.name])
        os.fsync(fd)
    finally:
        os.close(fd)
        source.close()
    return data_start + data_size
