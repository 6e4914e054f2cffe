"""`/v1/responses` through the openai SDK's `responses.create`, whole and streamed: the Responses event
sequence, instructions, reasoning, `text.format` json_schema and a function-call round trip; each answer is
checked against the native chat answer to the same conversation (greedy, so they must agree)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.compat.conftest import sse_payloads
from tests.compat.test_openai_chat import CALL_SCHEMA

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CALL_FORMAT = {"format": {"type": "json_schema", "name": "call", "schema": CALL_SCHEMA}}


def native_chat(http: httpx.Client, model: str, messages: list[dict[str, Any]], num_predict: int,
                **extra: Any) -> dict[str, Any]:
    answer = http.post("/api/chat", json={"model": model, "messages": messages, "stream": False,
                                          "options": {"temperature": 0, "num_predict": num_predict}, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_whole_answer(oai: openai.OpenAI, http: httpx.Client) -> None:
    response = oai.responses.create(model="m", instructions="Answer briefly.", input="Name a colour.",
                                    max_output_tokens=6, temperature=0)
    assert response.object == "response" and response.id.startswith("resp_") and response.status == "completed"
    assert response.model == "m" and response.instructions == "Answer briefly."
    [item] = response.output
    assert item.type == "message" and item.role == "assistant" and item.id.startswith("msg_")
    native = native_chat(http, "m", [{"role": "system", "content": "Answer briefly."},
                                     {"role": "user", "content": "Name a colour."}], 6)
    assert response.output_text == native["message"]["content"] != ""
    assert response.usage.output_tokens == native["eval_count"]
    assert response.usage.input_tokens == native["prompt_eval_count"]
    assert response.usage.total_tokens == native["eval_count"] + native["prompt_eval_count"]
    assert response.completed_at >= response.created_at and response.max_output_tokens == 6


def test_streamed_event_sequence(oai: openai.OpenAI, http: httpx.Client) -> None:
    events = list(oai.responses.create(model="m", input=[{"role": "user", "content": "Name a colour."}],
                                       max_output_tokens=6, temperature=0, stream=True))
    kinds = [event.type for event in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas >= 1
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * deltas,
                     "response.output_text.done", "response.content_part.done", "response.output_item.done",
                     "response.completed"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == native_chat(http, "m", [{"role": "user", "content": "Name a colour."}], 6)["message"]["content"]
    completed = events[-1].response
    assert completed.status == "completed" and completed.output_text == text
    assert events[0].response.status == "in_progress" and events[0].response.output == []


def test_stream_wire_format(http: httpx.Client) -> None:
    """Named events (`event:` lines) whose data carries the same `type`."""
    body = {"model": "m", "input": "Hi", "max_output_tokens": 2, "stream": True}
    with http.stream("POST", "/v1/responses", json=body) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        text = answer.read().decode()
    blocks = text.strip().split("\n\n")
    for block in blocks:
        name, data = block.split("\n")
        assert name.startswith("event: ") and data.startswith("data: ")
        assert json.loads(data[len("data: "):])["type"] == name[len("event: "):]
    with pytest.raises(AssertionError):
        sse_payloads(text)  # not the chat completions format: there are event names and no [DONE]


def test_function_call_round_trip(oai: openai.OpenAI, http: httpx.Client) -> None:
    """A schema in `text.format` makes the model answer with a call, which comes back as a function_call
    item; the item and a function_call_output go back in as input, and the answer is the native chat's."""
    question = [{"role": "user", "content": "Weather in Paris?"}]
    response = oai.responses.create(model="tm", input=question, tools=[WEATHER], text=CALL_FORMAT,
                                    max_output_tokens=40, temperature=0)
    [call] = response.output
    assert call.type == "function_call" and call.status == "completed" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"} and call.call_id
    assert response.text.format.type == "json_schema"

    streamed = list(oai.responses.create(model="tm", input=question, tools=[WEATHER], text=CALL_FORMAT,
                                         max_output_tokens=40, temperature=0, stream=True))
    kinds = [event.type for event in streamed]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.function_call_arguments.delta", "response.function_call_arguments.done",
                     "response.output_item.done", "response.completed"]
    assert json.loads(streamed[4].arguments) == {"city": "Paris"}
    assert streamed[-1].response.output[0].name == "get_weather"

    follow = oai.responses.create(
        model="tm", tools=[WEATHER], max_output_tokens=6, temperature=0,
        input=[*question, call.model_dump(exclude_none=True),
               {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}])
    native = native_chat(http, "tm", [
        *question,
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": call.call_id, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny, 21 C", "tool_call_id": call.call_id}], 6,
        tools=[{"type": "function", "function": {k: WEATHER[k] for k in ("name", "description", "parameters")}}])
    assert follow.output_text == native["message"]["content"] != ""


