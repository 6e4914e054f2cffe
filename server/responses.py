"""The OpenAI Responses API (/v1/responses) on the native chat pipeline, as Ollama maps it (openai/responses.go,
middleware/openai.go): input items become chat messages, the joined chat answer becomes a response object,
and streamed chat chunks become the Responses event sequence (response.created, response.in_progress,
output items opened, filled and closed, response.completed).

Differences from Ollama: the `developer` role is read as `system` (as on /v1/chat/completions); a
`web_search` tool is left out (there is no cloud search to run it).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from modelstore import gojson
from server.api import ChatRequest, RequestError, parse_request
from server.api_openai import (
    ResponsesFileContent,
    ResponsesFunctionCall,
    ResponsesImageContent,
    ResponsesReasoningInput,
    ResponsesRequest,
    ResponsesTextContent,
    ResponsesTool,
)
from server.openai import decode_image_url, go_type, openai_tool_calls, think_from_effort, unix_seconds

# ---------------------------------------------------------------------------------------------------
# Request: input items


def response_id() -> str:
    return f"resp_{random.randrange(999999)}"


def message_item_id() -> str:
    return f"msg_{random.randrange(999999)}"


def _json_kind(value: Any) -> str:
    kind = go_type(value)
    return {"float64": "number", "bool": "bool", "string": "string", "map[string]interface {}": "object",
            "[]interface {}": "array"}.get(kind, kind)


def _decode(model: type, raw: Any) -> Any:
    """An item into its model, with Go's `openai.` type names in a decoding error."""
    if not isinstance(raw, dict):
        raise RequestError(f"json: cannot unmarshal {_json_kind(raw)} into Go value of type openai.{model.__name__}")
    try:
        return parse_request(model, raw)
    except RequestError as e:
        raise RequestError(str(e).replace("Go value of type api.", "Go value of type openai.")) from None


def _content_part(raw: Any) -> Any:
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in ("input_text", "output_text"):
        return _decode(ResponsesTextContent, raw)
    if kind == "input_image":
        return _decode(ResponsesImageContent, raw)
    if kind == "input_file":
        return _decode(ResponsesFileContent, raw)
    if not isinstance(raw, dict):
        raise RequestError(f"json: cannot unmarshal {_json_kind(raw)} into Go value of type struct")
    raise RequestError(f"unknown content type: {kind or ''}")


