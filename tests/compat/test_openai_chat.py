"""/v1/chat/completions with the official `openai` package (and raw HTTP where the bytes matter)."""

from __future__ import annotations

import json
import time
from typing import Literal

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.compat.conftest import PNG, TOOLS, sse_payloads

HI = [{"role": "user", "content": "hi"}]


def test_b21_whole(http: httpx.Client, oai: openai.OpenAI) -> None:
    r = http.post("/v1/chat/completions", json={"model": "m", "messages": HI, "max_tokens": 4})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.text.endswith("}\n")
    body = r.json()
    assert list(body) == ["id", "object", "created", "model", "system_fingerprint", "choices", "usage"]
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["system_fingerprint"] == "fp_ollama" and body["model"] == "m"
    assert body["choices"][0]["message"]["role"] == "assistant"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0

    reply = oai.chat.completions.create(model="m", messages=HI, max_tokens=4, temperature=0)
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 4


def test_b22_stream_with_usage(http: httpx.Client) -> None:
    body = {"model": "m", "messages": HI, "max_tokens": 4, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}  # greedy: sampling could end it early (finish "stop")
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    payloads = sse_payloads(r.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:] if c["choices"])
    assert len({c["created"] for c in chunks}) == 1 and len({c["id"] for c in chunks}) == 1
    *content, finish, last = chunks
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in content + [finish])
    assert all(c["choices"][0]["finish_reason"] is None for c in content)
    assert finish["choices"][0]["delta"] == {} and finish["choices"][0]["finish_reason"] == "length"
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 4
    assert last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + 4


def test_stream_with_the_sdk(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(model="m", messages=HI, max_tokens=5, temperature=0, stream=True,
                                         stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    whole = oai.chat.completions.create(model="m", messages=HI, max_tokens=5, temperature=0)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    without = list(oai.chat.completions.create(model="m", messages=HI, max_tokens=2, stream=True))
    assert all(c.usage is None for c in without) and without[-1].choices[0].finish_reason == "length"


def test_sampling_options_reach_the_model(oai: openai.OpenAI) -> None:
    story = [{"role": "user", "content": "Tell me a story."}]

    def ask(**kwargs) -> openai.types.chat.ChatCompletion:
        return oai.chat.completions.create(model="m", messages=story, max_tokens=8, **kwargs)

    sampled = {"seed": 7, "temperature": 1.5, "top_p": 0.9, "frequency_penalty": 0.5, "presence_penalty": 0.5}
    assert ask(**sampled).choices[0].message.content == ask(**sampled).choices[0].message.content
    greedy = ask(temperature=0).choices[0].message.content or ""
    # stop as a string and as a list: the text ends before the stop sequence
    word = greedy.split()[2]
    for stop in (word, [word, "\u2603"]):
        reply = ask(temperature=0, stop=stop)
        assert reply.choices[0].finish_reason == "stop" and word not in (reply.choices[0].message.content or "")
    capped = oai.chat.completions.create(model="m", messages=HI, max_completion_tokens=3)
    assert capped.usage is not None and capped.usage.completion_tokens == 3


class Pet(BaseModel):
    kind: Literal["cat", "dog", "fish"]
    indoor: bool


def test_json_schema_output_validates(oai: openai.OpenAI) -> None:
    schema = Pet.model_json_schema()
    reply = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Describe a pet as JSON."}], max_tokens=40, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "pet", "schema": schema}})
    assert reply.choices[0].finish_reason == "stop"
    Pet.model_validate_json(reply.choices[0].message.content or "")
    parsed = oai.chat.completions.parse(model="m", messages=[{"role": "user", "content": "A pet?"}], max_tokens=40,
                                        response_format=Pet)
    assert isinstance(parsed.choices[0].message.parsed, Pet)


def test_json_object_mode(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "A JSON object please."}],
                                        max_tokens=20, temperature=0, response_format={"type": "json_object"})
    text = reply.choices[0].message.content or ""
    assert text.lstrip().startswith("{")
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)


def test_reasoning_effort_maps_to_think(oai: openai.OpenAI) -> None:
    # `none` is think:false, which a model that cannot think accepts; any level asks it to think.
    reply = oai.chat.completions.create(model="m", messages=HI, max_tokens=2, reasoning_effort="none")
    assert reply.choices[0].message.content
    for effort in ("minimal", "low", "high"):
        with pytest.raises(openai.BadRequestError) as caught:
            oai.chat.completions.create(model="m", messages=HI, max_tokens=2, reasoning_effort=effort)
        assert caught.value.body["message"].endswith('"m" does not support thinking')
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="m", messages=HI, max_tokens=2, extra_body={"reasoning": {"effort": "max"}})


