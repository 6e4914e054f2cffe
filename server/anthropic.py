"""The Anthropic-compatible layer: Messages requests become native chat requests, native chunks become a
Messages response or its event stream (Ollama's anthropic/anthropic.go and middleware/anthropic.go).

Pure translation on dicts and pydantic models; server/routes/anthropic.py runs the native chat between.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.responses import Response

from modelstore import gojson
from server.api import ChatRequest, RequestError, decode_base64, parse_request
from server.api_anthropic import ImageSource, MessageParam, MessagesRequest
from server.http import APIError, busy_headers
from server.openai import encoded, tool_call_id

JSON = "application/json"
STREAM_HEADERS = {"cache-control": "no-cache", "connection": "keep-alive"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error", 503: "overloaded_error", 529: "overloaded_error"}


def generate_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def message_id() -> str:
    return generate_id("msg")


# ---------------------------------------------------------------------------------------------------
# Errors


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error")


def error_body(message: str, status: int) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status), "message": message},
            "request_id": generate_id("req")}


def error_response(message: str, status: int) -> Response:
    return Response(encoded(error_body(message, status)), status_code=status, media_type=JSON,
                    headers=busy_headers(status))


def json_response(obj: Any) -> Response:
    return Response(encoded(obj), media_type=JSON)


def stream_error(error: APIError) -> dict[str, Any]:
    """The `error` event for a failure after the stream began (the SDKs raise on it)."""
    return {"type": "error", "error": {"type": error_type(error.status), "message": error.message}}


# ---------------------------------------------------------------------------------------------------
# Request


def _image(source: ImageSource) -> str:
    """A base64 image source's data, validated; the native request decodes it."""
    if source.type != "base64":
        raise RequestError(f"invalid image source type: {source.type or ''}. Only base64 images are supported.")
    try:
        decode_base64(source.data or "")
    except ValueError as e:
        raise RequestError(f"invalid base64 image data: {e}") from None
    return source.data or ""


def _tool_result_content(content: Any) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        return "", []
    text, images = [], []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            text.append(block["text"])
        elif block.get("type") == "image":
            source = block.get("source")
            if not isinstance(source, dict):
                raise RequestError("invalid tool_result image source")
            images.append(_image(ImageSource(type=_str(source.get("type")), media_type=_str(source.get("media_type")),
                                             data=_str(source.get("data")))))
    return "".join(text), images


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _convert_message(message: MessageParam, tool_names: dict[str, str]) -> list[dict[str, Any]]:
    """One Anthropic message as native messages: tool results become `tool` messages (before the
    user's own text), tool_use blocks become tool calls, a thinking block the message's thinking."""
    role = (message.role or "").lower()
    text: list[str] = []
    images: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking = ""
    results: list[dict[str, Any]] = []
    for block in message.blocks:
        if block.type == "text":
            text.append(block.text or "")
        elif block.type == "image":
            if block.source is None:
                raise RequestError("invalid image source")
            images.append(_image(block.source))
        elif block.type == "tool_use":
            if not block.id:
                raise RequestError("tool_use block missing required 'id' field")
            if not block.name:
                raise RequestError("tool_use block missing required 'name' field")
            calls.append({"id": block.id, "function": {"index": len(calls), "name": block.name,
                                                       "arguments": block.input or {}}})
        elif block.type == "tool_result":
            content, result_images = _tool_result_content(block.content)
            result: dict[str, Any] = {"role": "tool", "content": content}
            if result_images:
                result["images"] = result_images
            if block.tool_use_id:
                result["tool_call_id"] = block.tool_use_id
                if block.tool_use_id in tool_names:
                    result["tool_name"] = tool_names[block.tool_use_id]
            results.append(result)
        elif block.type == "thinking":
            thinking = block.thinking or ""
    native: list[dict[str, Any]] = []
    if role == "user":
        native += results
    joined = "".join(text)
    if joined or images or calls or thinking:
        entry: dict[str, Any] = {"role": role, "content": joined}
        if images:
            entry["images"] = images
        if calls:
            entry["tool_calls"] = calls
        if thinking:
            entry["thinking"] = thinking
        native.append(entry)
    if role != "user":
        native += results
    return native


