"""Model name grammar, defaults, display forms (store probes 3–8)."""

from __future__ import annotations

import pytest

from modelstore.names import MISSING_PART, Name, name_from_filepath_parts, parse_name, parse_name_bare


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("llama3.2", Name("registry.ollama.ai", "library", "llama3.2", "latest")),
        ("llama3.2:1b", Name("registry.ollama.ai", "library", "llama3.2", "1b")),
        ("jmorgan/foo:7b", Name("registry.ollama.ai", "jmorgan", "foo", "7b")),
        ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
         Name("hf.co", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "Q4_K_M")),
        ("localhost:5000/ns/m", Name("localhost:5000", "ns", "m", "latest")),
        ("https://example.com/me/m:v1", Name("example.com", "me", "m", "v1")),
        ("http://example.com/me/m", Name("example.com", "me", "m", "latest")),
        ("  llama3.2  ", Name("registry.ollama.ai", "library", "llama3.2", "latest")),
    ],
)
def test_valid_names(text: str, expected: Name) -> None:
    name = parse_name(text)
    assert name == expected
    assert name.is_valid()


@pytest.mark.parametrize(
    "text",
    [
        "x.com/m",  # probe 5: x.com lands in the namespace, which forbids dots
        "m" * 81,  # probe 7
        "foo:",  # a promised tag that is missing
        "/foo",
        "a//b",
        "foo@sha256:" + "0" * 64,  # no digest form
        "-foo",
        "foo:-bar",
        "fo o",
        "mödel",
        "ns.x/m:t",
        "h/n/m:" + "t" * 81,
        "h" * 351 + "/n/m",
        "",
        "a/b/c/d",  # the host takes "a/b" and "/" is not a host character
    ],
)
def test_invalid_names(text: str) -> None:
    assert not parse_name(text).is_valid()


def test_length_limits_are_inclusive() -> None:
    assert parse_name("m" * 80).is_valid()
    assert parse_name("n" * 80 + "/m").is_valid()
    assert parse_name("h" * 350 + "/n/m:" + "t" * 80).is_valid()
    assert not parse_name("n" * 81 + "/m").is_valid()


def test_missing_parts_use_placeholder() -> None:
    assert parse_name_bare("foo:") == Name("", "", "foo", MISSING_PART)
    assert parse_name_bare("/foo") == Name("", MISSING_PART, "foo", "")
    assert parse_name_bare("a/b") == Name("", "a", "b", "")


def test_local_suffix_is_dropped_and_cloud_is_an_ordinary_tag() -> None:
    assert parse_name("llama3.2:local") == parse_name("llama3.2")
    assert parse_name("llama3.2:1b:LOCAL") == parse_name("llama3.2:1b")
    assert parse_name("gpt-oss:20b-cloud").tag == "20b-cloud"
    assert parse_name("x:cloud").tag == "cloud"
    assert not parse_name("x:local:cloud").is_valid()


def test_string_forms() -> None:
    name = parse_name("llama3.2")
    assert str(name) == "registry.ollama.ai/library/llama3.2:latest"
    assert name.display_namespace_model() == "library/llama3.2"
    assert name.filepath_parts() == ("registry.ollama.ai", "library", "llama3.2", "latest")


@pytest.mark.parametrize(
    ("text", "shortest"),
    [
        ("registry.ollama.ai/library/m:latest", "m:latest"),
        ("registry.ollama.ai/me/m:latest", "me/m:latest"),
        ("example.com/me/m:latest", "example.com/me/m:latest"),
        ("REGISTRY.ollama.ai/Library/m", "m:latest"),
        ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
         "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"),
        ("localhost:5000/me/m", "localhost:5000/me/m:latest"),
    ],
)
def test_display_shortest(text: str, shortest: str) -> None:
    assert parse_name(text).display_shortest() == shortest


def test_filepath_parts_of_invalid_name_raises() -> None:
    with pytest.raises(ValueError):
        parse_name("x.com/m").filepath_parts()


def test_equal_fold() -> None:
    assert parse_name("Llama3:Latest").equal_fold(parse_name("llama3"))
    assert not parse_name("llama3:8b").equal_fold(parse_name("llama3"))


def test_name_from_filepath_parts() -> None:
    assert name_from_filepath_parts(("hf.co", "User", "Repo", "Q4")) == Name("hf.co", "User", "Repo", "Q4")
    assert name_from_filepath_parts(("x", "n.s", "m", "t")) is None
    assert name_from_filepath_parts(("x", "n", "m")) is None
