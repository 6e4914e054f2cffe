"""The Modelfile parser: commands, quoting, comments, BOMs and Ollama's errors (cases from parser_test.go)."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from modelstore.gojson import Float32, dumps
from modelstore.modelfile_parser import (
    Command,
    ModelfileError,
    file_digest_map,
    files_for_model,
    parse_modelfile,
    upload_names,
)
from server.cli.client import CLIError
from server.cli.params import format_params

INVALID_COMMAND = ('command must be one of "from", "license", "template", "system", "adapter", "draft", '
                   '"renderer", "parser", "parameter", "message", or "requires"')


def commands(text: str | bytes) -> list[tuple[str, str]]:
    return [(c.name, c.args) for c in parse_modelfile(text).commands]


@pytest.mark.parametrize(("text", "expected"), [
    ('FROM "FOO  BAR  "', [("model", "FOO  BAR  ")]),
    ('FROM "FOO BAR"\nPARAMETER param1 value1', [("model", "FOO BAR"), ("param1", "value1")]),
    ("FROM     FOOO BAR    ", [("model", "FOOO BAR")]),
    ("FROM /what/is/the path ", [("model", "/what/is/the path")]),
    ("FROM llama3:7b-instruct-q4_K_M", [("model", "llama3:7b-instruct-q4_K_M")]),
    ("PARAMETER param1 value1\nFROM foo", [("param1", "value1"), ("model", "foo")]),
    ("PARAMETER what the \nFROM lemons make lemonade ", [("what", "the"), ("model", "lemons make lemonade")]),
    ("# comment\n  # indented comment\nFROM foo # not a comment\n", [("model", "foo # not a comment")]),
    ("from foo\nSyStEm hi\nRENDERER r\nPARSER p\nDRAFT ./d\nREQUIRES 1.2.3",
     [("model", "foo"), ("system", "hi"), ("renderer", "r"), ("parser", "p"), ("draft", "./d"), ("requires", "1.2.3")]),
])
def test_commands(text: str, expected: list[tuple[str, str]]) -> None:
    assert commands(text) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ('"""\nThis is a\nmultiline system.\n"""', "\nThis is a\nmultiline system.\n"),
    ('"""This is a\nmultiline system."""', "This is a\nmultiline system."),
    ('"""This is a multiline system."""', "This is a multiline system."),
    ('"""\nThis is a multiline system with "quotes".\n"""', '\nThis is a multiline system with "quotes".\n'),
    ('""""""', ""),
    ('""', ""),
    ('"\'"', "'"),
    ('"""\'\'"\'""\'""\'"\'\'\'\'\'""\'""\'"""', '\'\'"\'""\'""\'"\'\'\'\'\'""\'""\''),
    ("say\thi\x01 there", "say\thi there"),  # tabs kept, other control characters dropped
])
def test_quoted_values(value: str, expected: str) -> None:
    assert commands(f"FROM foo\nSYSTEM {value}\n")[1] == ("system", expected)


def test_messages() -> None:
    text = ('FROM foo\nMESSAGE system You are a file parser.\nMESSAGE user Hey there!\n'
            'MESSAGE assistant """\nHello,\nparse all the things!\n"""\n')
    assert commands(text)[1:] == [("message", "system: You are a file parser."), ("message", "user: Hey there!"),
                                  ("message", "assistant: \nHello,\nparse all the things!\n")]


@pytest.mark.parametrize(("text", "error"), [
    ("", "no FROM line"),
    ("PARAMETER param1 value1", "no FROM line"),
    ("\nFROM foo\nPARAMETER param1\n", "unexpected EOF: param1"),
    ("\nFROM foo\nBADCOMMAND param1 value1\n", f"(line 3): {INVALID_COMMAND}"),
    ("FROM\n", f"(line 2): {INVALID_COMMAND}"),
    ("FROM foo\nMESSAGE badguy I'm a bad guy!\n", '(line 2): message role must be one of "system", "user", '
                                                  'or "assistant"'),
    ("FROM foo\nMESSAGE system\n", "unexpected EOF: system"),
    ("FROM foo\nMESSAGE system", "unexpected EOF"),
    ('FROM foo\nSYSTEM """This is a multiline system.""\n', "unexpected EOF"),
    ('FROM foo\nSYSTEM "\n', "unexpected EOF"),
    ("FROM foo\nPARAMETER top-k 1\n", "unexpected EOF: top"),
])
def test_errors(text: str, error: str) -> None:
    with pytest.raises(ModelfileError) as e:
        parse_modelfile(text)
    assert str(e.value) == error


