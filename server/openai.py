"""The OpenAI-compatible layer: OpenAI requests become native requests, native chunks become OpenAI
responses (Ollama's openai/openai.go and middleware/openai.go), plus the SSE writer both compatible
layers stream with.

Everything here is pure translation on dicts and pydantic models, so it can be tested on chunk dicts;
the handlers in server/routes/openai.py run the native pipelines between the two halves.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import re
import secrets
import string
import struct
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from modelstore import gojson
from server.api import ChatRequest, EmbedRequest, GenerateRequest, RequestError, parse_request
from server.api_openai import ChatCompletionRequest, CompletionRequest, Message, ToolCall
from server.api_openai import EmbedRequest as OpenAIEmbedRequest
from server.http import APIError, Lines, busy_headers, unexpected_error

log = logging.getLogger(__name__)
FINGERPRINT = "fp_ollama"
JSON = "application/json"


# ---------------------------------------------------------------------------------------------------
# Errors


def error_type(status: int) -> str:
    if status == 400:
        return "invalid_request_error"
    if status == 404:
        return "not_found_error"
    return "api_error"


def error_body(message: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type(status), "param": None, "code": None}}


def encoded(obj: Any) -> bytes:
    """Go's json.Encoder: compact, HTML-escaped, one trailing newline."""
    return gojson.encoder_bytes(obj)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encoded(obj), status_code=status, media_type=JSON, headers=headers)


def error_response(message: str, status: int) -> Response:
    return json_response(error_body(message, status), status, busy_headers(status))


# ---------------------------------------------------------------------------------------------------
# Small helpers


def go_type(value: Any) -> str:
    """Go's %T of a value decoded from JSON into `any`."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"


def unix_seconds(created_at: str | None) -> int:
    """Seconds of a Go RFC 3339 timestamp (the native `created_at`); now when absent."""
    if not created_at:
        return int(datetime.now(UTC).timestamp())
    text = re.sub(r"\.\d+", "", created_at).replace("Z", "+00:00")
    return int(datetime.fromisoformat(text).timestamp())


def chat_id() -> str:
    return f"chatcmpl-{random.randrange(999)}"


def completion_id() -> str:
    return f"cmpl-{random.randrange(999)}"


def tool_call_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "call_" + "".join(secrets.choice(alphabet) for _ in range(8))


def usage(final: dict[str, Any]) -> dict[str, int]:
    prompt = final.get("prompt_eval_count") or 0
    completion = final.get("eval_count") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _stop_list(stop: Any, *, strict: bool) -> list[str] | None:
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list):
        stops = []
        for item in stop:
            if isinstance(item, str):
                stops.append(item)
            elif strict:
                raise RequestError(f"invalid type for 'stop' field: {go_type(item)}")
        return stops
    return None


# ---------------------------------------------------------------------------------------------------
# Chat: request


REASONING_EFFORTS = {"none": False, "minimal": "low", "low": "low", "medium": "medium", "high": "high",
                     "max": "max", "xhigh": "max", "ultra": "max"}
_IMAGE_PREFIXES = tuple(f"data:image/{t};base64," for t in ("jpeg", "jpg", "png", "webp")) + ("data:;base64,",)


def think_from_effort(effort: str | None) -> bool | str | None:
    if not effort:
        return None
    if effort not in REASONING_EFFORTS:
        raise RequestError(f'invalid reasoning value: "{effort}" (must be "minimal", "low", "medium", "high", '
                           '"xhigh", "ultra", "max", or "none")')
    return REASONING_EFFORTS[effort]


def decode_image_url(url: str) -> str:
    """A data URL's base64 payload (validated); the native request decodes it."""
    if url.startswith(("http://", "https://")):
        raise RequestError("image URLs are not currently supported, please use base64 encoded data instead")
    for prefix in _IMAGE_PREFIXES:
        if url.startswith(prefix):
            payload = url[len(prefix):]
            try:
                base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise RequestError("invalid image input") from None
            return payload
    raise RequestError("invalid image input")


