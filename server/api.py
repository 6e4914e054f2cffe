"""The wire contract: every request and response body of the native API (Ollama's api/types.go).

Requests are validated strictly (a string where Go expects a bool is a 400 with Go's text); responses
are written in Go's field order, with `None` meaning "omitted" (Go's omitempty).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator

from server.envconfig import MAX_DURATION_SECONDS, DurationError, parse_go_duration

FOREVER = math.inf

# ---------------------------------------------------------------------------------------------------
# Custom JSON field types


def _go_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return type(value).__name__


def _keep_alive(value: Any) -> float | None:
    """api.Duration: seconds as a number, or a Go duration string; negative means forever."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Beyond what Go's time.Duration holds (about 292 years) is forever too.
        return FOREVER if value < 0 or value >= MAX_DURATION_SECONDS else float(value)
    if isinstance(value, str):
        try:
            seconds = parse_go_duration(value)
        except DurationError as e:
            raise ValueError(str(e)) from None
        return FOREVER if seconds < 0 else seconds
    raise ValueError(f"Unsupported type: '{_go_type_name(value)}'")


THINK_LEVELS = ("high", "medium", "low", "max")


def _think(value: Any) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in THINK_LEVELS:
            return value
        raise ValueError(f'invalid think value: "{value}" (must be "high", "medium", "low", "max", true, or false)')
    raise ValueError('think must be a boolean or string ("high", "medium", "low", "max", true, or false)')


def _images(value: Any) -> list[bytes] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(f"json: cannot unmarshal {_json_kind(value)} into Go value of type []api.ImageData")
    decoded = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"json: cannot unmarshal {_json_kind(item)} into Go value of type []uint8")
        decoded.append(decode_base64(item))
    return decoded


def decode_base64(text: str) -> bytes:
    """Go's base64.StdEncoding: padded standard alphabet; the error names the first bad byte."""
    alphabet = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    raw = text.encode()
    stripped = raw.replace(b"\r", b"").replace(b"\n", b"")
    for index, byte in enumerate(stripped):
        if byte not in alphabet and byte != ord("="):
            raise ValueError(f"illegal base64 data at input byte {index}")
    try:
        return base64.b64decode(stripped, validate=True)
    except binascii.Error:
        raise ValueError(f"illegal base64 data at input byte {len(stripped.rstrip(b'='))}") from None


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


# What these accept on the wire, for the OpenAPI document (their Python types are what they decode to).
GO_DURATION_PATTERN = r"^([-+]?0|[-+]?([0-9]*\.?[0-9]+(ns|us|µs|ms|s|m|h))+)$"
KeepAlive = Annotated[float | None, BeforeValidator(_keep_alive), WithJsonSchema({
    "anyOf": [{"type": "number"}, {"type": "string", "pattern": GO_DURATION_PATTERN}, {"type": "null"}],
    "description": "seconds, or a Go duration (`5m`, `1h30m`); negative keeps the model loaded forever"})]
Think = Annotated[bool | str | None, BeforeValidator(_think), WithJsonSchema({
    "anyOf": [{"type": "boolean"}, {"enum": list(THINK_LEVELS)}, {"type": "null"}]})]
Images = Annotated[list[bytes] | None, BeforeValidator(_images), WithJsonSchema({
    "anyOf": [{"type": "array", "items": {"type": "string", "format": "byte"}}, {"type": "null"}],
    "description": "base64-encoded images"})]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        """Go leaves a field untouched when its JSON value is null, whatever its type."""
        if isinstance(data, dict) and None in data.values():
            return {key: value for key, value in data.items() if value is not None}
        return data


class RequestError(ValueError):
    """A body that does not decode; `str()` is the Go-style text sent back with status 400."""


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


_GO_TYPES = {
    "bool_type": "bool", "string_type": "string", "int_type": "int", "int_from_float": "int",
    "float_type": "float64", "list_type": "[]interface {}", "dict_type": "map[string]interface {}",
    "model_type": "struct",
}