@pytest.mark.parametrize("bom", [codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])
def test_byte_order_marks(bom: bytes) -> None:
    text = "FROM foo\nSYSTEM héllo\n"
    encoding = {codecs.BOM_UTF8: "utf-8", codecs.BOM_UTF16_LE: "utf-16-le", codecs.BOM_UTF16_BE: "utf-16-be"}[bom]
    assert commands(bom + text.encode(encoding)) == [("model", "foo"), ("system", "héllo")]


def test_string_form_round_trips() -> None:
    text = ('FROM foo\nADAPTER ./a.gguf\nTEMPLATE """{{ .Prompt }} "quoted"\n"""\nSYSTEM  padded \n'
            "PARAMETER stop <|end|>\nLICENSE MIT\nMESSAGE user hi there\n")
    modelfile = parse_modelfile(text)
    assert str(modelfile) == ('FROM foo\nADAPTER ./a.gguf\nTEMPLATE """{{ .Prompt }} "quoted"\n"""\nSYSTEM padded\n'
                              "PARAMETER stop <|end|>\nLICENSE MIT\nMESSAGE user hi there\n")
    assert parse_modelfile(str(modelfile)).commands == modelfile.commands
    assert str(Command("system", " x ")) == 'SYSTEM " x "'


def test_format_params() -> None:
    params = format_params({"temperature": ["0.1"], "num_ctx": ["4096"], "use_mmap": ["T"], "stop": ["a", "b"],
                            "main_gpu": ["-1"]})
    assert dumps(params, sort_keys=True) == '{"main_gpu":-1,"num_ctx":4096,"stop":["a","b"],"temperature":0.1,' \
                                           '"use_mmap":true}'
    assert isinstance(params["temperature"], Float32)
    for key, value, message in [
        ("top_k", "1.5", "invalid int value [1.5]"), ("top_p", "x", "invalid float value [x]"),
        ("use_mmap", "yes", "invalid bool value [yes]"), ("tfs_z", "1", "unknown parameter 'tfs_z'"),
        ("seed", "1_000", "invalid int value [1_000]"),
    ]:
        with pytest.raises(CLIError) as e:
            format_params({key: [value]})
        assert str(e.value) == message


def test_create_plan(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(24))
    (tmp_path / "lora.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(8))
    text = ("FROM ./model.gguf\nFROM llama3.2\nADAPTER lora.gguf\nPARAMETER stop a\nPARAMETER stop b\n"
            "PARAMETER mirostat 1\nLICENSE one\nLICENSE two\nMESSAGE user hi\nREQUIRES v0.14\nSYSTEM s\n")
    warnings: list[str] = []
    plan = parse_modelfile(text).create_plan(tmp_path, format_params, warn=warnings.append)
    assert plan.request == {"from": "llama3.2", "system": "s", "requires": "0.14",
                            "parameters": {"stop": ["a", "b"]}, "license": ["one", "two"],
                            "messages": [{"role": "user", "content": "hi"}]}
    assert list(plan.files) == [str(tmp_path / "model.gguf")]
    assert list(plan.adapters) == [str(tmp_path / "lora.gguf")]
    assert warnings == ["warning: parameter mirostat is deprecated"]
    with pytest.raises(ModelfileError, match="requires must be a valid semver"):
        parse_modelfile("FROM x\nREQUIRES 1.2.3.4\n").create_plan(tmp_path, format_params)


def test_model_directory_files_and_upload_names(tmp_path: Path) -> None:
    (tmp_path / "1_Pooling").mkdir()
    for name in ("model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json", "README.md"):
        (tmp_path / name).write_bytes(b"\x00\x01binary" if name.endswith("safetensors") else b"{}")
    assert [p.relative_to(tmp_path).as_posix() for p in files_for_model(tmp_path)] == [
        "model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json"]
    digests = file_digest_map(tmp_path)
    assert sorted(upload_names(digests).values()) == [
        "1_Pooling/config.json", "config.json", "model.safetensors", "tokenizer.json"]
    assert upload_names({str(tmp_path / "model.safetensors"): "x"}) == {str(tmp_path / "model.safetensors"):
                                                                         "model.safetensors"}