def _native_tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """OpenAI tool calls (arguments as a JSON string) to native ones (arguments as an object)."""
    native = []
    for index, call in enumerate(calls):
        function = call.function
        try:
            arguments = json.loads(function.arguments or "") if function else None
        except json.JSONDecodeError:
            raise RequestError("invalid tool call arguments") from None
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise RequestError("invalid tool call arguments")
        entry: dict[str, Any] = {"function": {"index": index, "name": (function.name if function else None) or "",
                                              "arguments": arguments}}
        if call.id:
            entry["id"] = call.id
        native.append(entry)
    return native


def _name_from_tool_call_id(messages: list[Message], call_id: str) -> str:
    for message in reversed(messages):
        for call in message.tool_calls or []:
            if call.id == call_id and call.function is not None:
                return call.function.name or ""
    return ""


def _content_parts(role: str, parts: list[Any]) -> list[dict[str, Any]]:
    """Each part of an array content becomes its own native message with the same role."""
    messages = []
    for part in parts:
        if not isinstance(part, dict):
            raise RequestError("invalid message format")
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise RequestError("invalid message format")
            messages.append({"role": role, "content": text})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise RequestError("invalid message format")
            messages.append({"role": role, "content": "", "images": [decode_image_url(url)]})
        elif kind == "input_audio":
            audio = part.get("input_audio")
            data = audio.get("data") if isinstance(audio, dict) else None
            if not isinstance(data, str):
                raise RequestError("invalid message format")
            try:
                base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise RequestError("invalid message format") from None
            messages.append({"role": role, "content": "", "images": [data]})
        else:
            raise RequestError("invalid message format")
    return messages


def native_messages(messages: list[Message]) -> list[dict[str, Any]]:
    native: list[dict[str, Any]] = []
    for message in messages:
        role = (message.role or "").lower()
        if role == "developer":  # OpenAI's newer name for the system role; templates know only "system"
            role = "system"
        extra: dict[str, Any] = {}
        if role == "tool":
            name = message.name or ""
            if not name and message.tool_call_id:
                name = _name_from_tool_call_id(messages, message.tool_call_id)
            if name:
                extra["tool_name"] = name
            if message.tool_call_id:
                extra["tool_call_id"] = message.tool_call_id
        content = message.content
        calls = _native_tool_calls(message.tool_calls) if message.tool_calls else None
        if isinstance(content, str):
            entry: dict[str, Any] = {"role": role, "content": content, **extra}
        elif isinstance(content, list):
            parts = [{**p, **extra} for p in _content_parts(role, content)]
            if not parts:
                parts = [{"role": role, "content": "", **extra}]
            native += parts[:-1]
            entry = parts[-1]
        elif message.tool_calls is not None:  # content may be left out only next to tool calls
            entry = {"role": role, "content": "", **extra}
        else:
            raise RequestError(f"invalid message content type: {go_type(content)}")
        if message.reasoning:
            entry["thinking"] = message.reasoning
        if calls:
            entry["tool_calls"] = calls
        native.append(entry)
    return native


