"""The OpenAI-compatible wire contract: request and response bodies of /v1/chat/completions,
/v1/completions, /v1/embeddings and /v1/models (Ollama's openai/openai.go types).

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


# ---------------------------------------------------------------------------------------------------
# Responses (what server/openai.py writes)


class _Response(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class ErrorDetail(_Response):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(_Response):
    """Every error of the OpenAI-compatible routes (and, in a stream, a `data:` event before `[DONE]`)."""

    error: ErrorDetail


class Usage(_Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class FunctionCall(_Response):
    name: str
    arguments: str


class ToolCallResponse(_Response):
    id: str
    index: int | None = None
    type: str = "function"
    function: FunctionCall


class ChatMessage(_Response):
    role: str
    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallResponse] | None = None


class ChatChoice(_Response):
    index: int
    message: ChatMessage
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class ChatCompletion(_Response):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatChoice]
    usage: Usage
    debug_info: dict[str, Any] | None = Field(None, alias="_debug_info")


class ChunkDelta(_Response):
    role: str | None = None
    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallResponse] | None = None


class ChunkChoice(_Response):
    index: int
    delta: ChunkDelta
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(_Response):
    """One `data:` event of a streamed chat completion; the stream ends with `data: [DONE]`."""

    id: str
    object: str = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class CompletionChoice(_Response):
    text: str
    index: int
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class Completion(_Response):
    """A text completion, whole or (in a stream) one `data:` event of it."""

    id: str
    object: str = "text_completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    debug_info: dict[str, Any] | None = Field(None, alias="_debug_info")


class Embedding(_Response):
    object: str = "embedding"
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32 when asked for")
    index: int


class EmbeddingUsage(_Response):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(_Response):
    object: str = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class Model(_Response):
    id: str
    object: str = "model"
    created: int
    owned_by: str


class ModelList(_Response):
    object: str = "list"
    data: list[Model] | None = Field(description="`null` when no model is installed, as in Ollama")


def parse(model: type[_Request], body: Any) -> Any:
    """`parse_request` with the Go package of these types in its messages."""
    try:
        return parse_request(model, body)
    except RequestError as e:
        raise RequestError(str(e).replace("Go value of type api.", "Go value of type openai.")) from None