def test_reasoning_output(http: httpx.Client, oai: openai.OpenAI) -> None:
    """A thinking model thinks by default: the thinking comes back as `reasoning`, apart from the content."""
    reply = oai.chat.completions.create(model="think", messages=HI, max_tokens=4, temperature=0)
    message = reply.choices[0].message
    assert message.model_extra["reasoning"] and message.content == ""
    plain = oai.chat.completions.create(model="think", messages=HI, max_tokens=4, temperature=0,
                                        reasoning_effort="none")
    assert plain.choices[0].message.content and "reasoning" not in (plain.choices[0].message.model_extra or {})
    high = oai.chat.completions.create(model="think", messages=HI, max_tokens=4, temperature=0, reasoning_effort="high")
    assert high.choices[0].message.model_extra["reasoning"] == message.model_extra["reasoning"]
    body = {"model": "think", "messages": HI, "max_tokens": 4, "temperature": 0, "stream": True}
    chunks = [json.loads(p) for p in sse_payloads(http.post("/v1/chat/completions", json=body).text)[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("reasoning", "") for d in deltas) == message.model_extra["reasoning"]
    assert all(d.get("content", "") == "" for d in deltas) and deltas[-1] == {}
    # and back in: an earlier turn's reasoning reaches the template as .Thinking
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello", "reasoning": "Greet."},
               {"role": "user", "content": "bye"}]
    rendered = oai.chat.completions.create(model="think", messages=history, extra_body={"_debug_render_only": True})
    assert "<|im_start|>assistant\n<think>Greet.</think>Hello<|im_end|>" in (
        rendered.model_extra["_debug_info"]["rendered_template"])


def test_logprobs(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="m", messages=HI, max_tokens=3, logprobs=True, top_logprobs=2,
                                        temperature=0)  # sampled, the answer may end after one token
    entries = reply.choices[0].logprobs.content
    assert len(entries) == 3 and all(len(e.top_logprobs) == 2 and e.logprob <= 0 for e in entries)
    assert "".join(e.token for e in entries) == reply.choices[0].message.content


def test_images_as_data_urls(http: httpx.Client, oai: openai.OpenAI) -> None:
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]
    with pytest.raises(openai.BadRequestError) as caught:  # m cannot see: refused, not dropped
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": content}], max_tokens=2)
    assert caught.value.body["message"] == "this model is missing data required for image input"
    assert caught.value.body["type"] == "invalid_request_error"
    for url in (f"data:image/gif;base64,{PNG}", "data:image/png;base64,!!!!", "ftp://x/y.png"):
        bad = [{"role": "user", "content": [{"type": "image_url", "image_url": url}]}]
        r = http.post("/v1/chat/completions", json={"model": "m", "messages": bad})
        assert r.status_code == 400 and r.json()["error"]["message"] == "invalid image input"


def tool_history() -> list[dict]:
    return [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_abc", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "sunny, 21 C"},
    ]


def test_tool_history_is_rendered(oai: openai.OpenAI) -> None:
    """The assistant's tool call (arguments parsed to an object) and the tool's answer reach the template."""
    reply = oai.chat.completions.create(model="tm", messages=tool_history(), tools=TOOLS,
                                        extra_body={"_debug_render_only": True})
    rendered = reply.model_extra["_debug_info"]["rendered_template"]
    assert '"name":"get_weather"' in rendered and '"required":["city"]' in rendered
    assert '<|im_start|>assistant\n{"name": "get_weather", "arguments": {"city":"Paris"}}<|im_end|>' in rendered
    assert "<|im_start|>tool\nsunny, 21 C<|im_end|>" in rendered
    assert rendered.startswith("<|im_start|>system\nYou can call these functions:")
    answer = oai.chat.completions.create(model="tm", messages=tool_history(), tools=TOOLS, max_tokens=4)
    assert answer.choices[0].message.content and answer.choices[0].finish_reason == "length"


def test_tools_need_a_tools_model(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="m", messages=HI, tools=TOOLS, max_tokens=2)
    assert caught.value.body["message"] == "registry.ollama.ai/library/m:latest does not support tools"
    assert caught.value.body["type"] == "invalid_request_error"


CALL_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name", "arguments"], "properties": {
    "name": {"type": "string", "enum": ["get_weather"]},
    "arguments": {"type": "object", "additionalProperties": False, "required": ["city"],
                  "properties": {"city": {"type": "string", "enum": ["Paris"]}}}}}