def _content_parts(raw: Any, what: str) -> list[Any]:
    """A message's content or a function output: a string (one text part) or a list of parts."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [ResponsesTextContent(type="input_text", text=raw)]
    if not isinstance(raw, list):
        raise RequestError(f"{what} must be a string or array: json: cannot unmarshal {_json_kind(raw)} into Go "
                           "value of type []json.RawMessage")
    parts = []
    for index, part in enumerate(raw):
        try:
            parts.append(_content_part(part))
        except RequestError as e:
            raise RequestError(f"{what}[{index}]: {e}") from None
    return parts


def _text_and_images(parts: list[Any]) -> tuple[str, list[str]]:
    text, images = "", []
    for part in parts:
        if isinstance(part, ResponsesTextContent):
            text += part.text or ""
        elif isinstance(part, ResponsesImageContent):
            if part.image_url:  # a file_id alone cannot be resolved
                images.append(decode_image_url(part.image_url))
        elif isinstance(part, ResponsesFileContent):
            raise RequestError("file inputs are not currently supported")
    return text, images


def _item(raw: Any) -> tuple[str, Any]:
    """(kind, decoded item) of one input item; a bare {role, content} is a message."""
    if not isinstance(raw, dict):
        raise RequestError(f"json: cannot unmarshal {_json_kind(raw)} into Go value of type openai.ResponsesInputItem")
    kind = raw.get("type") or ""
    if not isinstance(kind, str):
        raise RequestError("json: cannot unmarshal non-string into Go struct field .type of type string")
    if not kind and raw.get("role"):
        kind = "message"
    if kind == "message":
        role = raw.get("role") or ""
        if not isinstance(role, str):
            raise RequestError("json: cannot unmarshal non-string into Go struct field .role of type string")
        return kind, (role, _content_parts(raw.get("content"), "content"))
    if kind == "function_call":
        return kind, _decode(ResponsesFunctionCall, raw)
    if kind == "function_call_output":
        output = raw.get("output")
        parts = None if output is None or isinstance(output, str) else _content_parts(output, "output")
        return kind, (raw.get("call_id") or "", output if isinstance(output, str) else None, parts)
    if kind == "reasoning":
        return kind, _decode(ResponsesReasoningInput, raw)
    if kind == "web_search_call":
        return kind, None
    if not kind:
        raise RequestError("input item missing required 'type' field")
    raise RequestError(f'unknown input item type: "{kind}"')


def _items(raw: Any) -> list[tuple[str, Any]]:
    if not isinstance(raw, list):
        raise RequestError(f"input must be a string or array: json: cannot unmarshal {_json_kind(raw)} into Go "
                           "value of type []json.RawMessage")
    items = []
    for index, entry in enumerate(raw):
        try:
            items.append(_item(entry))
        except RequestError as e:
            raise RequestError(f"input[{index}]: {e}") from None
    return items


def _tool_call(call: ResponsesFunctionCall) -> dict[str, Any]:
    try:
        arguments = json.loads(call.arguments) if call.arguments else {}
    except json.JSONDecodeError as e:
        raise RequestError(f"failed to parse function call arguments: {e.msg}") from None
    if not isinstance(arguments, dict):
        raise RequestError("failed to parse function call arguments: json: cannot unmarshal "
                           f"{_json_kind(arguments)} into Go value of type api.ToolCallFunctionArguments")
    entry: dict[str, Any] = {"function": {"name": call.name or "", "arguments": arguments}}
    if call.call_id:
        entry["id"] = call.call_id
    return entry


def _messages(items: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """FromResponsesRequest's walk: a reasoning item's text goes to the next assistant message; function calls
    join the assistant message before them; an assistant message replayed between a call and its output is
    folded into the message holding the call, so the output follows its call."""
    messages: list[dict[str, Any]] = []
    pending_thinking = ""
    for index, (kind, item) in enumerate(items):
        if kind == "reasoning":
            pending_thinking = item.encrypted_content or ""
        elif kind == "message":
            role, parts = item
            content, images = _text_and_images(parts)
            role = "system" if role == "developer" else role
            message: dict[str, Any] = {"role": role, "content": content}
            if images:
                message["images"] = images
            if role == "assistant" and pending_thinking:
                message["thinking"], pending_thinking = pending_thinking, ""
            following = items[index + 1] if index + 1 < len(items) else None
            answered = following[1][0] if following and following[0] == "function_call_output" else ""
            last = messages[-1] if messages else None
            if (role == "assistant" and answered and last and last["role"] == "assistant"
                    and any(call.get("id") == answered for call in last.get("tool_calls", []))):
                if last["content"] and content:
                    last["content"] += "\n"
                last["content"] += content
                if images:
                    last.setdefault("images", []).extend(images)
                if message.get("thinking"):
                    last["thinking"] = message["thinking"]
                continue
            messages.append(message)
        elif kind == "function_call":
            call = _tool_call(item)
            if messages and messages[-1]["role"] == "assistant":
                target = messages[-1]
                target.setdefault("tool_calls", []).append(call)
            else:
                target = {"role": "assistant", "content": "", "tool_calls": [call]}
                messages.append(target)
            if pending_thinking:
                target["thinking"], pending_thinking = pending_thinking, ""
        elif kind == "function_call_output":
            call_id, text, parts = item
            content, images = _text_and_images(parts) if parts is not None else (text or "", [])
            message = {"role": "tool", "content": content, "tool_call_id": call_id}
            if images:
                message["images"] = images
            messages.append(message)
    if pending_thinking:
        messages.append({"role": "assistant", "content": "", "thinking": pending_thinking})
    return messages


def _function_tools(tool: ResponsesTool) -> list[dict[str, Any]]:
    """One declaration in the native shape; a `namespace` becomes its members, named `namespace.member`."""
    if tool.type != "namespace":
        function = {"name": tool.name or "", "description": tool.description or "",
                    "parameters": tool.parameters if tool.parameters is not None else {}}
        return [{"type": tool.type or "", "function": function}]
    prefix = f"{tool.name}." if tool.name else ""
    members = [expanded for member in tool.tools or [] for expanded in _function_tools(member)]
    for member in members:
        if prefix and not member["function"]["name"].startswith(prefix):
            member["function"]["name"] = prefix + member["function"]["name"]
    return members


def _tools(declared: list[ResponsesTool]) -> list[dict[str, Any]]:
    """The function tools; `web_search` is left out, as there is no search to run it."""
    return [native for tool in declared if tool.type != "web_search" for native in _function_tools(tool)]


def chat_request(req: ResponsesRequest) -> ChatRequest:
    """The native chat request behind a Responses request."""
    messages: list[dict[str, Any]] = []
    if req.instructions:
        messages.append({"role": "system", "content": req.instructions})
    if isinstance(req.input, str):
        if req.input:
            messages.append({"role": "user", "content": req.input})
    elif req.input is not None:
        messages += _messages(_items(req.input))
    options: dict[str, Any] = {"temperature": 1.0 if req.temperature is None else req.temperature}
    if req.top_p is not None:
        options["top_p"] = req.top_p
    if req.max_output_tokens is not None:
        options["num_predict"] = req.max_output_tokens
    body: dict[str, Any] = {
        "model": req.model or "",
        "messages": messages,
        "options": options,
        "stream": bool(req.stream),
        "think": think_from_effort(req.reasoning.effort if req.reasoning else None),
    }
    tools = _tools(req.tools or [])
    if tools:
        body["tools"] = tools
    fmt = req.text.format if req.text is not None else None
    if fmt is not None and fmt.type == "json_schema" and fmt.schema_ is not None:
        body["format"] = fmt.schema_
    return parse_request(ChatRequest, body)


# ---------------------------------------------------------------------------------------------------
# Response


def _text_format(req: ResponsesRequest) -> dict[str, Any]:
    fmt = req.text.format if req.text is not None else None
    if fmt is None:
        return {"type": "text"}
    echoed: dict[str, Any] = {"type": fmt.type or ""}
    if fmt.name:
        echoed["name"] = fmt.name
    if fmt.schema_ is not None:
        echoed["schema"] = fmt.schema_
    if fmt.strict is not None:
        echoed["strict"] = fmt.strict
    return echoed


def _tool_echo(tool: ResponsesTool) -> dict[str, Any]:
    echoed = {"type": tool.type or "", "name": tool.name or "", "description": tool.description,
              "strict": tool.strict, "parameters": tool.parameters}
    if tool.tools:
        echoed["tools"] = [_tool_echo(t) for t in tool.tools]
    return echoed


def response_object(req: ResponsesRequest, resp_id: str, status: str, output: list[dict[str, Any]],
                    usage: dict[str, Any] | None, created_at: int, completed_at: int | None) -> dict[str, Any]:
    """The response object, echoing the request's settings, in the field order of Ollama's type."""
    reasoning = None
    if req.reasoning is not None and (req.reasoning.effort or req.reasoning.summary):
        reasoning = {"effort": req.reasoning.effort or None, "summary": req.reasoning.summary or None}
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created_at,
        "completed_at": completed_at,
        "status": status,
        "incomplete_details": None,
        "model": req.model or "",
        "previous_response_id": None,
        "instructions": req.instructions or None,
        "output": output,
        "error": None,
        "tools": [_tool_echo(t) for t in req.tools or []],
        "tool_choice": "auto",
        "truncation": req.truncation if req.truncation is not None else "disabled",
        "parallel_tool_calls": True,
        "text": {"format": _text_format(req)},
        "top_p": 1.0 if req.top_p is None else req.top_p,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "top_logprobs": 0,
        "temperature": 1.0 if req.temperature is None else req.temperature,
        "reasoning": reasoning,
        "usage": usage,
        "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": None,
        "store": False,
        "background": bool(req.background),
        "service_tier": "default",
        "metadata": {},
        "safety_identifier": None,
        "prompt_cache_key": None,
    }


def usage(final: dict[str, Any]) -> dict[str, Any]:
    prompt, generated = final.get("prompt_eval_count") or 0, final.get("eval_count") or 0
    return {"input_tokens": prompt, "output_tokens": generated, "total_tokens": prompt + generated,
            "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [_text_part(text)]}


def _reasoning_item(item_id: str, thinking: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": thinking}],
            "encrypted_content": thinking}  # plain text: there is nothing to encrypt it with


def _function_call_item(item_id: str, call: dict[str, Any], status: str = "completed",
                        arguments: str | None = None) -> dict[str, Any]:
    function = call["function"]
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call["id"],
            "name": function["name"], "arguments": function["arguments"] if arguments is None else arguments}


def whole_response(req: ResponsesRequest, resp_id: str, item_id: str, final: dict[str, Any]) -> dict[str, Any]:
    """ToResponse: the joined chat answer as one response: reasoning, then the function calls or else the
    message (text beside tool calls is dropped, as in Ollama)."""
    message = final.get("message") or {}
    output: list[dict[str, Any]] = []
    if message.get("thinking"):
        output.append(_reasoning_item(f"rs_{resp_id}", message["thinking"]))
    calls = openai_tool_calls(message.get("tool_calls") or [])
    if calls:
        output += [_function_call_item(f"fc_{resp_id}_{index}", call) for index, call in enumerate(calls)]
    else:
        output.append(_message_item(item_id, message.get("content", "")))
    return response_object(req, resp_id, "completed", output, usage(final), unix_seconds(final.get("created_at")),
                           int(time.time()))


class StreamConverter:
    """ResponsesStreamConverter: native chat chunks in, (event name, data) pairs out, each with its
    sequence number. Thinking is a reasoning item (summary text deltas), closed when text or calls come;
    tool calls are function_call items, whole; text is one message item with output_text deltas, unless
    calls came first."""

    def __init__(self, req: ResponsesRequest, resp_id: str, item_id: str) -> None:
        self.req = req
        self.id = resp_id
        self.item_id = item_id
        self.sequence = 0
        self.started = False
        self.output_index = 0
        self.completed: list[dict[str, Any]] = []
        self.reasoning_id = ""
        self.thinking = ""
        self.text_started = False
        self.text = ""
        self.calls_sent = False

    def _event(self, name: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        data = {**data, "type": name, "sequence_number": self.sequence}
        self.sequence += 1
        return name, data

    def _response(self, status: str, output: list[dict[str, Any]], final_usage: dict[str, Any] | None,
                  completed: bool = False) -> dict[str, Any]:
        now = int(time.time())
        return response_object(self.req, self.id, status, output, final_usage, now, now if completed else None)

    def process(self, chunk: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events = []
        if not self.started:
            self.started = True
            events.append(self._event("response.created", {"response": self._response("in_progress", [], None)}))
            events.append(self._event("response.in_progress", {"response": self._response("in_progress", [], None)}))
        message = chunk.get("message") or {}
        if message.get("thinking"):
            events += self._thinking(message["thinking"])
        calls = message.get("tool_calls") or []
        if calls:
            events += self._finish_reasoning() + self._calls(calls)
            self.calls_sent = True
        elif not self.calls_sent and message.get("content"):
            events += self._text(message["content"])
        if chunk.get("done"):
            events += self._complete(chunk)
        return events

    def _thinking(self, thinking: str) -> list[tuple[str, dict[str, Any]]]:
        events = []
        if not self.reasoning_id:
            self.reasoning_id = f"rs_{random.randrange(999999)}"
            events.append(self._event("response.output_item.added", {
                "output_index": self.output_index,
                "item": {"id": self.reasoning_id, "type": "reasoning", "summary": []}}))
        self.thinking += thinking
        events.append(self._event("response.reasoning_summary_text.delta", {
            "item_id": self.reasoning_id, "output_index": self.output_index, "summary_index": 0, "delta": thinking}))
        return events

    def _finish_reasoning(self) -> list[tuple[str, dict[str, Any]]]:
        if not self.reasoning_id:
            return []
        item = _reasoning_item(self.reasoning_id, self.thinking)
        index = self.output_index
        events = [
            self._event("response.reasoning_summary_text.done", {
                "item_id": self.reasoning_id, "output_index": index, "summary_index": 0, "text": self.thinking}),
            self._event("response.output_item.done", {"output_index": index, "item": item}),
        ]
        self.completed.append(item)
        self.reasoning_id, self.thinking = "", ""
        self.output_index += 1
        return events

    def _calls(self, native_calls: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        events = []
        calls = openai_tool_calls(native_calls)
        for offset, call in enumerate(calls):
            index = self.output_index + offset
            item_id = f"fc_{random.randrange(999999)}_{offset}"
            arguments = call["function"]["arguments"]
            item = _function_call_item(item_id, call)
            self.completed.append(item)
            events += [
                self._event("response.output_item.added", {
                    "output_index": index, "item": _function_call_item(item_id, call, "in_progress", "")}),
                self._event("response.function_call_arguments.delta", {
                    "item_id": item_id, "output_index": index, "delta": arguments}),
                self._event("response.function_call_arguments.done", {
                    "item_id": item_id, "output_index": index, "arguments": arguments}),
                self._event("response.output_item.done", {"output_index": index, "item": item}),
            ]
        self.output_index += len(calls)
        return events

    def _text(self, content: str) -> list[tuple[str, dict[str, Any]]]:
        events = self._finish_reasoning()
        if not self.text_started:
            self.text_started = True
            events.append(self._event("response.output_item.added", {
                "output_index": self.output_index,
                "item": {"id": self.item_id, "type": "message", "status": "in_progress", "role": "assistant",
                         "content": []}}))
            events.append(self._event("response.content_part.added", {
                "item_id": self.item_id, "output_index": self.output_index, "content_index": 0,
                "part": _text_part("")}))
        self.text += content
        events.append(self._event("response.output_text.delta", {
            "item_id": self.item_id, "output_index": self.output_index, "content_index": 0, "delta": content,
            "logprobs": []}))
        return events

    def _complete(self, final: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events = self._finish_reasoning()
        output = list(self.completed)
        if self.text_started:
            item = _message_item(self.item_id, self.text)
            output.append(item)
            if not self.calls_sent:
                located = {"item_id": self.item_id, "output_index": self.output_index, "content_index": 0}
                events += [
                    self._event("response.output_text.done", {**located, "text": self.text, "logprobs": []}),
                    self._event("response.content_part.done", {**located, "part": _text_part(self.text)}),
                    self._event("response.output_item.done", {"output_index": self.output_index, "item": item}),
                ]
        events.append(self._event("response.completed", {
            "response": self._response("completed", output, usage(final), completed=True)}))
        return events

    def failed(self, message: str) -> tuple[str, dict[str, Any]]:
        """A failure after the stream began: `response.failed`, whose response carries the error."""
        response = self._response("failed", list(self.completed), None)
        response["error"] = {"code": "server_error", "message": message}
        return self._event("response.failed", {"response": response})


def sse_event(name: str, data: dict[str, Any]) -> bytes:
    # Ollama marshals these as Go maps: keys sorted.
    return f"event: {name}\ndata: ".encode() + gojson.dumps(data, sort_keys=True).encode("utf-8", "surrogateescape") \
        + b"\n\n"
