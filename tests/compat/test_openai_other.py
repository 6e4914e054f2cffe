"""/v1/completions, /v1/embeddings and /v1/models with the official `openai` package and raw HTTP."""

from __future__ import annotations

import base64
import json
import math
import struct

import httpx
import openai
import pytest

from tests.compat.conftest import sse_payloads

# ---------------------------------------------------------------------------------------------------
# Completions


def test_completion_whole(http: httpx.Client, oai: openai.OpenAI) -> None:
    r = http.post("/v1/completions", json={"model": "m", "prompt": "Once upon a time", "max_tokens": 4})
    assert r.status_code == 200 and r.text.endswith("}\n")
    body = r.json()
    assert list(body) == ["id", "object", "created", "model", "system_fingerprint", "choices", "usage"]
    assert body["id"].startswith("cmpl-") and body["object"] == "text_completion"
    assert body["choices"][0]["index"] == 0 and body["choices"][0]["finish_reason"] == "length"
    reply = oai.completions.create(model="m", prompt="Once upon a time", max_tokens=4, temperature=0)
    assert reply.choices[0].text and reply.usage is not None and reply.usage.completion_tokens == 4
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 4


def test_completion_stream(http: httpx.Client, oai: openai.OpenAI) -> None:
    body = {"model": "m", "prompt": "Once upon a time", "max_tokens": 3, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    r = http.post("/v1/completions", json=body)
    assert r.headers["content-type"] == "text/event-stream"
    payloads = sse_payloads(r.text)
    assert payloads[-1] == "[DONE]"
    *chunks, last = [json.loads(p) for p in payloads[:-1]]
    assert all(list(c) == ["id", "object", "created", "choices", "model", "system_fingerprint", "usage"]
               for c in chunks)
    assert all(c["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0} for c in chunks)
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * (len(chunks) - 1) + ["length"]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 3
    text = "".join(c["choices"][0]["text"] for c in chunks)
    whole = oai.completions.create(model="m", prompt="Once upon a time", max_tokens=3, temperature=0)
    assert text == whole.choices[0].text
    streamed = list(oai.completions.create(model="m", prompt="Once upon a time", max_tokens=3, temperature=0,
                                           stream=True))
    assert "".join(c.choices[0].text for c in streamed) == text


def test_completion_suffix(oai: openai.OpenAI) -> None:
    rendered = oai.completions.create(model="fim", prompt="def add(a, b):", suffix="    return c",
                                      extra_body={"_debug_render_only": True}).model_extra["_debug_info"]
    assert rendered["rendered_template"] == "<fim_prefix>def add(a, b):<fim_suffix>    return c<fim_middle>"
    reply = oai.completions.create(model="fim", prompt="def add(a, b):", suffix="    return c", max_tokens=3)
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    with pytest.raises(openai.BadRequestError) as caught:
        oai.completions.create(model="m", prompt="def f(", suffix="return", max_tokens=3)
    assert caught.value.body["message"] == "registry.ollama.ai/library/m:latest does not support insert"


def test_completion_stop_and_logprobs(oai: openai.OpenAI) -> None:
    free = oai.completions.create(model="m", prompt="Count: one, two,", max_tokens=8, temperature=0).choices[0].text
    word = free.split()[1]
    stopped = oai.completions.create(model="m", prompt="Count: one, two,", max_tokens=8, temperature=0, stop=[word])
    assert stopped.choices[0].finish_reason == "stop" and word not in stopped.choices[0].text
    reply = oai.completions.create(model="m", prompt="Count: one, two,", max_tokens=3, temperature=0, logprobs=2)
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and "".join(logprobs.tokens) == reply.choices[0].text
    assert len(logprobs.token_logprobs) == 3 and all(len(top) == 2 for top in logprobs.top_logprobs)
    assert logprobs.text_offset[0] == 0


def test_a57_stop_type(http: httpx.Client) -> None:
    r = http.post("/v1/completions", json={"model": "m", "prompt": "x", "stop": [1]})
    assert r.status_code == 400
    assert r.json() == {"error": {"message": "invalid type for 'stop' field: float64", "type": "invalid_request_error",
                                  "param": None, "code": None}}
    r = http.post("/v1/completions", json={"model": "m", "prompt": ["x"]})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == ("json: cannot unmarshal array into Go struct field "
                                            "CompletionRequest.prompt of type string")


def test_completion_errors(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        oai.completions.create(model="nope-x", prompt="hi")
    with pytest.raises(openai.NotFoundError):
        list(oai.completions.create(model="nope-x", prompt="hi", stream=True))


# ---------------------------------------------------------------------------------------------------
# Embeddings


def test_c7_embeddings(http: httpx.Client, embedding_model: str) -> None:
    r = http.post("/v1/embeddings", json={"model": embedding_model, "input": "hi"})
    assert r.status_code == 200 and r.text.endswith("}\n")
    body = r.json()
    assert list(body) == ["object", "data", "model", "usage"]
    assert body["object"] == "list" and body["model"] == "e"
    [item] = body["data"]
    assert list(item) == ["object", "embedding", "index"] and item["object"] == "embedding" and item["index"] == 0
    assert len(item["embedding"]) == 576 and all(isinstance(x, float) for x in item["embedding"])
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0


def test_embeddings_float_and_base64_agree(oai: openai.OpenAI, http: httpx.Client, embedding_model: str) -> None:
    texts = ["The cat sat on the mat.", "Quantum chromodynamics."]
    floats = oai.embeddings.create(model=embedding_model, input=texts, encoding_format="float")
    raw = http.post("/v1/embeddings", json={"model": embedding_model, "input": texts,
                                            "encoding_format": "BASE64"}).json()
    assert [d.index for d in floats.data] == [0, 1]
    for item, encoded in zip(floats.data, raw["data"], strict=True):
        packed = base64.b64decode(encoded["embedding"])
        decoded = struct.unpack(f"<{len(packed) // 4}f", packed)
        assert len(decoded) == len(item.embedding) == 576
        assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(decoded, item.embedding, strict=True))
        assert math.isclose(math.hypot(*decoded), 1.0, abs_tol=1e-3)
    assert floats.data[0].embedding != floats.data[1].embedding
    # The SDK asks for base64 by default and decodes it itself.
    default = oai.embeddings.create(model=embedding_model, input=texts)
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
               for a, b in zip(default.data[1].embedding, floats.data[1].embedding, strict=True))


def test_embeddings_dimensions(oai: openai.OpenAI, embedding_model: str) -> None:
    reply = oai.embeddings.create(model=embedding_model, input="hello", dimensions=8, encoding_format="float")
    vector = reply.data[0].embedding
    assert len(vector) == 8 and math.isclose(math.hypot(*vector), 1.0, abs_tol=1e-3)


def test_a58_encoding_format(http: httpx.Client) -> None:
    r = http.post("/v1/embeddings", json={"model": "e", "input": "x", "encoding_format": "int8"})
    assert r.status_code == 400
    assert r.json()["error"] == {"message": "Invalid value for 'encoding_format' = int8. Supported values: "
                                            "['float', 'base64'].", "type": "invalid_request_error", "param": None,
                                 "code": None}


def test_a59_input(http: httpx.Client) -> None:
    for body in ({"model": "e", "input": []}, {"model": "e"}, {"model": "e", "input": None}):
        r = http.post("/v1/embeddings", json=body)
        assert r.status_code == 400 and r.json()["error"]["message"] == "invalid input"


def test_embedding_errors(http: httpx.Client, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.embeddings.create(model="nope-x", input="hi")
    assert caught.value.body["message"] == 'model "nope-x" not found, try pulling it first'
    r = http.post("/v1/embeddings", json={"model": "", "input": "hi"})
    assert (r.status_code, r.json()["error"]["message"]) == (404, "model '' not found")
    r = http.post("/v1/embeddings", json={"model": "e", "input": [[1, 2]]})
    assert (r.status_code, r.json()["error"]["message"]) == (400, "invalid input type")


def test_embeddings_of_a_generative_model(http: httpx.Client) -> None:
    """SmolLM2 itself, a generative model, embeds through a runner loaded for it."""
    native = http.post("/api/embed", json={"model": "m", "input": "hi"})
    assert native.status_code == 200, native.text
    body = http.post("/v1/embeddings", json={"model": "m", "input": ["hi", "there"]}).json()
    assert [len(d["embedding"]) for d in body["data"]] == [576, 576]
    assert body["data"][0]["embedding"] == native.json()["embeddings"][0]


# ---------------------------------------------------------------------------------------------------
# Models


def test_model_list(http: httpx.Client, oai: openai.OpenAI) -> None:
    tags = http.get("/api/tags").json()["models"]
    listed = oai.models.list().data
    assert [m.id for m in listed] == [t["name"] for t in tags]
    assert {"m:latest", "tm:latest", "fim:latest", "smollm2:135m"} <= {m.id for m in listed}
    assert all(m.object == "model" and m.owned_by == "library" and m.created > 1_600_000_000 for m in listed)


def test_b23_retrieve(http: httpx.Client, oai: openai.OpenAI) -> None:
    r = http.get("/v1/models/m")
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["id", "object", "created", "owned_by"]
    assert (body["id"], body["object"], body["owned_by"]) == ("m", "model", "library")
    assert isinstance(body["created"], int)
    assert oai.models.retrieve("smollm2:135m").id == "smollm2:135m"


def test_a60_retrieve_unknown(http: httpx.Client, oai: openai.OpenAI) -> None:
    r = http.get("/v1/models/nope-x")
    assert r.status_code == 404
    assert r.json() == {"error": {"message": "model 'nope-x:latest' not found", "type": "not_found_error",
                                  "param": None, "code": None}}
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("nope-x")
    assert http.get("/v1/models/library/m").text == "404 page not found"


def test_empty_model_list_is_null(server_factory) -> None:
    server = server_factory()
    r = httpx.get(f"{server.url}/v1/models")
    assert r.status_code == 200 and r.json() == {"object": "list", "data": None}