def parse_request(model: type[BaseModel], body: Any) -> Any:
    """Validate a decoded JSON body into `model`, turning failures into Go-like messages."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise RequestError(f"json: cannot unmarshal {_json_kind(body)} into Go value of type api.{model.__name__}")
    try:
        return model.model_validate(body)
    except ValidationError as e:
        error = e.errors()[0]
        if error["type"] == "value_error":
            raise RequestError(str(error["ctx"]["error"])) from None
        field = ".".join(str(p) for p in error["loc"] if not isinstance(p, int))
        go_type = _GO_TYPES.get(error["type"], error["type"])
        kind = _json_kind(error.get("input"))
        if kind == "number" and go_type == "int":
            kind = f"number {error.get('input')}"
        raise RequestError(
            f"json: cannot unmarshal {kind} into Go struct field {model.__name__}.{field} of type {go_type}"
        ) from None


# ---------------------------------------------------------------------------------------------------
# Shared pieces


class ToolCallFunction(_Request):
    index: int = 0
    name: str = ""
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCall(_Request):
    id: str | None = None
    function: ToolCallFunction


class Message(_Request):
    role: Annotated[str, BeforeValidator(_lower)] = ""
    content: str = ""
    thinking: str | None = None
    images: Images = None
    tool_calls: list[ToolCall] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None

    def template_dict(self) -> dict[str, Any]:
        """The message as the template engine and the Modelfile MESSAGE layer see it."""
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.thinking:
            data["thinking"] = self.thinking
        if self.images:
            data["images"] = self.images
        if self.tool_calls:
            data["tool_calls"] = [c.model_dump(exclude_none=True) for c in self.tool_calls]
        if self.tool_name:
            data["tool_name"] = self.tool_name
        if self.tool_call_id:
            data["tool_call_id"] = self.tool_call_id
        return data


class _Inference(_Request):
    model: str = ""
    format: Any = None
    options: dict[str, Any] | None = None
    stream: bool | None = None
    keep_alive: KeepAlive = None
    think: Think = None
    truncate: bool | None = None
    shift: bool | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    debug_render_only: bool = Field(False, alias="_debug_render_only")


class GenerateRequest(_Inference):
    prompt: str = ""
    suffix: str = ""
    system: str = ""
    template: str = ""
    context: list[int] | None = None
    raw: bool = False
    images: Images = None


class ChatRequest(_Inference):
    messages: list[Message] | None = None
    tools: list[dict[str, Any]] | None = None


class ShowRequest(_Request):
    model: str = ""
    name: str = ""
    system: str = ""
    template: str = ""
    verbose: bool = False
    options: dict[str, Any] | None = None


class CopyRequest(_Request):
    source: str = ""
    destination: str = ""


class DeleteRequest(_Request):
    model: str = ""
    name: str = ""


class CreateRequest(_Request):
    model: str = ""
    name: str = ""
    from_: str = Field("", alias="from")
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    template: str = ""
    system: str = ""
    license: str | list[str] | None = None
    parameters: dict[str, Any] | None = None
    messages: list[Message] | None = None
    quantize: str = ""
    quantization: str = ""
    draft_quantize: str = ""
    draft_files: dict[str, str] | None = None  # a draft model for speculative decoding (Modelfile DRAFT)
    renderer: str = ""
    parser: str = ""
    requires: str = ""
    stream: bool | None = None


class EmbedRequest(_Request):
    model: str = ""
    input: Any = None
    truncate: bool | None = None
    dimensions: int = 0
    keep_alive: KeepAlive = None
    options: dict[str, Any] | None = None


class EmbeddingRequest(_Request):
    model: str = ""
    prompt: str = ""
    keep_alive: KeepAlive = None
    options: dict[str, Any] | None = None


DOCUMENTS_SCHEMA = {"anyOf": [{"type": "array", "items": {"anyOf": [
    {"type": "string"}, {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}]}},
    {"type": "null"}], "description": "strings, or objects with a `text` (Cohere's and Jina's shape)"}


class RerankRequest(_Request):
    """pollama's own (Ollama has no reranking): score `documents` against `query` with a reranker model."""

    model: str = ""
    query: str | None = None
    documents: Annotated[Any, WithJsonSchema(DOCUMENTS_SCHEMA)] = None
    top_n: int | None = None
    return_documents: bool = False
    truncate: bool | None = None
    keep_alive: KeepAlive = None
    options: dict[str, Any] | None = None


