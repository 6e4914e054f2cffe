"""The translation functions on their own: requests to native requests, native chunk dicts to OpenAI and
Anthropic shapes. Native chunks with tool calls and thinking are written here by hand, in the shape of
api-contract.md §2.4/§3.4, so the mapping is covered whatever the model can produce."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server import anthropic, openai
from server.api import RequestError
from server.api_anthropic import parse as parse_messages
from server.api_openai import ChatCompletionRequest, CompletionRequest, EmbedRequest, parse
from server.http import APIError
from server.inference import join_chunks

T0 = "2026-01-02T03:04:05.123456789Z"
METRICS = {"total_duration": 9, "load_duration": 1, "prompt_eval_count": 7, "prompt_eval_duration": 2,
           "eval_count": 5, "eval_duration": 3}
CALL = {"id": "call_ab12cd34", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris", "n": 2}}}


def chunk(content: str = "", thinking: str = "", calls: list | None = None, done: bool = False,
          done_reason: str | None = None, logprobs: list | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if calls:
        message["tool_calls"] = calls
    native: dict[str, Any] = {"model": "m", "created_at": T0, "message": message, "done": done}
    if done_reason:
        native["done_reason"] = done_reason
    if logprobs:
        native["logprobs"] = logprobs
    if done:
        native.update(METRICS)
    return native


# ---------------------------------------------------------------------------------------------------
# OpenAI chat: chunks


def test_chat_chunks_thinking_content_and_tool_calls() -> None:
    chunker = openai.ChatChunker("chatcmpl-1", "m", 1234, include_usage=True)
    out = []
    for native in (chunk(thinking="Let me"), chunk(thinking=" see.", content="It"), chunk(content=" is"),
                   chunk(calls=[CALL]), chunk(done=True, done_reason="stop")):
        out += chunker.process(native)
    deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in out]
    assert deltas == [
        {"role": "assistant", "content": "", "reasoning": "Let me"},
        {"reasoning": " see."},  # a mixed chunk is split: reasoning first, without a content key
        {"content": "It"},
        {"content": " is"},
        {"content": "", "tool_calls": [{"id": "call_ab12cd34", "index": 0, "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city":"Paris","n":2}'}}]},
        {},
        None,
    ]
    assert [c["choices"][0]["finish_reason"] if c["choices"] else "-" for c in out] == [None] * 5 + ["tool_calls", "-"]
    assert {c["created"] for c in out} == {1234} and {c["id"] for c in out} == {"chatcmpl-1"}
    assert all(list(c)[:5] == ["id", "object", "created", "model", "system_fingerprint"] for c in out)
    assert out[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    assert all("usage" not in c for c in out[:-1])


def test_chat_chunks_final_chunk_with_tool_calls_and_no_usage() -> None:
    """The native llama.cpp path puts tool calls on the done chunk: a content chunk first, then the finish."""
    chunker = openai.ChatChunker("c", "m", 1, include_usage=False)
    out = chunker.process(chunk(calls=[CALL], done=True, done_reason="stop"))
    assert out[0]["choices"][0]["delta"]["role"] == "assistant"
    assert json.loads(out[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris",
                                                                                                    "n": 2}
    assert out[1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
    assert len(out) == 2


def test_chat_chunks_empty_answer_still_starts_with_the_role() -> None:
    out = openai.ChatChunker("c", "m", 1, include_usage=False).process(chunk(done=True, done_reason="stop"))
    assert [c["choices"][0]["delta"] for c in out] == [{"role": "assistant", "content": ""}, {}]
    assert out[1]["choices"][0]["finish_reason"] == "stop"


def test_chat_chunks_skip_empty_intermediate_chunks_and_keep_length() -> None:
    chunker = openai.ChatChunker("c", "m", 1, include_usage=False)
    assert chunker.process(chunk()) == []
    out = chunker.process(chunk(content="a")) + chunker.process(chunk(calls=[CALL]))
    out += chunker.process(chunk(done=True, done_reason="length"))
    assert out[-1]["choices"][0]["finish_reason"] == "length"


def test_chat_chunk_logprobs() -> None:
    entry = {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]}
    out = openai.ChatChunker("c", "m", 1, include_usage=False).process(chunk(content="Hi", logprobs=[entry]))
    assert out[0]["choices"][0]["logprobs"] == {"content": [{**entry, "top_logprobs": []}]}
    split = openai.ChatChunker("c", "m", 1, include_usage=False).process(
        chunk(thinking="t", content="Hi", logprobs=[entry]))
    assert "logprobs" not in split[0]["choices"][0] and "logprobs" in split[1]["choices"][0]


def test_tool_call_without_id_gets_one() -> None:
    [call] = openai.openai_tool_calls([{"function": {"index": 3, "name": "f"}}])
    assert call["id"].startswith("call_") and len(call["id"]) == 13
    assert (call["index"], call["function"]) == (3, {"name": "f", "arguments": "{}"})


# ---------------------------------------------------------------------------------------------------
# OpenAI chat: whole responses


def test_chat_completion_from_joined_chunks() -> None:
    chunks = [chunk(thinking="Hmm."), chunk(content="Call"), chunk(calls=[CALL]),
              chunk(done=True, done_reason="stop", logprobs=[{"token": "x", "logprob": -1.0}])]
    final = join_chunks(chunks, chat_request=True, with_tools=True)
    body = openai.chat_completion("chatcmpl-9", final)
    assert body["created"] == 1767323045 and body["model"] == "m" and body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert list(choice) == ["index", "message", "finish_reason", "logprobs"]
    assert choice["message"] == {"role": "assistant", "content": "Call", "reasoning": "Hmm.", "tool_calls": [
        {"id": "call_ab12cd34", "index": 0, "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris","n":2}'}}]}
    assert choice["finish_reason"] == "tool_calls"
    assert choice["logprobs"] == {"content": [{"token": "x", "logprob": -1.0, "top_logprobs": []}]}
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


def test_finish_reasons() -> None:
    assert openai.finish_reason("stop", False) == "stop"
    assert openai.finish_reason("stop", True) == "tool_calls"
    assert openai.finish_reason("length", True) == "length"
    assert openai.finish_reason(None, False) is None


def test_unix_seconds() -> None:
    assert openai.unix_seconds("1970-01-01T00:00:10Z") == 10
    assert openai.unix_seconds("1970-01-01T00:00:10.5-01:00") == 3610


# ---------------------------------------------------------------------------------------------------
# OpenAI chat: requests


def chat(**body: Any) -> Any:
    return openai.chat_request(parse(ChatCompletionRequest, {"model": "m", **body}))


def test_chat_request_defaults_and_options() -> None:
    native = chat(messages=[{"role": "user", "content": "hi"}])
    assert native.options == {"temperature": 1.0, "top_p": 1.0}
    assert native.think is None and native.format is None and native.tools is None and not native.logprobs
    native = chat(messages=[{"role": "user", "content": "hi"}], stop="x", max_tokens=5, seed=3, temperature=0.2,
                  top_p=0.5, frequency_penalty=0.1, presence_penalty=0.3, logprobs=True, top_logprobs=4)
    assert native.options == {"stop": ["x"], "num_predict": 5, "temperature": 0.2, "seed": 3,
                              "frequency_penalty": 0.1, "presence_penalty": 0.3, "top_p": 0.5}
    assert native.logprobs and native.top_logprobs == 4
    native = chat(messages=[{"role": "user", "content": "hi"}], stop=["a", 1, "b"], max_tokens=5,
                  max_completion_tokens=7)
    assert native.options["stop"] == ["a", "b"] and native.options["num_predict"] == 7


def test_chat_request_response_format() -> None:
    hi = [{"role": "user", "content": "hi"}]
    assert chat(messages=hi, response_format={"type": " JSON_OBJECT "}).format == "json"
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert chat(messages=hi, response_format={"type": "json_schema",
                                              "json_schema": {"name": "x", "schema": schema}}).format == schema
    assert chat(messages=hi, response_format={"type": "text"}).format is None
    assert chat(messages=hi, response_format={"type": "json_schema"}).format is None


@pytest.mark.parametrize(("effort", "think"), [("none", False), ("minimal", "low"), ("low", "low"),
                                               ("medium", "medium"), ("high", "high"), ("max", "max"),
                                               ("xhigh", "max"), ("ultra", "max"), ("", None)])
def test_reasoning_effort(effort: str, think: Any) -> None:
    hi = [{"role": "user", "content": "hi"}]
    assert chat(messages=hi, reasoning_effort=effort).think == think
    assert chat(messages=hi, reasoning_effort="none", reasoning={"effort": effort}).think == (
        think if effort else False)


def test_messages_parts_images_tools() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    native = chat(messages=[
        {"role": "developer", "content": "Be brief."},
        {"role": "USER", "content": [{"type": "text", "text": "Look:"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                                     {"type": "image_url", "image_url": f"data:;base64,{png}"}]},
        {"role": "assistant", "content": None, "reasoning": "They want weather.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
        {"role": "tool", "name": "explicit", "content": "x"},
    ], tools=[{"type": "function", "function": {"name": "get_weather"}}])
    messages = [m.template_dict() for m in native.messages]
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Look:"},
        {"role": "user", "content": "", "images": [b"\x89PNG fake"]},
        {"role": "user", "content": "", "images": [b"\x89PNG fake"]},
        {"role": "assistant", "content": "", "thinking": "They want weather.", "tool_calls": [
            {"id": "call_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": "rain", "tool_name": "get_weather", "tool_call_id": "call_1"},
        {"role": "tool", "content": "x", "tool_name": "explicit"},
    ]
    assert native.tools == [{"type": "function", "function": {"name": "get_weather"}}]


@pytest.mark.parametrize(("messages", "error"), [
    ([], "[] is too short - 'messages'"),
    ([{"role": "user", "content": True}], "invalid message content type: bool"),
    ([{"role": "user", "content": {"a": 1}}], "invalid message content type: map[string]interface {}"),
    ([{"role": "user", "content": ["x"]}], "invalid message format"),
    ([{"role": "user", "content": [{"type": "text", "text": 1}]}], "invalid message format"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": "http://x"}]}],
     "image URLs are not currently supported, please use base64 encoded data instead"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": "data:image/bmp;base64,AAAA"}]}],
     "invalid image input"),
    ([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}],
     "invalid tool call arguments"),
])
def test_chat_request_errors(messages: list, error: str) -> None:
    with pytest.raises(RequestError) as caught:
        chat(messages=messages)
    assert str(caught.value) == error


# ---------------------------------------------------------------------------------------------------
# OpenAI completions and embeddings


def test_completion_request() -> None:
    native = openai.completion_request(parse(CompletionRequest, {"model": "m", "prompt": "p", "suffix": "s"}))
    assert (native.prompt, native.suffix, native.logprobs, native.top_logprobs) == ("p", "s", False, 0)
    assert native.options == {"temperature": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0, "top_p": 1.0}
    native = openai.completion_request(parse(CompletionRequest, {
        "model": "m", "prompt": "p", "top_p": 0, "max_tokens": 3, "stop": "x", "logprobs": 2, "seed": 1}))
    assert native.options["top_p"] == 1.0 and native.options["num_predict"] == 3 and native.options["stop"] == ["x"]
    assert native.logprobs and native.top_logprobs == 2 and native.options["seed"] == 1
    with pytest.raises(RequestError, match="invalid type for 'stop' field: bool"):
        openai.completion_request(parse(CompletionRequest, {"model": "m", "stop": ["a", True]}))


def test_completion_chunks_and_logprobs() -> None:
    chunker = openai.CompletionChunker("cmpl-1", "m", 5, include_usage=True)
    first = {"model": "m", "created_at": T0, "response": "Hi", "done": False,
             "logprobs": [{"token": "Hi", "logprob": -0.1, "top_logprobs": [{"token": "Hi", "logprob": -0.1}]}]}
    second = {"model": "m", "created_at": T0, "response": " you", "done": False,
              "logprobs": [{"token": " you", "logprob": -0.2}]}
    final = {"model": "m", "created_at": T0, "response": "", "done": True, "done_reason": "stop", **METRICS}
    out = chunker.process(first) + chunker.process(second) + chunker.process(final)
    assert [c["choices"][0]["text"] if c["choices"] else None for c in out] == ["Hi", " you", "", None]
    assert out[1]["choices"][0]["logprobs"] == {"tokens": [" you"], "token_logprobs": [-0.2], "top_logprobs": [{}],
                                                "text_offset": [2]}
    assert out[2]["choices"][0]["finish_reason"] == "stop"
    assert out[-1]["usage"]["total_tokens"] == 12 and out[0]["usage"]["total_tokens"] == 0
    whole = openai.completion("cmpl-2", join_chunks([first, second, final], chat_request=False, with_tools=False))
    assert whole["choices"][0] == {"text": "Hi you", "index": 0, "finish_reason": "stop", "logprobs": {
        "tokens": ["Hi", " you"], "token_logprobs": [-0.1, -0.2], "top_logprobs": [{"Hi": -0.1}, {}],
        "text_offset": [0, 2]}}


def test_embed_request_and_base64() -> None:
    native, encoding = openai.embed_request(parse(EmbedRequest, {"model": "e", "input": "", "dimensions": 4,
                                                                 "encoding_format": "Base64"}))
    assert (native.input, native.dimensions, encoding) == ([""], 4, "base64")
    vector = [0.5, -0.25, 1e-8]
    encoded = openai.floats_to_base64(vector)
    assert list(struct.unpack("<3f", base64.b64decode(encoded))) == pytest.approx(vector)
    body = openai.embedding_list("e", {"embeddings": [vector], "prompt_eval_count": 3}, "base64")
    assert body == {"object": "list", "data": [{"object": "embedding", "embedding": encoded, "index": 0}],
                    "model": "e", "usage": {"prompt_tokens": 3, "total_tokens": 3}}


def test_error_envelopes() -> None:
    assert [openai.error_type(s) for s in (400, 404, 429, 500, 503)] == [
        "invalid_request_error", "not_found_error", "api_error", "api_error", "api_error"]
    busy = openai.error_response("server busy", 503)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
    assert "retry-after" not in openai.error_response("x", 500).headers
    assert [anthropic.error_type(s) for s in (400, 401, 403, 404, 429, 500, 503, 529)] == [
        "invalid_request_error", "authentication_error", "permission_error", "not_found_error", "rate_limit_error",
        "api_error", "overloaded_error", "overloaded_error"]
    assert anthropic.error_response("busy", 503).headers["retry-after"] == "2"


# ---------------------------------------------------------------------------------------------------
# Anthropic


def messages_request(**body: Any) -> Any:
    return anthropic.chat_request(parse_messages({"model": "m", "max_tokens": 9, **body}))


def test_anthropic_request_mapping() -> None:
    png = base64.b64encode(b"img").decode()
    native = messages_request(
        system=[{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}],
        temperature=0.3, top_p=0.8, top_k=4, stop_sequences=["END"],
        tools=[{"name": "get_weather", "description": "d", "input_schema": {"type": "object", "properties": {}}},
               {"type": "web_search_20250305", "name": "web_search"}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Weather? "},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                      "data": png}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [{"type": "text", "text": "So?"},
                                         {"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": [{"type": "text", "text": "rain"}]}]},
        ])
    assert native.options == {"num_predict": 9, "temperature": 0.3, "top_p": 0.8, "top_k": 4, "stop": ["END"]}
    assert native.tools == [{"type": "function", "function": {"name": "get_weather", "description": "d",
                                                              "parameters": {"type": "object", "properties": {}}}}]
    assert [m.template_dict() for m in native.messages] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather? ", "images": [b"img"]},
        {"role": "assistant", "content": "", "thinking": "Use the tool.", "tool_calls": [
            {"id": "toolu_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": "rain", "tool_name": "get_weather", "tool_call_id": "toolu_1"},
        {"role": "user", "content": "So?"},
    ]


@pytest.mark.parametrize(("body", "think"), [
    ({}, None), ({"thinking": {"type": "enabled", "budget_tokens": 10}}, True),
    ({"thinking": {"type": "disabled"}}, False),
    ({"output_config": {"effort": " High "}}, "high"), ({"output_config": {"effort": "xhigh"}}, "high"),
    ({"output_config": {"effort": "bogus"}}, None),
    ({"thinking": {"type": "disabled"}, "output_config": {"effort": "max"}}, False),
])
def test_anthropic_think(body: dict, think: Any) -> None:
    assert messages_request(messages=[{"role": "user", "content": "hi"}], **body).think == think


@pytest.mark.parametrize(("body", "error"), [
    ({"model": ""}, "model is required"),
    ({"max_tokens": 0}, "max_tokens is required and must be positive"),
    ({"messages": []}, "messages is required"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]}]},
     "invalid image source type: url. Only base64 images are supported."),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "a:b"}}]}]},
     "invalid base64 image data: illegal base64 data at input byte 1"),
    ({"messages": [{"role": "user", "content": [{"type": "image"}]}]}, "invalid image source"),
    ({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "x"}]}]},
     "tool_use block missing required 'name' field"),
    ({"messages": [{"role": "user", "content": "hi"}], "tools": [{"name": "t", "input_schema": "s"}]},
     'invalid input_schema for tool "t": json: cannot unmarshal string into Go value of type '
     "api.ToolFunctionParameters"),
])
def test_anthropic_request_errors(body: dict, error: str) -> None:
    with pytest.raises(RequestError) as caught:
        messages_request(**{"messages": [{"role": "user", "content": "hi"}], **body})
    assert str(caught.value) == error


def test_anthropic_whole_response() -> None:
    final = join_chunks([chunk(thinking="Think."), chunk(content="Sure."), chunk(calls=[CALL]),
                         chunk(done=True, done_reason="stop")], chat_request=True, with_tools=True)
    body = anthropic.messages_response("msg_1", final)
    assert body == {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [
        {"type": "thinking", "thinking": "Think."}, {"type": "text", "text": "Sure."},
        {"type": "tool_use", "id": "call_ab12cd34", "name": "get_weather", "input": {"city": "Paris", "n": 2}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 7, "output_tokens": 5}}
    empty = anthropic.messages_response("msg_2", chunk(done=True, done_reason="length"))
    assert empty["content"] == [] and empty["stop_reason"] == "max_tokens"
    assert [anthropic.stop_reason(r, False) for r in ("stop", "length", "other", None)] == [
        "end_turn", "max_tokens", "stop_sequence", ""]


def test_anthropic_stream_events() -> None:
    converter = anthropic.StreamConverter("msg_1", "m", estimated_input_tokens=3)
    out = []
    for native in (chunk(thinking="Hmm"), chunk(thinking=" ok", content="Let me"), chunk(content=" check."),
                   chunk(calls=[CALL]), chunk(calls=[CALL]), chunk(content="Done"),
                   chunk(done=True, done_reason="stop")):
        out += converter.process(native)
    summary = [(name, data.get("index"), (data.get("delta") or data.get("content_block") or {}).get("type"))
               for name, data in out]
    assert summary == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"), ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"), ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"), ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"), ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"), ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("content_block_start", 3, "text"), ("content_block_delta", 3, "text_delta"), ("content_block_stop", 3, None),
        ("message_delta", None, None), ("message_stop", None, None),
    ]
    assert out[0][1]["message"]["usage"] == {"input_tokens": 3, "output_tokens": 0}
    assert out[9][1]["content_block"] == {"type": "tool_use", "id": "call_ab12cd34", "name": "get_weather",
                                          "input": {}}
    assert json.loads(out[10][1]["delta"]["partial_json"]) == {"city": "Paris", "n": 2}
    assert out[-2][1] == {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                          "usage": {"input_tokens": 7, "output_tokens": 5}}


def test_anthropic_stream_thinking_then_tool_and_bytes() -> None:
    converter = anthropic.StreamConverter("msg_1", "m", 1)
    out = converter.process(chunk(thinking="t")) + converter.process(chunk(calls=[CALL], done=True,
                                                                            done_reason="stop"))
    assert [name for name, _ in out] == ["message_start", "content_block_start", "content_block_delta",
                                         "content_block_stop", "content_block_start", "content_block_delta",
                                         "content_block_stop", "message_delta", "message_stop"]
    assert out[4][1]["index"] == 1
    assert anthropic.sse_event("message_stop", {"type": "message_stop"}) == (
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


# ---------------------------------------------------------------------------------------------------
# The SSE writer


def run(coro: Any) -> Any:
    return asyncio.new_event_loop().run_until_complete(coro)


class Source:
    """A native chunk stream that fails where told and records whether it was closed."""

    def __init__(self, chunks: list[dict], fail_at: int | None = None, status: int = 500) -> None:
        self.chunks, self.fail_at, self.status, self.closed = chunks, fail_at, status, False

    async def stream(self) -> AsyncIterator[dict]:
        try:
            for index, item in enumerate(self.chunks):
                if index == self.fail_at:
                    raise APIError("runner died", self.status)
                yield item
        finally:
            self.closed = True


async def body_of(response: Any) -> bytes:
    return b"".join([part async for part in response.body_iterator])


def openai_sse(source: Source) -> Any:
    chunker = openai.ChatChunker("c", "m", 1, include_usage=False)
    return openai.sse_response(source.stream(), lambda c: [openai.sse_data(x) for x in chunker.process(c)],
                               on_error_before=lambda e: openai.error_response(e.message, e.status),
                               on_error_after=lambda e: [openai.sse_data(openai.error_body(e.message, e.status)),
                                                         openai.DONE],
                               finish=lambda: [openai.DONE])


def test_sse_error_before_the_first_chunk_is_an_http_error() -> None:
    source = Source([chunk(content="a")], fail_at=0, status=503)
    response = run(openai_sse(source))
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert json.loads(response.body)["error"]["type"] == "api_error" and source.closed


def test_sse_error_after_the_first_chunk_is_an_event() -> None:
    source = Source([chunk(content="a"), chunk(content="b")], fail_at=1)

    async def go() -> bytes:
        return await body_of(await openai_sse(source))

    text = run(go()).decode()
    events = text[:-2].split("\n\n")
    assert json.loads(events[0][6:])["choices"][0]["delta"] == {"role": "assistant", "content": "a"}
    assert json.loads(events[1][6:]) == {"error": {"message": "runner died", "type": "api_error", "param": None,
                                                   "code": None}}
    assert events[2] == "data: [DONE]" and len(events) == 3 and source.closed


def test_sse_normal_end() -> None:
    source = Source([chunk(content="a"), chunk(done=True, done_reason="stop")])

    async def go() -> tuple[Any, bytes]:
        response = await openai_sse(source)
        return response, await body_of(response)

    response, text = run(go())
    assert response.headers["content-type"] == "text/event-stream"
    assert text.endswith(b"data: [DONE]\n\n") and text.count(b"data: ") == 3 and source.closed