def _system(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "".join(b["text"] for b in system
                       if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str))
    return ""


def _tool(tool: Any) -> dict[str, Any] | None:
    if (tool.type or "").startswith("web_search"):
        return None  # a server-side tool run by ollama.com; there is no cloud here
    name = tool.name or ""
    schema = tool.input_schema
    if schema is None:
        schema = {"type": "object", "properties": {}}
    if not isinstance(schema, dict):
        kind = "array" if isinstance(schema, list) else "string" if isinstance(schema, str) else "number"
        raise RequestError(f"invalid input_schema for tool {gojson.go_quote(name)}: json: cannot unmarshal {kind} "
                           "into Go value of type api.ToolFunctionParameters")
    return {"type": "function", "function": {"name": name, "description": tool.description or "",
                                             "parameters": schema}}


def think_value(req: MessagesRequest) -> bool | str | None:
    effort = (req.output_config.effort or "").strip().lower() if req.output_config else ""
    if effort == "xhigh":
        effort = "high"
    if req.thinking is not None and req.thinking.type == "enabled":
        return True
    if req.thinking is not None and req.thinking.type == "disabled":
        return False
    if effort in ("high", "medium", "low", "max"):
        return effort
    return None


def chat_request(req: MessagesRequest) -> ChatRequest:
    """AnthropicMessagesMiddleware's checks, then FromMessagesRequest."""
    if not req.model:
        raise RequestError("model is required")
    if req.max_tokens is None or req.max_tokens <= 0:
        raise RequestError("max_tokens is required and must be positive")
    if not req.messages:
        raise RequestError("messages is required")
    messages: list[dict[str, Any]] = []
    system = _system(req.system)
    if system:
        messages.append({"role": "system", "content": system})
    tool_names = {b.id: b.name for m in req.messages for b in m.blocks if b.type == "tool_use" and b.id and b.name}
    for message in req.messages:
        messages += _convert_message(message, tool_names)
    options: dict[str, Any] = {"num_predict": req.max_tokens}
    if req.temperature is not None:
        options["temperature"] = req.temperature
    if req.top_p is not None:
        options["top_p"] = req.top_p
    if req.top_k is not None:
        options["top_k"] = req.top_k
    if req.stop_sequences:
        options["stop"] = req.stop_sequences
    tools = [t for t in (_tool(tool) for tool in req.tools or []) if t is not None]
    body: dict[str, Any] = {"model": req.model, "messages": messages, "options": options,
                            "stream": bool(req.stream), "think": think_value(req)}
    if tools:
        body["tools"] = tools
    return parse_request(ChatRequest, body)


def estimate_tokens(req: MessagesRequest) -> int:
    """A rough input token count (characters / 4) for message_start, before the real count is known."""
    total = len(_system(req.system))
    for message in req.messages or []:
        total += len(message.role or "")
        for block in message.blocks:
            total += len(block.text or "") + len(block.thinking or "")
            if block.type in ("tool_use", "tool_result"):
                total += len(json.dumps(block.model_dump(exclude_none=True)))
    for tool in req.tools or []:
        total += len(tool.name or "") + len(tool.description or "") + len(json.dumps(tool.input_schema or {}))
    tokens = total // 4
    return max(tokens, 1) if (req.messages or req.system is not None) else tokens


# ---------------------------------------------------------------------------------------------------
# Responses


def stop_reason(done_reason: str | None, tool_calls: bool) -> str:
    if tool_calls:
        return "tool_use"
    if done_reason == "stop":
        return "end_turn"
    if done_reason == "length":
        return "max_tokens"
    return "stop_sequence" if done_reason else ""


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {"type": "tool_use", "id": call.get("id") or tool_call_id(), "name": function.get("name", ""),
            "input": function.get("arguments") or {}}


