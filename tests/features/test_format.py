"""Structured outputs: `format: "json"` and a JSON schema, enforced by a llama.cpp grammar, so that every
output parses (and validates) whatever the prompt (api-contract.md §3.6, runtime.md §5.3)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from engine.grammar import JSON_GRAMMAR, format_to_grammar, schema_to_grammar

PROMPTS = ["Tell me about Paris.", "List three colors.", "hi"]
OPTIONS = {"temperature": 0, "num_predict": 32}

PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age", "tags", "kind"], "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer"},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 2},
    "kind": {"type": "string", "enum": ["cat", "dog"]}}}


def _validate(value: Any, schema: dict[str, Any]) -> None:
    """Enough of JSON Schema for PERSON (jsonschema is not a dependency)."""
    kind = schema.get("type")
    if kind == "object":
        assert isinstance(value, dict)
        assert set(schema.get("required", [])) <= set(value)
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(schema["properties"])
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _validate(value[key], sub)
    elif kind == "array":
        assert isinstance(value, list) and len(value) <= schema.get("maxItems", len(value))
        for item in value:
            _validate(item, schema["items"])
    elif kind == "string":
        assert isinstance(value, str) and len(value) <= schema.get("maxLength", len(value))
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool)
    if "enum" in schema:
        assert value in schema["enum"]


def test_validator_can_fail() -> None:
    with pytest.raises(AssertionError):
        _validate({"name": "x", "age": 1.5, "tags": [], "kind": "cat"}, PERSON)
    with pytest.raises(AssertionError):
        _validate({"name": "x", "age": 1, "tags": [], "kind": "cow"}, PERSON)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_json_mode_generate(http: httpx.Client, prompt: str) -> None:
    body = {"model": "m", "prompt": prompt, "format": "json", "stream": False, "options": OPTIONS}
    answer = http.post("/api/generate", json=body).json()
    if answer["done_reason"] == "stop":
        assert isinstance(json.loads(answer["response"]), dict)
    else:  # cut by num_predict: still a prefix of an object
        assert answer["response"].lstrip().startswith("{")


@pytest.mark.parametrize("prompt", PROMPTS)
def test_schema_chat(http: httpx.Client, prompt: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "format": PERSON, "stream": False,
            "options": {"temperature": 0, "num_predict": 80}}
    answer = http.post("/api/chat", json=body).json()
    assert answer["done_reason"] == "stop", answer
    _validate(json.loads(answer["message"]["content"]), PERSON)


def test_schema_streamed_with_sampling(http: httpx.Client) -> None:
    """Random sampling (a fixed seed) still cannot leave the grammar."""
    for seed in (1,):
        body = {"model": "m", "messages": [{"role": "user", "content": "Describe a pet."}], "format": PERSON,
                "options": {"temperature": 1.0, "seed": seed, "num_predict": 80}}
        with http.stream("POST", "/api/chat", json=body) as r:
            chunks = [json.loads(line) for line in r.iter_lines() if line]
        assert chunks[-1]["done_reason"] == "stop"
        _validate(json.loads("".join(c["message"]["content"] for c in chunks)), PERSON)


@pytest.mark.parametrize("fmt", ["", None])
def test_empty_format_is_no_constraint(http: httpx.Client, fmt: Any) -> None:
    body = {"model": "m", "prompt": "Say hello.", "format": fmt, "stream": False,
            "options": {**OPTIONS, "num_predict": 6}}
    free = http.post("/api/generate", json={k: v for k, v in body.items() if k != "format"}).json()["response"]
    assert http.post("/api/generate", json=body).json()["response"] == free
    assert not free.lstrip().startswith("{")


@pytest.mark.parametrize(("fmt", "raw"), [("xml", '"xml"'), ([], "[]"), (5, "5"), (True, "true")])
def test_bad_format(http: httpx.Client, fmt: Any, raw: str) -> None:
    r = http.post("/api/chat", json={"model": "m", "messages": [{"role": "user", "content": "x"}], "format": fmt})
    quoted = json.dumps(raw)
    assert (r.status_code, r.json()) == (400, {"error": f"invalid format: {quoted}; expected \"json\" or a valid "
                                                        "JSON Schema object"})


def test_grammars() -> None:
    assert format_to_grammar("json") == JSON_GRAMMAR and format_to_grammar(None) is None
    grammar = schema_to_grammar(PERSON)
    assert "root ::=" in grammar
    # strings exclude raw control characters, as llama.cpp's own converter writes them
    assert 'char ::= [^"\\\\\\x7F\\x00-\\x1F]' in grammar
