"""The OpenAI-compatible wire contract: request and response bodies of /v1/chat/completions,
/v1/completions, /v1/embeddings and /v1/models (Ollama's openai/openai.go types).

Like Go's decoder, a JSON `null` leaves a field at its zero value, unknown fields are ignored and a wrong
JSON type is a 400 with Go's text. Fields whose accepted shapes vary (`content`, `stop`, `input`) are kept
as decoded JSON and checked by the translation in `server/openai.py`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from server.api import DOCUMENTS_SCHEMA, RequestError, RerankResult, parse_request


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
# /v1/responses requests (Ollama's openai/responses.go). `input` and the content of its items take several
# shapes, so they stay decoded JSON here and server/responses.py reads them into the item models below.


class ResponsesReasoning(_Request):
    effort: str | None = None
    generate_summary: str | None = None
    summary: str | None = None


class ResponsesTextFormat(_Request):
    type: str | None = None
    name: str | None = None
    schema_: Any = Field(None, alias="schema")
    strict: bool | None = None


class ResponsesText(_Request):
    format: ResponsesTextFormat | None = None


class ResponsesTool(_Request):
    type: str | None = None
    name: str | None = None
    description: str | None = None
    strict: bool | None = None
    parameters: dict[str, Any] | None = None
    tools: list[ResponsesTool] | None = Field(None, description="a `namespace` tool's member functions")


INPUT_SCHEMA = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}, {"type": "null"}],
    "description": "a user message, or items: `message` (role, content as a string or `input_text`, "
                   "`output_text` and `input_image` parts), `function_call`, `function_call_output`, `reasoning`",
}


class ResponsesRequest(_Request):
    model: str | None = None
    background: bool | None = None
    conversation: Any = None
    include: list[str] | None = None
    input: Annotated[Any, WithJsonSchema(INPUT_SCHEMA)] = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    reasoning: ResponsesReasoning | None = None
    temperature: float | None = None
    text: ResponsesText | None = None
    top_p: float | None = None
    truncation: str | None = None
    tools: list[ResponsesTool] | None = None
    stream: bool | None = None


class RerankRequest(_Request):
    """llama-server's /v1/rerank (Jina's and Cohere's shape)."""

    model: str | None = None
    query: str | None = None
    documents: Annotated[Any, WithJsonSchema(DOCUMENTS_SCHEMA)] = None
    top_n: int | None = None
    return_documents: bool | None = None


class ResponsesTextContent(_Request):
    type: str | None = None
    text: str | None = None


class ResponsesImageContent(_Request):
    type: str | None = None
    detail: str | None = None
    file_id: str | None = None
    image_url: str | None = None


class ResponsesFileContent(_Request):
    type: str | None = None
    file_data: str | None = None
    file_id: str | None = None
    file_url: str | None = None
    filename: str | None = None


class ResponsesFunctionCall(_Request):
    id: str | None = None
    type: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None


class ResponsesReasoningSummary(_Request):
    type: str | None = None
    text: str | None = None


class ResponsesReasoningInput(_Request):
    id: str | None = None
    type: str | None = None
    summary: list[ResponsesReasoningSummary] | None = None
    encrypted_content: str | None = None


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


class ResponsesUsage(_Response):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens_details: dict[str, int]


class ResponsesResponse(_Response):
    """A whole Responses answer, and the `response` of the stream's created, in_progress and completed events."""

    id: str
    object: str = "response"
    created_at: int
    completed_at: int | None
    status: str
    incomplete_details: dict[str, Any] | None
    model: str
    previous_response_id: str | None
    instructions: str | None
    output: list[dict[str, Any]] = Field(description="`reasoning`, `function_call` and `message` items")
    error: dict[str, Any] | None
    tools: list[dict[str, Any]]
    tool_choice: Any
    truncation: str
    parallel_tool_calls: bool
    text: dict[str, Any]
    top_p: float
    presence_penalty: float
    frequency_penalty: float
    top_logprobs: int
    temperature: float
    reasoning: dict[str, Any] | None
    usage: ResponsesUsage | None
    max_output_tokens: int | None
    max_tool_calls: int | None
    store: bool
    background: bool
    service_tier: str
    metadata: dict[str, Any]
    safety_identifier: str | None
    prompt_cache_key: str | None


class ResponsesStreamEvent(_Response):
    """The data of one server-sent event; the event's name is its `type` (`response.created`,
    `response.output_text.delta`, ... `response.completed`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    sequence_number: int


class RerankUsage(_Response):
    prompt_tokens: int
    total_tokens: int


class RerankList(_Response):
    model: str
    object: str = "list"
    usage: RerankUsage
    results: list[RerankResult] = Field(description="most relevant first, at most `top_n`")


def parse(model: type[_Request], body: Any) -> Any:
    """`parse_request` with the Go package of these types in its messages."""
    try:
        return parse_request(model, body)
    except RequestError as e:
        raise RequestError(str(e).replace("Go value of type api.", "Go value of type openai.")) from None