def _usage(final: dict[str, Any]) -> dict[str, int]:
    return {"input_tokens": final.get("prompt_eval_count") or 0, "output_tokens": final.get("eval_count") or 0}


def messages_response(msg_id: str, final: dict[str, Any]) -> dict[str, Any]:
    """ToMessagesResponse: thinking, then text, then one tool_use block per call."""
    message = final.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("thinking"):
        content.append({"type": "thinking", "thinking": message["thinking"]})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    calls = message.get("tool_calls") or []
    content += [_tool_use(call) for call in calls]
    body: dict[str, Any] = {"id": msg_id, "type": "message", "role": "assistant", "model": final.get("model", ""),
                            "content": content}
    reason = stop_reason(final.get("done_reason"), bool(calls))
    if reason:
        body["stop_reason"] = reason
    body["usage"] = _usage(final)
    return body


def sse_event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + gojson.dumps(data).encode("utf-8", "surrogateescape") + b"\n\n"


class StreamConverter:
    """Native chat chunks to the Messages event stream: message_start, then content blocks (thinking,
    text, tool_use) each opened, filled and closed, then message_delta and message_stop."""

    def __init__(self, msg_id: str, model: str, estimated_input_tokens: int) -> None:
        self.id = msg_id
        self.model = model
        self.estimated = estimated_input_tokens
        self.started = False
        self.index = 0
        self.thinking_started = False
        self.thinking_done = False
        self.text_started = False
        self.tool_ids: set[str] = set()
        self.tool_used = False

    def _stop(self) -> tuple[str, dict[str, Any]]:
        return "content_block_stop", {"type": "content_block_stop", "index": self.index}

    def _start(self, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "content_block_start", {"type": "content_block_start", "index": self.index, "content_block": block}

    def _delta(self, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta}

    def _close_thinking(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        if self.thinking_started and not self.thinking_done:
            self.thinking_done = True
            events.append(self._stop())
            self.index += 1

    def process(self, chunk: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events: list[tuple[str, dict[str, Any]]] = []
        if not self.started:
            self.started = True
            tokens = chunk.get("prompt_eval_count") or self.estimated
            events.append(("message_start", {"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                "usage": {"input_tokens": tokens, "output_tokens": 0}}}))
        message = chunk.get("message") or {}
        thinking = message.get("thinking", "")
        content = message.get("content", "")
        if thinking and not self.thinking_done:
            if not self.thinking_started:
                self.thinking_started = True
                events.append(self._start({"type": "thinking", "thinking": ""}))
            events.append(self._delta({"type": "thinking_delta", "thinking": thinking}))
        if content:
            self._close_thinking(events)
            if not self.text_started:
                self.text_started = True
                events.append(self._start({"type": "text", "text": ""}))
            events.append(self._delta({"type": "text_delta", "text": content}))
        for call in message.get("tool_calls") or []:
            native_id = call.get("id")
            if native_id and native_id in self.tool_ids:
                continue
            self._close_thinking(events)
            if self.text_started:
                events.append(self._stop())
                self.index += 1
                self.text_started = False
            block = _tool_use(call)
            events.append(self._start({**block, "input": {}}))
            events.append(self._delta({"type": "input_json_delta", "partial_json": gojson.dumps(block["input"])}))
            events.append(self._stop())
            self.index += 1
            if native_id:
                self.tool_ids.add(native_id)
            self.tool_used = True
        if chunk.get("done"):
            if self.text_started:
                events.append(self._stop())
            elif self.thinking_started and not self.thinking_done:
                events.append(self._stop())
            delta: dict[str, Any] = {}
            reason = stop_reason(chunk.get("done_reason"), self.tool_used)
            if reason:
                delta["stop_reason"] = reason
            events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": _usage(chunk)}))
            events.append(("message_stop", {"type": "message_stop"}))
        return events

