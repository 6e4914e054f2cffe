"""/v1/messages with the official `anthropic` package (and raw HTTP where the bytes matter)."""

from __future__ import annotations

import json
import re

import anthropic
import httpx
import pytest

from tests.compat.conftest import PNG, TOOLS

HI = [{"role": "user", "content": "hi"}]
GREEDY = {"temperature": 0}
WEATHER_TOOL = {"name": "get_weather", "description": "The weather in a city",
                "input_schema": TOOLS[0]["function"]["parameters"]}


def events(text: str) -> list[tuple[str, dict]]:
    assert text.endswith("\n\n")
    parsed = []
    for block in text[:-2].split("\n\n"):
        event, data = block.split("\n")
        assert event.startswith("event: ") and data.startswith("data: ")
        payload = json.loads(data[len("data: "):])
        assert payload["type"] == event[len("event: "):]
        parsed.append((payload["type"], payload))
    return parsed


def test_whole(http: httpx.Client, claude: anthropic.Anthropic) -> None:
    r = http.post("/v1/messages", json={"model": "m", "max_tokens": 4, "messages": HI})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json" and r.text.endswith("}\n")
    body = r.json()
    assert list(body) == ["id", "type", "role", "model", "content", "stop_reason", "usage"]
    assert re.fullmatch(r"msg_[0-9a-f]{24}", body["id"])
    assert (body["type"], body["role"], body["model"], body["stop_reason"]) == ("message", "assistant", "m",
                                                                                "max_tokens")
    assert body["usage"]["output_tokens"] == 4 and body["usage"]["input_tokens"] > 0
    message = claude.messages.create(model="m", max_tokens=4, messages=HI, extra_body=GREEDY)
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 4


def test_stream_event_sequence(http: httpx.Client) -> None:
    r = http.post("/v1/messages", json={"model": "m", "max_tokens": 4, "messages": HI, "stream": True})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream" and r.headers["cache-control"] == "no-cache"
    sequence = events(r.text)
    kinds = [kind for kind, _ in sequence]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    start = sequence[0][1]["message"]
    assert start["content"] == [] and start["usage"]["output_tokens"] == 0 and start["id"].startswith("msg_")
    assert sequence[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert all(d["index"] == 0 and d["delta"]["type"] == "text_delta" for _, d in sequence[2:-3])
    delta = sequence[-2][1]
    assert delta["delta"] == {"stop_reason": "max_tokens"} and delta["usage"]["output_tokens"] == 4


def test_stream_with_the_sdk(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model="m", max_tokens=6, messages=HI, extra_body=GREEDY) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    whole = claude.messages.create(model="m", max_tokens=6, messages=HI, extra_body=GREEDY)
    assert text == final.content[0].text == whole.content[0].text
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 6
    assert final.usage.input_tokens == whole.usage.input_tokens
    raw = list(claude.messages.create(model="m", max_tokens=2, messages=HI, stream=True))
    assert raw[0].type == "message_start" and raw[-1].type == "message_stop"


def test_system_options_and_stop(claude: anthropic.Anthropic) -> None:
    story = [{"role": "user", "content": "Tell me a story."}]
    free = claude.messages.create(model="m", max_tokens=10, messages=story, extra_body=GREEDY).content[0].text
    word = free.split()[2]
    stopped = claude.messages.create(model="m", max_tokens=10, messages=story, extra_body=GREEDY,
                                     stop_sequences=[word])
    assert stopped.stop_reason == "end_turn" and word not in stopped.content[0].text
    sampling = {"temperature": 0, "top_k": 5, "top_p": 0.9}
    with_system = claude.messages.create(model="m", max_tokens=10, messages=story, extra_body=sampling,
                                         system="You only ever answer in French.")
    as_blocks = claude.messages.create(model="m", max_tokens=10, messages=story, extra_body=sampling,
                                       system=[{"type": "text", "text": "You only ever answer in French."}])
    assert with_system.content[0].text == as_blocks.content[0].text != free


def test_thinking_is_ignored_by_a_model_that_cannot_think(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="m", max_tokens=3, messages=HI,
                                     thinking={"type": "enabled", "budget_tokens": 1024})
    assert [block.type for block in message.content] == ["text"]
    message = claude.messages.create(model="m", max_tokens=3, messages=HI, output_config={"effort": "high"})
    assert message.content


def test_thinking_blocks(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="think", max_tokens=4, messages=HI, extra_body=GREEDY,
                                     thinking={"type": "enabled", "budget_tokens": 1024})
    [block] = message.content
    assert block.type == "thinking" and block.thinking
    with claude.messages.stream(model="think", max_tokens=4, messages=HI, extra_body=GREEDY,
                                thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_message()
    assert "thinking" in kinds and [b.type for b in final.content] == ["thinking"]
    assert final.content[0].thinking == block.thinking
    plain = claude.messages.create(model="think", max_tokens=4, messages=HI, thinking={"type": "disabled"})
    assert [b.type for b in plain.content] == ["text"]
    low = claude.messages.create(model="think", max_tokens=4, messages=HI, output_config={"effort": "low"},
                                 extra_body=GREEDY)
    assert [b.type for b in low.content] == ["thinking"]


def test_image_blocks(http: httpx.Client, claude: anthropic.Anthropic) -> None:
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
               {"type": "text", "text": "What is this?"}]
    with pytest.raises(anthropic.BadRequestError) as caught:  # m cannot see: refused, not dropped
        claude.messages.create(model="m", max_tokens=2, messages=[{"role": "user", "content": content}])
    assert caught.value.body["error"] == {"type": "invalid_request_error",
                                          "message": "this model is missing data required for image input"}
    url = [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="m", max_tokens=2, messages=[{"role": "user", "content": url}])
    assert caught.value.body["error"]["message"] == ("invalid image source type: url. Only base64 images are "
                                                     "supported.")


def tool_history() -> list[dict]:
    return [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny, 21 C"},
            {"type": "text", "text": "So?"}]},
    ]