# ---------------------------------------------------------------------------------------------------
# Responses: field order is Go's; None fields are left out.


class _Response(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, by_alias=True)


class DebugInfo(_Response):
    rendered_template: str
    image_count: int | None = None


class GenerateResponse(_Response):
    model: str
    created_at: str
    response: str = ""
    thinking: str | None = None
    done: bool = False
    done_reason: str | None = None
    context: list[int] | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    tool_calls: list[dict[str, Any]] | None = None
    debug_info: DebugInfo | None = Field(None, alias="_debug_info")
    logprobs: list[dict[str, Any]] | None = None


class ResponseMessage(_Response):
    role: str = "assistant"
    content: str = ""
    thinking: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatResponse(_Response):
    model: str
    created_at: str
    message: ResponseMessage = Field(default_factory=ResponseMessage)
    done: bool = False
    done_reason: str | None = None
    debug_info: DebugInfo | None = Field(None, alias="_debug_info")
    logprobs: list[dict[str, Any]] | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None


class ProgressResponse(_Response):
    """One line of create, pull and push progress; the last is `{"status": "success"}`."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


class ErrorResponse(_Response):
    """Every error of the native API (and a stream's last line when it fails midway)."""

    error: str


class VersionResponse(_Response):
    version: str


class ReadyResponse(_Response):
    status: str


class CloudStatus(_Response):
    disabled: bool
    source: str = Field(description="`env` (OLLAMA_NO_CLOUD), `config` or `both`")


class StatusResponse(_Response):
    cloud: CloudStatus


class ModelDetails(_Response):
    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""
    context_length: int | None = None
    embedding_length: int | None = None


class ListModelResponse(_Response):
    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: ModelDetails
    capabilities: list[str] | None = None


class ListResponse(_Response):
    models: list[ListModelResponse]


class ProcessModelResponse(_Response):
    name: str
    model: str
    size: int
    digest: str
    details: ModelDetails
    expires_at: str
    size_vram: int
    context_length: int


class ProcessResponse(_Response):
    models: list[ProcessModelResponse]


class Tensor(_Response):
    name: str
    type: str
    shape: list[int]


class ShowResponse(_Response):
    license: str | None = None
    modelfile: str | None = None
    parameters: str | None = None
    template: str | None = None
    system: str | None = None
    details: ModelDetails | None = None
    messages: list[ResponseMessage] | None = None
    model_info: dict[str, Any] = Field(default_factory=dict)
    projector_info: dict[str, Any] | None = None
    tensors: list[Tensor] | None = None
    capabilities: list[str] | None = None
    modified_at: str | None = None
    requires: str | None = None


class EmbedResponse(_Response):
    model: str
    embeddings: list[list[float]]
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None


class EmbeddingResponse(_Response):
    embedding: list[float]


class RerankDocument(_Response):
    text: str


class RerankResult(_Response):
    index: int
    relevance_score: float = Field(description="the model's raw score: higher is more relevant")
    document: RerankDocument | None = None


class RerankResponse(_Response):
    model: str
    results: list[RerankResult] = Field(description="most relevant first, at most `top_n`")
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None


# ---------------------------------------------------------------------------------------------------
# Registry requests (api.PullRequest, api.PushRequest); `username`/`password` are accepted and ignored.


class PullRequest(_Request):
    model: str = ""
    name: str = ""
    insecure: bool = False
    username: str = ""
    password: str = ""
    stream: bool | None = None


class PushRequest(_Request):
    model: str = ""
    name: str = ""
    insecure: bool = False
    username: str = ""
    password: str = ""
    stream: bool | None = None
