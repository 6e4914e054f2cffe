"""The Anthropic-compatible wire contract: the request body of /v1/messages (Ollama's anthropic/anthropic.go).

As with Go's decoder: `null` leaves a field at its zero value, unknown fields (`cache_control`, `citations`,
`metadata`…) are ignored, and a wrong JSON type is a 400 with Go's text. A message's `content` is a string
or a list of content blocks; a string is read as one text block.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

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
    blocks: list[ContentBlock] = []


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
