"""Tensors whose bytes must be computed: type changes, concatenations, row permutations, reshapes.

Each helper replaces a tensor of a GGUFEdit by one whose `compute` reads the source file when the
derived GGUF is written. Shapes are ggml's (fastest dimension first); numpy arrays are the reverse.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize

from engine.layouts.edit import F16, F32, GGUFEdit, LayoutError, Range, Source, Tensor

BF16 = int(GGMLQuantizationType.BF16)


def read_f32(source: Source, tensor: Tensor) -> np.ndarray:
    """A source tensor's values as float32, flat."""
    if len(tensor.ranges) != 1 or tensor.compute is not None:
        raise LayoutError(f"tensor {tensor.name} is not a plain source tensor")
    raw = np.frombuffer(source.raw(tensor.ranges[0].offset, tensor.ranges[0].size), dtype=np.uint8)
    if tensor.type_id == F32:
        return raw.view("<f4").copy()
    if tensor.type_id == F16:
        return raw.view("<f2").astype(np.float32)
    if tensor.type_id == BF16:
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    return dequantize(raw, GGMLQuantizationType(tensor.type_id)).reshape(-1).astype(np.float32)


def _plain(edit: GGUFEdit, name: str) -> Tensor | None:
    tensor = edit.tensor(name)
    if tensor is None or tensor.compute is not None or len(tensor.ranges) != 1:
        return None
    return Tensor(tensor.name, list(tensor.shape), tensor.type_id, list(tensor.ranges))


def computed(edit: GGUFEdit, name: str, shape: list[int], values: Callable[[Source], np.ndarray],
             *, replaces: str | None = None) -> None:
    """Put an F32 tensor `name` computed by `values` where `replaces` (or `name`) was, or at the end."""
    tensor = Tensor(name, shape, F32, compute=lambda source: np.ascontiguousarray(values(source), "<f4").tobytes())
    old = replaces or name
    if old in edit.tensors:
        edit.tensors = {(name if key == old else key): (tensor if key == old else t)
                        for key, t in edit.tensors.items() if key != name or key == old}
    else:
        edit.add(tensor)


def promote_f32(edit: GGUFEdit, name: str) -> None:
    """An F16 tensor stored as F32 (llama.cpp's converters keep patch and position embeddings F32)."""
    source_tensor = _plain(edit, name)
    if source_tensor is None or source_tensor.type_id != F16:
        return
    computed(edit, name, source_tensor.shape, lambda source: read_f32(source, source_tensor))


def add_one(edit: GGUFEdit, name: str, new_name: str | None = None) -> None:
    """A norm weight stored without Gemma's +1 (llama.cpp's converter adds it), as F32."""
    source_tensor = _plain(edit, name)
    if source_tensor is None:
        return
    computed(edit, new_name or name, source_tensor.shape, lambda source: read_f32(source, source_tensor) + 1.0,
             replaces=name)


def concat_rows(edit: GGUFEdit, name: str, parts: list[str]) -> bool:
    """Stack tensors along their slowest dimension into `name` (taking the first part's place).

    Parts of one type are joined byte for byte (still copied by the kernel); mixed types become F32."""
    tensors = [_plain(edit, part) for part in parts]
    if any(t is None for t in tensors):
        return False
    first = tensors[0]
    assert first is not None
    if any(t.shape[:-1] != first.shape[:-1] for t in tensors if t is not None):
        raise LayoutError(f"cannot join {', '.join(parts)}: their rows differ")
    shape = first.shape[:-1] + [sum(t.shape[-1] for t in tensors if t is not None)]
    for part in parts[1:]:
        edit.drop(part)
    if all(t.type_id == first.type_id for t in tensors if t is not None):
        joined = Tensor(name, shape, first.type_id, [r for t in tensors if t is not None for r in t.ranges])
        edit.tensors = {(name if key == parts[0] else key): (joined if key == parts[0] else t)
                        for key, t in edit.tensors.items()}
        return True
    computed(edit, name, shape, lambda source: np.concatenate([read_f32(source, t) for t in tensors if t]),
             replaces=parts[0])
    return True


def interleave_experts(edit: GGUFEdit, name: str, first: str, second: str) -> bool:
    """[n_embd, n_ff, n_expert] gate and up tensors as one [n_embd, 2*n_ff, n_expert]: per expert, the
    first's rows then the second's (byte ranges of the source, so still a kernel copy)."""
    a, b = _plain(edit, first), _plain(edit, second)
    if a is None or b is None or a.type_id != b.type_id or a.shape != b.shape or len(a.shape) != 3:
        return False
    experts = a.shape[2]
    per_expert = a.ranges[0].size // experts
    ranges = []
    for e in range(experts):
        ranges.append(Range(a.ranges[0].offset + e * per_expert, per_expert))
        ranges.append(Range(b.ranges[0].offset + e * per_expert, per_expert))
    joined = Tensor(name, [a.shape[0], 2 * a.shape[1], experts], a.type_id, ranges)
    edit.drop(second)
    edit.tensors = {(name if key == first else key): (joined if key == first else t)
                    for key, t in edit.tensors.items()}
    return True


def truncate_rows(edit: GGUFEdit, name: str, rows: int) -> None:
    """Keep the first `rows` rows (slowest dimension) of a tensor: a prefix of its bytes."""
    tensor = edit.tensor(name)
    if tensor is None or tensor.shape[-1] <= rows or len(tensor.ranges) != 1:
        return
    tensor.shape = tensor.shape[:-1] + [rows]
    tensor.ranges = [Range(tensor.ranges[0].offset, tensor.nbytes)]


def permute_rope_rows(edit: GGUFEdit, name: str, heads: int) -> None:
    """Reorder the output rows of an F16/F32 Q or K weight from Hugging Face's rotary layout (halves) to
    llama.cpp's (interleaved pairs), as llama.cpp's converter does."""
    source_tensor = _plain(edit, name)
    if source_tensor is None or source_tensor.type_id not in (F16, F32) or source_tensor.shape[-1] % heads:
        return
    rows = source_tensor.shape[-1]
    head_dim = rows // heads

    def values(source: Source) -> np.ndarray:
        matrix = read_f32(source, source_tensor).reshape(rows, -1)
        return matrix.reshape(heads, 2, head_dim // 2, -1).swapaxes(1, 2).reshape(rows, -1)

    computed(edit, name, source_tensor.shape, values)


def split_patch_embedding(edit: GGUFEdit, name: str, channels: int) -> None:
    """A Conv3D patch embedding [w, h, 2 frames, out*in] (Ollama's Qwen-VL layout) as the two Conv2D
    weights [w, h, in, out] llama.cpp reads, `v.patch_embd.weight` and `v.patch_embd.weight.1`."""
    source_tensor = _plain(edit, name)
    if source_tensor is None:
        return
    width, height, frames, packed = (source_tensor.shape + [1, 1, 1, 1])[:4]
    if frames != 2 or packed % channels:
        raise LayoutError(f"{name}: unexpected shape {source_tensor.shape}")
    out = packed // channels

    def frame(index: int) -> Callable[[Source], np.ndarray]:
        def values(source: Source) -> np.ndarray:
            # numpy order of the source: [out, in, frame, h, w]
            array = read_f32(source, source_tensor).reshape(out, channels, frames, height, width)
            return array[:, :, index]
        return values

    shape = [width, height, channels, out]
    computed(edit, "v.patch_embd.weight", shape, frame(0), replaces=name)
    computed(edit, "v.patch_embd.weight.1", shape, frame(1))