def test_tool_history(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="tm", max_tokens=3, messages=tool_history(), tools=[WEATHER_TOOL],
                                     tool_choice={"type": "auto"}, extra_body=GREEDY)
    assert message.content and message.stop_reason == "max_tokens"
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="m", max_tokens=3, messages=HI, tools=[WEATHER_TOOL])
    assert caught.value.body["error"]["message"] == "registry.ollama.ai/library/m:latest does not support tools"
    broken = tool_history()
    del broken[1]["content"][1]["id"]
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="tm", max_tokens=3, messages=broken)
    assert caught.value.body["error"]["message"] == "tool_use block missing required 'id' field"


def test_tool_use_round_trip(claude: anthropic.Anthropic) -> None:
    """Two earlier calls in the history make the model answer with a third; the native parser turns it into
    a tool call, which comes back as a tool_use block (whole and streamed) and goes back as a tool_result."""
    def use(n: int, city: str) -> dict:
        return {"role": "assistant", "content": [{"type": "tool_use", "id": f"toolu_{n}", "name": "get_weather",
                                                  "input": {"city": city}}]}

    messages = [{"role": "user", "content": "Weather in Oslo?"}, use(1, "Oslo"),
                {"role": "user", "content": "Weather in Rome?"}, use(2, "Rome"),
                {"role": "user", "content": "Weather in Paris?"}]
    message = claude.messages.create(model="tm", max_tokens=30, messages=messages, tools=[WEATHER_TOOL],
                                     extra_body=GREEDY)
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Paris"}
    assert block.id
    with claude.messages.stream(model="tm", max_tokens=30, messages=messages, tools=[WEATHER_TOOL],
                                extra_body=GREEDY) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert "input_json" in kinds and final.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in final.content] == [("tool_use", "get_weather", {"city": "Paris"})]
    follow = messages + [{"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id,
                                                       "content": "sunny, 21 C"}]}]
    answer = claude.messages.create(model="tm", max_tokens=4, messages=follow, tools=[WEATHER_TOOL])
    assert answer.content and answer.content[0].type == "text"


# ---------------------------------------------------------------------------------------------------
# Errors (api-contract.md §6, probes A61 and A62)


def test_a61_max_tokens_required(http: httpx.Client) -> None:
    r = http.post("/v1/messages", json={"model": "m", "messages": HI})
    assert r.status_code == 400
    body = r.json()
    assert list(body) == ["type", "error", "request_id"] and body["type"] == "error"
    assert body["error"] == {"type": "invalid_request_error", "message": "max_tokens is required and must be positive"}
    assert re.fullmatch(r"req_[0-9a-f]{24}", body["request_id"])


def test_a62_model_required(http: httpx.Client, claude: anthropic.Anthropic) -> None:
    r = http.post("/v1/messages", json={"max_tokens": 5, "messages": HI})
    assert r.status_code == 400 and r.json()["error"]["message"] == "model is required"
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model="", max_tokens=5, messages=HI)


def test_errors(http: httpx.Client, claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="nope-x", max_tokens=5, messages=HI)
    assert caught.value.body["error"] == {"type": "not_found_error", "message": "model 'nope-x' not found"}
    with pytest.raises(anthropic.NotFoundError):
        with claude.messages.stream(model="nope-x", max_tokens=5, messages=HI) as stream:
            stream.get_final_message()
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="m", max_tokens=5, messages=[])
    assert caught.value.body["error"]["message"] == "messages is required"
    r = http.post("/v1/messages", json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == ("json: cannot unmarshal number into Go value of type "
                                            "[]anthropic.ContentBlock")
    r = http.post("/v1/messages", json={"model": "m", "max_tokens": "5", "messages": HI})
    assert r.json()["error"]["message"] == ("json: cannot unmarshal string into Go struct field MessagesRequest"
                                            ".max_tokens of type int")
