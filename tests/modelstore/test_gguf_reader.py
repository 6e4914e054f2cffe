"""GGUF header reader on files written by the `gguf` package, the minimal probe file and SmolLM2."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import gguf as gguf_writer
import numpy as np
import pytest

from modelstore.gguf import (
    GGUFError,
    file_type_name,
    ggml_type_name,
    human_number,
    is_gguf,
    read_gguf,
)
from modelstore.gojson import Float32, dumps

V = gguf_writer.GGUFValueType
Q = gguf_writer.GGMLQuantizationType


def write_test_gguf(path: Path, *, endianess: gguf_writer.GGUFEndian = gguf_writer.GGUFEndian.LITTLE,
                    file_type: int = 15) -> Path:
    writer = gguf_writer.GGUFWriter(path, "llama", endianess=endianess)
    writer.add_uint32("general.file_type", file_type)
    writer.add_string("general.name", "Tiny Test")
    writer.add_uint32("llama.context_length", 4096)
    writer.add_uint64("llama.embedding_length", 64)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_float64("test.f64", 0.1)
    writer.add_bool("test.bool", True)
    writer.add_int8("test.i8", -8)
    writer.add_uint8("test.u8", 250)
    writer.add_int16("test.i16", -1600)
    writer.add_uint16("test.u16", 60000)
    writer.add_int32("test.i32", -2_000_000)
    writer.add_int64("test.i64", -(2**40))
    writer.add_key_value("test.i32s", [1, -2, 3], V.ARRAY, sub_type=V.INT32)
    writer.add_key_value("test.f32s", [0.5, 0.1], V.ARRAY, sub_type=V.FLOAT32)
    writer.add_key_value("test.bools", [True, False], V.ARRAY, sub_type=V.BOOL)
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "héllo", "日本", ""])
    writer.add_string("tokenizer.chat_template", "{{ messages }}")
    writer.add_tensor("token_embd.weight", np.zeros((8, 64), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float16))
    # a quantized tensor: 2 rows of one 32-element Q8_0 block (34 bytes each)
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((2, 34), dtype=np.uint8), raw_dtype=Q.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_kv_types_arrays_and_tensors(tmp_path: Path) -> None:
    info = read_gguf(write_test_gguf(tmp_path / "t.gguf"))
    kv = info.kv
    assert info.version == 3
    assert info.architecture == "llama"
    assert kv["general.name"] == "Tiny Test"
    assert kv["llama.embedding_length"] == 64
    assert isinstance(kv["llama.attention.layer_norm_rms_epsilon"], Float32)
    assert kv["llama.attention.layer_norm_rms_epsilon"] == float(np.float32(1e-5))
    assert kv["test.f64"] == 0.1 and not isinstance(kv["test.f64"], Float32)
    assert kv["test.bool"] is True
    assert (kv["test.i8"], kv["test.u8"], kv["test.i16"], kv["test.u16"]) == (-8, 250, -1600, 60000)
    assert (kv["test.i32"], kv["test.i64"]) == (-2_000_000, -(2**40))
    assert kv["test.i32s"] == [1, -2, 3]
    assert kv["test.f32s"] == [0.5, float(np.float32(0.1))]
    assert kv["test.bools"] == [True, False]
    assert kv["tokenizer.ggml.tokens"] == ["<s>", "</s>", "héllo", "日本", ""]

    assert [(t.name, t.type_name, t.shape) for t in info.tensors] == [
        ("token_embd.weight", "F32", [64, 8]),
        ("output_norm.weight", "F16", [64]),
        ("blk.0.attn_q.weight", "Q8_0", [32, 2]),
    ]
    assert info.parameter_count == 64 * 8 + 64 + 64
    assert info.data_offset % 32 == 0
    assert info.tensors[0].offset == 0


def test_key_lookup_helpers(tmp_path: Path) -> None:
    info = read_gguf(write_test_gguf(tmp_path / "t.gguf"))
    assert info.key("context_length") == 4096
    assert info.key("general.name") == "Tiny Test"
    assert info.key("tokenizer.chat_template") == "{{ messages }}"
    assert info.key("missing") is None
    assert (info.context_length, info.embedding_length) == (4096, 64)
    assert info.file_type == 15
    assert file_type_name(info.file_type) == "Q4_K_M"


def test_big_endian_files(tmp_path: Path) -> None:
    # llama.cpp keeps the "GGUF" magic bytes; Ollama's reader expects them swapped ("FUGG").
    llama_cpp_style = write_test_gguf(tmp_path / "be.gguf", endianess=gguf_writer.GGUFEndian.BIG)
    ollama_style = tmp_path / "fugg.gguf"
    ollama_style.write_bytes(b"FUGG" + llama_cpp_style.read_bytes()[4:])
    for path in (llama_cpp_style, ollama_style):
        info = read_gguf(path)
        assert info.kv["test.i32s"] == [1, -2, 3]
        assert info.kv["tokenizer.ggml.tokens"][2] == "héllo"
        assert info.context_length == 4096
        assert info.tensors[2].shape == [32, 2]


def test_show_model_info_arrays_and_json(tmp_path: Path) -> None:
    info = read_gguf(write_test_gguf(tmp_path / "t.gguf"))
    brief = info.show_model_info(verbose=False)
    assert "general.name" not in brief and "tokenizer.chat_template" not in brief
    assert brief["general.parameter_count"] == info.parameter_count
    assert brief["tokenizer.ggml.tokens"] is None  # probe 52
    text = dumps(brief, sort_keys=True)
    assert '"llama.attention.layer_norm_rms_epsilon":0.00001' in text
    assert '"tokenizer.ggml.tokens":null' in text
    assert info.show_model_info(verbose=True)["tokenizer.ggml.tokens"][1] == "</s>"
    assert info.kv["tokenizer.ggml.tokens"], "the cached kv is not modified"


def test_minimal_probe_file(tmp_path: Path, make_minimal_gguf) -> None:
    path = tmp_path / "minimal.gguf"
    path.write_bytes(make_minimal_gguf())
    info = read_gguf(path)
    assert len(path.read_bytes()) == 68
    assert info.kv == {"general.architecture": "test"}
    assert info.tensors == [] and info.parameter_count == 0
    assert info.file_type is None
    assert human_number(info.parameter_count) == "0"


def test_empty_array_stays_an_empty_list_when_not_verbose(tmp_path: Path) -> None:
    key = b"tokenizer.ggml.merges"
    data = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
            + struct.pack("<IIQ", 9, 8, 0))
    path = tmp_path / "empty.gguf"
    path.write_bytes(data)
    info = read_gguf(path)
    assert info.kv == {key.decode(): []}
    assert info.show_model_info(verbose=False)[key.decode()] == []


def test_v1_strings_are_nul_terminated(tmp_path: Path) -> None:
    key, value = b"general.architecture\x00", b"old\x00"
    data = (b"GGUF" + struct.pack("<III", 1, 0, 1) + struct.pack("<Q", len(key)) + key
            + struct.pack("<IQ", 8, len(value)) + value)
    path = tmp_path / "v1.gguf"
    path.write_bytes(data)
    assert read_gguf(path).kv == {"general.architecture": "old"}


def test_string_array_with_nul_bytes(tmp_path: Path) -> None:
    writer = gguf_writer.GGUFWriter(tmp_path / "nul.gguf", "llama")
    writer.add_array("tokenizer.ggml.tokens", ["a\x00b", "\x00", "c"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    assert read_gguf(tmp_path / "nul.gguf").kv["tokenizer.ggml.tokens"] == ["a\x00b", "\x00", "c"]


def test_truncated_and_foreign_files(tmp_path: Path) -> None:
    good = write_test_gguf(tmp_path / "t.gguf").read_bytes()
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(good[:200])
    with pytest.raises(GGUFError):
        read_gguf(truncated)
    foreign = tmp_path / "x.bin"
    foreign.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(GGUFError):
        read_gguf(foreign)
    assert not is_gguf(foreign)
    assert is_gguf(truncated)
    assert is_gguf(b"GGUF\x03\x00") and is_gguf(b"FUGG") and not is_gguf(b"GGU")
    assert not is_gguf(tmp_path / "absent")


def test_absurd_counts_are_rejected_without_allocating(tmp_path: Path) -> None:
    key = b"tokenizer.ggml.tokens"
    huge_array = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
                  + struct.pack("<IIQ", 9, 8, 2**40))
    many_kv = b"GGUF" + struct.pack("<IQQ", 3, 0, 2**50)
    for index, data in enumerate((huge_array, many_kv)):
        path = tmp_path / f"bad{index}.gguf"
        path.write_bytes(data)
        with pytest.raises(GGUFError):
            read_gguf(path)


def test_cache_follows_mtime(tmp_path: Path) -> None:
    path = write_test_gguf(tmp_path / "t.gguf")
    first = read_gguf(path)
    assert read_gguf(path) is first
    write_test_gguf(path, file_type=7)
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))
    second = read_gguf(path)
    assert second is not first and file_type_name(second.file_type) == "Q8_0"


@pytest.mark.parametrize(("code", "name"), [(0, "F32"), (1, "F16"), (2, "Q4_0"), (3, "Q4_1"), (4, "MXFP4"),
                                            (5, "unknown"), (7, "Q8_0"), (8, "Q5_0"), (10, "Q2_K"),
                                            (11, "Q3_K_S"), (14, "Q4_K_S"), (15, "Q4_K_M"), (17, "Q5_K_M"),
                                            (18, "Q6_K"), (19, "unknown"), (21, "Q2_K_S"), (32, "BF16"),
                                            (1024, "unknown")])
def test_file_type_names(code: int, name: str) -> None:
    assert file_type_name(code) == name


@pytest.mark.parametrize(("code", "name"), [(0, "F32"), (1, "F16"), (2, "Q4_0"), (3, "Q4_1"), (6, "Q5_0"),
                                            (8, "Q8_0"), (10, "Q2_K"), (12, "Q4_K"), (14, "Q6_K"),
                                            (15, "Q8_K"),
                                            (16, "unknown"), (24, "unknown"), (28, "F64"), (30, "BF16"),
                                            (39, "MXFP4")])
def test_ggml_type_names(code: int, name: str) -> None:
    assert ggml_type_name(code) == name


@pytest.mark.parametrize(("n", "text"), [(0, "0"), (999, "999"), (1000, "1K"), (567_499, "567K"),
                                         (1_500, "2K"), (22_710_000, "22.71M"), (135_000_000, "135M"),
                                         (134_515_008, "134.52M"), (7_615_616_512, "7.6B"),
                                         (8_000_000_000, "8B"), (494_032_768, "494.03M")])
def test_human_number(n: int, text: str) -> None:
    assert human_number(n) == text


def test_smollm2(smollm2: Path) -> None:
    started = time.perf_counter()
    info = read_gguf(smollm2) if not _cached(smollm2) else _fresh_read(smollm2)
    elapsed = time.perf_counter() - started
    assert info.architecture == "llama"
    tokens = info.kv["tokenizer.ggml.tokens"]
    assert len(tokens) == 49152 and tokens[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert len(info.kv["tokenizer.ggml.merges"]) == 48900
    assert file_type_name(info.file_type) == "Q4_1"
    assert info.parameter_count == 134_515_008
    assert human_number(info.parameter_count) == "134.52M"
    assert (info.context_length, info.embedding_length) == (8192, 576)
    assert len(info.tensors) == 272
    assert {t.type_name for t in info.tensors} == {"F32", "Q8_0", "Q4_1"}
    assert info.tensors[0].shape == [576, 49152]
    # About 50 ms here; the bound leaves room for slow CI machines.
    assert elapsed < 0.5


def _cached(path: Path) -> bool:
    from modelstore import gguf

    return any(key[0] == str(path.resolve()) for key in gguf._cache)


def _fresh_read(path: Path):
    from modelstore import gguf

    gguf._cache.clear()
    return read_gguf(path)
