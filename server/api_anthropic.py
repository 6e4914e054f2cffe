"""The Anthropic-compatible wire contract: the request body of /v1/messages (Ollama's anthropic/anthropic.go).

As with Go's decoder: `null` leaves a field at its zero value, unknown fields (`cache_control`, `citations`,
`metadata`…) are ignored, and a wrong JSON type is a 400 with Go's text. A message's `content` is a string
or a list of content blocks; a string is read as one text block.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from server.api import RequestError, parse_request


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)


class ImageSource(_Request):
    type: str | None = None
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class ContentBlock(_Request):
    type: str | None = None
    text: str | None = None
    source: ImageSource | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: Any = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None


class MessageParam(_Request):
    role: str | None = None
    content: Any = None
    # The content decoded into blocks by `parse`; not part of the wire format.
    blocks: SkipJsonSchema[list[ContentBlock]] = Field(default_factory=list, exclude=True)


class Tool(_Request):
    type: str | None = None
    name: str | None = None
    description: str | None = None
    input_schema: Any = None


class ThinkingConfig(_Request):
    type: str | None = None
    budget_tokens: int | None = None


class OutputConfig(_Request):
    effort: str | None = None


class MessagesRequest(_Request):
    model: str | None = None
    max_tokens: int | None = None
    messages: list[MessageParam] | None = None
    system: Any = None
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    tools: list[Tool] | None = None
    tool_choice: Any = None
    thinking: ThinkingConfig | None = None
    metadata: Any = None
    output_config: OutputConfig | None = None


# ---------------------------------------------------------------------------------------------------
# Responses (what server/anthropic.py writes)


class _Response(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class ErrorDetail(_Response):
    type: str
    message: str


class ErrorResponse(_Response):
    """Every error of /v1/messages; in a stream, the data of an `error` event (without `request_id`)."""

    type: str = "error"
    error: ErrorDetail
    request_id: str | None = None


class ResponseBlock(_Response):
    type: str = Field(description="`text`, `thinking` or `tool_use`")
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None


class Usage(_Response):
    input_tokens: int
    output_tokens: int


class MessagesResponse(_Response):
    id: str
    type: str = "message"
    role: str = "assistant"
    model: str
    content: list[ResponseBlock]
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage


class StreamEvent(_Response):
    """The data of one server-sent event: message_start, content_block_start/_delta/_stop, message_delta,
    message_stop, or error; the event's name is its `type`."""

    type: str
    message: dict[str, Any] | None = None
    index: int | None = None
    content_block: dict[str, Any] | None = None
    delta: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    error: ErrorDetail | None = None


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "null"


def parse(body: Any) -> MessagesRequest:
    """Decode a /v1/messages body; every message's content ends up as `blocks`."""
    try:
        req: MessagesRequest = parse_request(MessagesRequest, body)
    except RequestError as e:
        raise RequestError(str(e).replace("Go value of type api.", "Go value of type anthropic.")) from None
    for message in req.messages or []:
        content = message.content
        if isinstance(content, str):
            message.blocks = [ContentBlock(type="text", text=content)]
            continue
        if content is None:
            continue
        if not isinstance(content, list):
            raise RequestError(f"json: cannot unmarshal {_json_kind(content)} into Go value of type "
                               "[]anthropic.ContentBlock")
        blocks = []
        for block in content:
            if block is None:  # Go decodes null into a zero block, an unknown type that is skipped
                continue
            if not isinstance(block, dict):
                raise RequestError(f"json: cannot unmarshal {_json_kind(block)} into"
                                   " Go value of type anthropic.ContentBlock")
            blocks.append(parse_request(ContentBlock, block))
        message.blocks = blocks
    return req