def chat_request(req: ChatCompletionRequest) -> ChatRequest:
    """FromChatRequest: the native chat request behind /v1/chat/completions."""
    if not req.messages:
        raise RequestError("[] is too short - 'messages'")
    messages = native_messages(req.messages)
    options: dict[str, Any] = {}
    stop = _stop_list(req.stop, strict=False)
    if stop is not None:
        options["stop"] = stop
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    options["temperature"] = 1.0 if req.temperature is None else req.temperature
    if req.seed is not None:
        options["seed"] = req.seed
    if req.frequency_penalty is not None:
        options["frequency_penalty"] = req.frequency_penalty
    if req.presence_penalty is not None:
        options["presence_penalty"] = req.presence_penalty
    options["top_p"] = 1.0 if req.top_p is None else req.top_p

    fmt: Any = None
    if req.response_format is not None:
        kind = (req.response_format.type or "").strip().lower()
        if kind == "json_object":
            fmt = "json"
        elif kind == "json_schema" and req.response_format.json_schema is not None:
            fmt = req.response_format.json_schema.schema_

    effort = req.reasoning.effort if req.reasoning is not None and req.reasoning.effort else req.reasoning_effort
    body: dict[str, Any] = {
        "model": req.model or "",
        "messages": messages,
        "options": options,
        "stream": bool(req.stream),
        "think": think_from_effort(effort),
        "logprobs": bool(req.logprobs),
        "top_logprobs": req.top_logprobs or 0,
        "_debug_render_only": bool(req.debug_render_only),
    }
    if fmt is not None:
        body["format"] = fmt
    if req.tools:
        body["tools"] = req.tools
    return parse_request(ChatRequest, body)


# ---------------------------------------------------------------------------------------------------
# Chat: responses