def test_tool_call_round_trip(oai: openai.OpenAI) -> None:
    """The model is made to answer with a call (a schema forces its shape); the native parser turns it into
    `tool_calls`, which come back in OpenAI's shape and go back in as history."""
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    fmt = {"type": "json_schema", "json_schema": {"name": "call", "schema": CALL_SCHEMA}}
    reply = oai.chat.completions.create(model="tm", messages=messages, tools=TOOLS, max_tokens=40, temperature=0,
                                        response_format=fmt)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    stream = list(oai.chat.completions.create(model="tm", messages=messages, tools=TOOLS, max_tokens=40,
                                              temperature=0, response_format=fmt, stream=True))
    calls = [tc for c in stream for tc in (c.choices[0].delta.tool_calls or [])]
    assert [json.loads(tc.function.arguments) for tc in calls] == [{"city": "Paris"}]
    assert stream[-1].choices[0].finish_reason == "tool_calls"
    follow = messages + [choice.message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    answer = oai.chat.completions.create(model="tm", messages=follow, tools=TOOLS, max_tokens=4)
    assert answer.choices[0].message.content


# ---------------------------------------------------------------------------------------------------
# Errors (api-contract.md §5.1 and probes A52–A56)


def test_a52_empty_messages(http: httpx.Client, oai: openai.OpenAI) -> None:
    r = http.post("/v1/chat/completions", json={"model": "m", "messages": []})
    assert r.status_code == 400
    assert r.json() == {"error": {"message": "[] is too short - 'messages'", "type": "invalid_request_error",
                                  "param": None, "code": None}}
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="m", messages=[])


def test_a53_unknown_model(http: httpx.Client, oai: openai.OpenAI) -> None:
    r = http.post("/v1/chat/completions", json={"model": "nope-x", "messages": HI})
    assert r.status_code == 404
    assert r.json() == {"error": {"message": "model 'nope-x' not found", "type": "not_found_error",
                                  "param": None, "code": None}}
    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(model="nope-x", messages=HI)
    assert caught.value.body["message"] == "model 'nope-x' not found"
    with pytest.raises(openai.NotFoundError):
        list(oai.chat.completions.create(model="nope-x", messages=HI, stream=True))


def test_a54_content_type(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": 5}]})
    assert r.status_code == 400 and r.json()["error"]["message"] == "invalid message content type: float64"
    r = http.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user"}]})
    assert r.json()["error"]["message"] == "invalid message content type: <nil>"


def test_a55_image_url(http: httpx.Client) -> None:
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
    r = http.post("/v1/chat/completions", json={"model": "m", "messages": messages})
    assert r.status_code == 400
    assert r.json()["error"] == {"message": "image URLs are not currently supported, please use base64 encoded "
                                            "data instead", "type": "invalid_request_error", "param": None,
                                 "code": None}


def test_a56_reasoning_effort(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json={"model": "m", "messages": HI, "reasoning_effort": "bogus"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == ('invalid reasoning value: "bogus" (must be "minimal", "low", "medium", '
                                            '"high", "xhigh", "ultra", "max", or "none")')


def test_bad_input(http: httpx.Client, oai: openai.OpenAI) -> None:
    cases = [
        ({"model": "m", "messages": HI, "stream": "yes"},
         "json: cannot unmarshal string into Go struct field ChatCompletionRequest.stream of type bool"),
        ({"model": "m", "messages": [{"role": "assistant", "content": "", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]},
         "invalid tool call arguments"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]}, "invalid message format"),
        ({"model": "", "messages": HI}, "model is required"),
    ]
    for body, message in cases:
        r = http.post("/v1/chat/completions", json=body)
        assert (r.status_code, r.json()["error"]["message"]) == (400, message)
    r = http.post("/v1/chat/completions", content=b"")
    assert (r.status_code, r.json()["error"]["message"]) == (400, "EOF")
    r = http.post("/v1/chat/completions", content=b"{bad")
    assert r.json()["error"]["message"] == "invalid character 'b' looking for beginning of object key string"
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="m", messages=HI, extra_body={"top_logprobs": 21})
    assert caught.value.body["message"] == "top_logprobs must be between 0 and 20"
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="m", messages=HI, response_format={"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "nonsense"}}}}})


def test_a_dropped_stream_frees_the_slot(http: httpx.Client) -> None:
    """One slot per model (OLLAMA_NUM_PARALLEL=1): a client that goes away mid-stream must not keep it."""
    long = {"model": "m", "messages": [{"role": "user", "content": "Write a very long story."}], "max_tokens": 3000,
            "temperature": 0, "stream": True}
    for path, body in (("/v1/chat/completions", long), ("/v1/messages", {**long, "max_tokens": 3000})):
        with http.stream("POST", path, json=body) as response:
            for index, _ in enumerate(response.iter_lines()):
                if index == 6:
                    break
        started = time.perf_counter()
        r = http.post("/v1/chat/completions", json={"model": "m", "messages": HI, "max_tokens": 2})
        assert r.status_code == 200
        assert time.perf_counter() - started < 15