def test_reasoning(oai: openai.OpenAI, http: httpx.Client) -> None:
    """`think` thinks (its template opens <think> and SmolLM2 never closes it): a reasoning item, whose
    summary is the native answer's thinking; `reasoning.effort` is echoed."""
    response = oai.responses.create(model="think", input="Hi", max_output_tokens=4, temperature=0,
                                    reasoning={"effort": "high"})
    reasoning = response.output[0]
    assert reasoning.type == "reasoning"
    thinking = native_chat(http, "think", [{"role": "user", "content": "Hi"}], 4, think="high")["message"]["thinking"]
    assert reasoning.summary[0].text == thinking != ""
    assert response.reasoning.effort == "high"
    streamed = list(oai.responses.create(model="think", input="Hi", max_output_tokens=4, temperature=0,
                                         reasoning={"effort": "high"}, stream=True))
    kinds = [event.type for event in streamed]
    assert kinds[2] == "response.output_item.added" and streamed[2].item.type == "reasoning"
    assert "".join(e.delta for e in streamed if e.type == "response.reasoning_summary_text.delta") == thinking
    assert kinds[-3:] == ["response.reasoning_summary_text.done", "response.output_item.done", "response.completed"]
    with pytest.raises(openai.BadRequestError) as refused:
        oai.responses.create(model="m", input="Hi", reasoning={"effort": "high"})
    assert refused.value.body["message"].endswith('"m" does not support thinking')


def test_reasoning_items_go_back_as_thinking(http: httpx.Client) -> None:
    """A reasoning item in the input is the thinking of the assistant message after it; an input_text part and
    the developer role are read as a system message would be."""
    body = {"model": "think", "input": [
        {"role": "developer", "content": [{"type": "input_text", "text": "Be kind."}]},
        {"role": "user", "content": "Hi"},
        {"type": "reasoning", "summary": [], "encrypted_content": "Greet."},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]},
        {"role": "user", "content": "Again"}], "max_output_tokens": 2}
    native = {"model": "think", "messages": [
        {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello", "thinking": "Greet."}, {"role": "user", "content": "Again"}],
        "_debug_render_only": True}
    rendered = http.post("/api/chat", json=native).json()["_debug_info"]["rendered_template"]
    assert "<|im_start|>assistant\n<think>Greet.</think>Hello<|im_end|>" in rendered
    assert http.post("/v1/responses", json=body).status_code == 200


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"model": "m", "input": 5}, 400,
     "input must be a string or array: json: cannot unmarshal number into Go value of type []json.RawMessage"),
    ({"model": "m", "input": [{"content": "x"}]}, 400, "input[0]: input item missing required 'type' field"),
    ({"model": "m", "input": [{"type": "bogus"}]}, 400, 'input[0]: unknown input item type: "bogus"'),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "video"}]}]}, 400,
     "input[0]: content[0]: unknown content type: video"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, 400,
     "file inputs are not currently supported"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{"}]}, 400,
     "failed to parse function call arguments: Expecting property name enclosed in double quotes"),
    ({"model": "m", "input": "Hi", "reasoning": {"effort": "huge"}}, 400,
     'invalid reasoning value: "huge" (must be "minimal", "low", "medium", "high", "xhigh", "ultra", "max", or '
     '"none")'),
    ({"model": "absent", "input": "Hi"}, 404, "model 'absent' not found"),
    ({"model": "m", "input": "Hi", "tools": [WEATHER]}, 400, "registry.ollama.ai/library/m:latest does not support "
                                                             "tools"),
])
def test_errors(http: httpx.Client, body: dict, status: int, message: str) -> None:
    answer = http.post("/v1/responses", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["message"] == message