def openai_tool_calls(calls: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Native tool calls to OpenAI's shape, arguments as a JSON string; a call without an id gets one."""
    converted = []
    for call in calls:
        function = call.get("function") or {}
        converted.append({
            "id": call.get("id") or tool_call_id(),
            "index": function.get("index", 0),
            "type": "function",
            "function": {"name": function.get("name", ""),
                         "arguments": gojson.dumps(function.get("arguments") or {})},
        })
    return converted


def finish_reason(done_reason: str | None, tool_calls: bool) -> str | None:
    if tool_calls and done_reason in ("stop", "", None):
        return "tool_calls"
    return done_reason or None


def chat_logprobs(entries: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if not entries:
        return None
    return {"content": [{**entry, "top_logprobs": entry.get("top_logprobs", [])} for entry in entries]}


def chat_completion(completion_id: str, final: dict[str, Any]) -> dict[str, Any]:
    """ToChatCompletion: a joined native chat response as one chat.completion object."""
    native = final.get("message") or {}
    calls = openai_tool_calls(native.get("tool_calls") or [])
    message: dict[str, Any] = {"role": "assistant", "content": native.get("content", "")}
    if native.get("thinking"):
        message["reasoning"] = native["thinking"]
    if calls:
        message["tool_calls"] = calls
    choice: dict[str, Any] = {"index": 0, "message": message,
                              "finish_reason": finish_reason(final.get("done_reason"), bool(calls))}
    logprobs = chat_logprobs(final.get("logprobs"))
    if logprobs:
        choice["logprobs"] = logprobs
    body: dict[str, Any] = {
        "id": completion_id, "object": "chat.completion", "created": unix_seconds(final.get("created_at")),
        "model": final.get("model", ""), "system_fingerprint": FINGERPRINT, "choices": [choice],
        "usage": usage(final),
    }
    if final.get("_debug_info") is not None:
        body["_debug_info"] = final["_debug_info"]
    return body


class ChatChunker:
    """ChatWriter for streams: native chunks in, chat.completion.chunk objects out.

    The first chunk alone carries `role`; all share the `created` of the first; a native chunk with
    both thinking and content (or tool calls) is split in two; the native final chunk becomes a
    separate finish chunk (`delta: {}`), then the usage chunk when asked for.
    """

    def __init__(self, completion_id: str, model: str, created: int, include_usage: bool) -> None:
        self.id = completion_id
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self.role_sent = False
        self.tool_call_sent = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None,
               logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self.role_sent and delta:
            delta = {"role": "assistant", **delta}
            self.role_sent = True
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        if logprobs:
            choice["logprobs"] = logprobs
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": FINGERPRINT, "choices": [choice]}

    def process(self, native: dict[str, Any]) -> list[dict[str, Any]]:
        chunks = []
        message = native.get("message") or {}
        content = message.get("content", "")
        thinking = message.get("thinking", "")
        calls = openai_tool_calls(message.get("tool_calls") or [])
        logprobs = chat_logprobs(native.get("logprobs"))
        if thinking and (content or calls):
            chunks.append(self._chunk({"reasoning": thinking}))
            delta: dict[str, Any] = {"content": content}
            if calls:
                delta["tool_calls"] = calls
            chunks.append(self._chunk(delta, logprobs=logprobs))
        elif content or thinking or calls or logprobs:
            delta = {"content": content}
            if thinking:
                delta["reasoning"] = thinking
            if calls:
                delta["tool_calls"] = calls
            chunks.append(self._chunk(delta, logprobs=logprobs))
        if calls:
            self.tool_call_sent = True
        if native.get("done"):
            if not self.role_sent:
                chunks.append(self._chunk({"content": ""}))
            chunks.append(self._chunk({}, finish_reason(native.get("done_reason") or "stop", self.tool_call_sent)))
            if self.include_usage:
                chunks.append({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                               "model": self.model, "system_fingerprint": FINGERPRINT, "choices": [],
                               "usage": usage(native)})
        return chunks


# ---------------------------------------------------------------------------------------------------
# Completions


def completion_request(req: CompletionRequest) -> GenerateRequest:
    """FromCompleteRequest: the native generate request behind /v1/completions."""
    options: dict[str, Any] = {}
    stop = _stop_list(req.stop, strict=True)
    if stop is not None:
        options["stop"] = stop
    if req.max_tokens is not None:
        options["num_predict"] = req.max_tokens
    options["temperature"] = 1.0 if req.temperature is None else req.temperature
    if req.seed is not None:
        options["seed"] = req.seed
    options["frequency_penalty"] = req.frequency_penalty or 0.0
    options["presence_penalty"] = req.presence_penalty or 0.0
    options["top_p"] = req.top_p if req.top_p else 1.0
    logprobs = req.logprobs or 0
    return parse_request(GenerateRequest, {
        "model": req.model or "",
        "prompt": req.prompt or "",
        "suffix": req.suffix or "",
        "options": options,
        "stream": bool(req.stream),
        "logprobs": logprobs > 0,
        "top_logprobs": max(logprobs, 0),
        "_debug_render_only": bool(req.debug_render_only),
    })


def completion_logprobs(entries: list[dict[str, Any]] | None, offset: int = 0) -> dict[str, Any] | None:
    """Native logprobs in the legacy completions shape (tokens, token_logprobs, top_logprobs, text_offset)."""
    if not entries:
        return None
    result: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for entry in entries:
        result["tokens"].append(entry.get("token", ""))
        result["token_logprobs"].append(entry.get("logprob", 0.0))
        result["top_logprobs"].append({t.get("token", ""): t.get("logprob", 0.0)
                                       for t in entry.get("top_logprobs") or []})
        result["text_offset"].append(offset)
        offset += len(entry.get("token", ""))
    return result


def _completion_choice(native: dict[str, Any], logprobs: dict[str, Any] | None) -> dict[str, Any]:
    choice: dict[str, Any] = {"text": native.get("response", ""), "index": 0,
                              "finish_reason": native.get("done_reason") or None}
    if logprobs:
        choice["logprobs"] = logprobs
    return choice


def completion(completion_id: str, final: dict[str, Any]) -> dict[str, Any]:
    """ToCompletion: a joined native generate response as one text_completion object."""
    body: dict[str, Any] = {
        "id": completion_id, "object": "text_completion", "created": unix_seconds(final.get("created_at")),
        "model": final.get("model", ""), "system_fingerprint": FINGERPRINT,
        "choices": [_completion_choice(final, completion_logprobs(final.get("logprobs")))],
        "usage": usage(final),
    }
    if final.get("_debug_info") is not None:
        body["_debug_info"] = final["_debug_info"]
    return body


class CompletionChunker:
    """CompleteWriter for streams: one chunk per native chunk (the final one with its finish_reason);
    with include_usage every chunk carries zero usage and a last chunk with `choices: []` the real one."""

    def __init__(self, completion_id: str, model: str, created: int, include_usage: bool) -> None:
        self.id = completion_id
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self.offset = 0

    def _chunk(self, choices: list[dict[str, Any]], usage_value: dict[str, int] | None) -> dict[str, Any]:
        chunk: dict[str, Any] = {"id": self.id, "object": "text_completion", "created": self.created,
                                 "choices": choices, "model": self.model, "system_fingerprint": FINGERPRINT}
        if usage_value is not None:
            chunk["usage"] = usage_value
        return chunk

    def process(self, native: dict[str, Any]) -> list[dict[str, Any]]:
        zero = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0} if self.include_usage else None
        logprobs = completion_logprobs(native.get("logprobs"), self.offset)
        self.offset += len(native.get("response", ""))
        chunks = [self._chunk([_completion_choice(native, logprobs)], zero)]
        if native.get("done") and self.include_usage:
            chunks.append(self._chunk([], usage(native)))
        return chunks


# ---------------------------------------------------------------------------------------------------
# Embeddings and models


def embed_request(req: OpenAIEmbedRequest) -> tuple[EmbedRequest, str]:
    """The native embed request and the encoding format, checked as EmbeddingsMiddleware does."""
    encoding = req.encoding_format or ""
    if encoding and encoding.lower() not in ("float", "base64"):
        raise RequestError(f"Invalid value for 'encoding_format' = {encoding}. Supported values: ['float', 'base64'].")
    value = req.input
    if value == "":
        value = [""]
    if value is None or value == []:
        raise RequestError("invalid input")
    native = parse_request(EmbedRequest, {"model": req.model or "", "input": value,
                                          "dimensions": req.dimensions or 0})
    return native, encoding.lower()


def floats_to_base64(vector: Iterable[float]) -> str:
    values = list(vector)
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def embedding_list(model: str, native: dict[str, Any], encoding: str) -> dict[str, Any]:
    data = []
    for index, vector in enumerate(native.get("embeddings") or []):
        embedding: Any = floats_to_base64(vector) if encoding == "base64" else vector
        data.append({"object": "embedding", "embedding": embedding, "index": index})
    tokens = native.get("prompt_eval_count") or 0
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def model_entry(model_id: str, modified_at_ns: int, namespace: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": modified_at_ns // 1_000_000_000, "owned_by": namespace}


# ---------------------------------------------------------------------------------------------------
# Server-sent events


def sse_data(obj: Any) -> bytes:
    return b"data: " + gojson.dumps(obj).encode("utf-8", "surrogateescape") + b"\n\n"


DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"content-type": "text/event-stream"}


async def close_quietly(items: AsyncIterator[Any]) -> None:
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()


async def sse_response(
    chunks: AsyncIterator[dict],
    process: Callable[[dict], list[bytes]],
    *,
    on_error_before: Callable[[APIError], Response],
    on_error_after: Callable[[APIError], list[bytes]],
    finish: Callable[[], list[bytes]] = list,
    headers: dict[str, str] | None = None,
) -> Response:
    """Stream native chunks as server-sent events. An error before the first chunk is an ordinary HTTP
    error; one after it becomes the events `on_error_after` writes, and the stream ends."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except APIError as e:
        await close_quietly(chunks)
        return on_error_before(e)

    async def body() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                for event in process(first):
                    yield event
            async for chunk in chunks:
                for event in process(chunk):
                    yield event
        except APIError as e:
            for event in on_error_after(e):
                yield event
            return
        except Exception as e:  # noqa: BLE001 - the stream has begun: the error is its last event
            log.exception("a stream failed")
            for event in on_error_after(APIError(*unexpected_error(e))):
                yield event
            return
        finally:
            await close_quietly(chunks)
        for event in finish():
            yield event

    return Lines(body(), headers={**SSE_HEADERS, **(headers or {})})
