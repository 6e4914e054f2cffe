"""The tensor rewrites of engine/layouts/tensors.py on small known tensors, read back from the GGUF written,
against the layouts llama.cpp's converter produces (conversion/*.py) and Ollama's notes describe."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType
from gguf.quants import dequantize, quantize

from engine.layouts.edit import GGUFEdit
from engine.layouts.tensors import (
    add_one,
    concat_rows,
    interleave_experts,
    permute_rope_rows,
    split_patch_embedding,
    truncate_rows,
)
from engine.layouts.write import write_gguf
from tests.layouts.ollama import write_ollama_gguf

ARCH = {"general.architecture": ("test", GGUFValueType.STRING)}


def rewritten(tmp_path: Path, tensors: dict, change) -> dict[str, np.ndarray]:
    """Write `tensors`, apply `change` to the edit, write the result; its tensors as float arrays (numpy order)."""
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))
    source = write_ollama_gguf(tmp_path / "source.gguf", ARCH, tensors)
    edit = GGUFEdit(source)
    change(edit)
    write_gguf(edit, tmp_path / "out.gguf")
    out = {}
    for t in GGUFReader(tmp_path / "out.gguf").tensors:
        shape = list(reversed([int(n) for n in t.shape]))
        data = np.asarray(t.data)
        if t.tensor_type not in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
            data = dequantize(data, t.tensor_type)
        out[t.name] = np.asarray(data, dtype=np.float32).reshape(shape)
    return out


def test_the_3d_patch_convolution_becomes_two_2d_ones(tmp_path: Path) -> None:
    out_c, in_c, patch = 4, 3, 2
    packed = np.arange(out_c * in_c * 2 * patch * patch, dtype=np.float16).reshape(out_c * in_c, 2, patch, patch)
    got = rewritten(tmp_path, {"v.patch_embed.weight": packed},
                    lambda e: split_patch_embedding(e, "v.patch_embed.weight", in_c))
    source = packed.astype(np.float32).reshape(out_c, in_c, 2, patch, patch)
    assert np.array_equal(got["v.patch_embd.weight"], source[:, :, 0])
    assert np.array_equal(got["v.patch_embd.weight.1"], source[:, :, 1])


def test_rotary_rows_are_permuted_as_llama_cpp_converts_them(tmp_path: Path) -> None:
    heads, head_dim, width = 2, 8, 4
    weight = np.arange(heads * head_dim * width, dtype=np.float16).reshape(heads * head_dim, width)
    got = rewritten(tmp_path, {"q": weight}, lambda e: permute_rope_rows(e, "q", heads))["q"]
    expected = weight.astype(np.float32).reshape(heads, 2, head_dim // 2, width).swapaxes(1, 2).reshape(weight.shape)
    assert np.array_equal(got, expected)
    assert np.array_equal(got[1], weight[head_dim // 2].astype(np.float32))  # row pairs: (0, 4), (1, 5)...


def test_q_k_v_of_one_type_are_joined_as_they_are_and_of_mixed_types_as_f32(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    q, k = (rng.standard_normal((32, 32)).astype(np.float16) for _ in range(2))
    v = rng.standard_normal((32, 32)).astype(np.float32)
    v_q8 = (quantize(v, GGMLQuantizationType.Q8_0).reshape(-1), int(GGMLQuantizationType.Q8_0), [32, 32])
    same = rewritten(tmp_path, {"q": q, "k": k}, lambda e: concat_rows(e, "qk", ["q", "k"]))
    assert np.array_equal(same["qk"], np.concatenate([q, k]).astype(np.float32)) and set(same) == {"qk"}
    mixed = rewritten(tmp_path, {"q": q, "k": k, "v": v_q8}, lambda e: concat_rows(e, "qkv", ["q", "k", "v"]))
    expected_v = dequantize(v_q8[0], GGMLQuantizationType.Q8_0).reshape(32, 32)
    assert np.array_equal(mixed["qkv"], np.concatenate([q.astype(np.float32), k.astype(np.float32), expected_v]))


def test_expert_gate_and_up_are_interleaved_per_expert(tmp_path: Path) -> None:
    gate = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # 2 experts, 3 rows of 4
    up = -gate
    got = rewritten(tmp_path, {"gate": gate, "up": up}, lambda e: interleave_experts(e, "gate_up", "gate", "up"))
    assert np.array_equal(got["gate_up"], np.concatenate([gate, up], axis=1))


def test_vocabulary_rows_are_cut_and_norms_get_one_added(tmp_path: Path) -> None:
    embeddings = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)
    norm = np.full(4, 0.25, np.float32)

    def change(edit: GGUFEdit) -> None:
        truncate_rows(edit, "token_embd.weight", 5)
        add_one(edit, "norm", "norm.weight")

    got = rewritten(tmp_path, {"token_embd.weight": embeddings, "norm": norm}, change)
    assert np.array_equal(got["token_embd.weight"], embeddings[:5])
    assert np.array_equal(got["norm.weight"], norm + 1)


@pytest.mark.parametrize("size", [10, 5000, 70000])
def test_written_file_keeps_every_byte_of_copied_tensors(tmp_path: Path, size: int) -> None:
    data = np.random.default_rng(size).standard_normal(size).astype(np.float32)
    got = rewritten(tmp_path, {"a": data, "v.drop": data[:7], "b": data[::-1].copy()},
                    lambda e: e.drop_prefix("v."))
    assert np.array_equal(got["a"], data) and np.array_equal(got["b"], data[::-1]) and set(got) == {"a", "b"}
