"""The OpenAI-compatible wire contract: request bodies of /v1/chat/completions, /v1/completions and
/v1/embeddings (Ollama's openai/openai.go types).

Like Go's decoder, a JSON `null` leaves a field at its zero value, unknown fields are ignored and a wrong
JSON type is a 400 with Go's text. Fields whose accepted shapes vary (`content`, `stop`, `input`) are kept
as decoded JSON and checked by the translation in `server/openai.py`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from server.api import RequestError, parse_request


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)


class ToolCallFunction(_Request):
    name: str | None = None
    arguments: str | None = None


class ToolCall(_Request):
    id: str | None = None
    index: int | None = None
    type: str | None = None
    function: ToolCallFunction | None = None


class Message(_Request):
    role: str | None = None
    content: Any = None
    reasoning: str | None = None
    tool_calls: list[ToolCall] | None = None
    name: str | None = None
    tool_call_id: str | None = None


class StreamOptions(_Request):
    include_usage: bool | None = None


class JsonSchema(_Request):
    schema_: Any = Field(None, alias="schema")


class ResponseFormat(_Request):
    type: str | None = None
    json_schema: JsonSchema | None = None


class Reasoning(_Request):
    effort: str | None = None


class ChatCompletionRequest(_Request):
    model: str | None = None
    messages: list[Message] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    seed: int | None = None
    stop: Any = None
    temperature: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    top_p: float | None = None
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    reasoning: Reasoning | None = None
    reasoning_effort: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    debug_render_only: bool | None = Field(None, alias="_debug_render_only")


class CompletionRequest(_Request):
    model: str | None = None
    prompt: str | None = None
    frequency_penalty: float | None = None
    max_tokens: int | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    stop: Any = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    suffix: str | None = None
    logprobs: int | None = None
    debug_render_only: bool | None = Field(None, alias="_debug_render_only")


class EmbedRequest(_Request):
    input: Any = None
    model: str | None = None
    dimensions: int | None = None
    encoding_format: str | None = None


def parse(model: type[_Request], body: Any) -> Any:
    """`parse_request` with the Go package of these types in its messages."""
    try:
        return parse_request(model, body)
    except RequestError as e:
        raise RequestError(str(e).replace("Go value of type api.", "Go value of type openai.")) from None
