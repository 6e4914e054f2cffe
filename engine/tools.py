"""Ollama's generic tool-call parser (runtime.md §5.1): the tag a model opens its calls with is read
from the Go template, then the model's output is scanned as it streams for tool names and argument
objects. Used when a request has tools and the model has no built-in parser."""

from __future__ import annotations

import json
import secrets
from typing import Any

from engine.template.nodes import (
    ActionNode,
    FieldNode,
    IfNode,
    ListNode,
    Node,
    RangeNode,
    TextNode,
    WithNode,
)

_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_GO_SPACE = " \t\n\v\f\r\x85\xa0"


def tool_call_id() -> str:
    """`call_` and 8 characters from [a-z0-9], as Ollama's toolCallId."""
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


# --- the tag --------------------------------------------------------------------------------------


def _is_tool_calls_if(node: IfNode) -> bool:
    return any(isinstance(arg, FieldNode) and "ToolCalls" in arg.ident for cmd in node.pipe.cmds for arg in cmd.args)


def _find_tool_calls_if(nodes: list[Node]) -> IfNode | None:
    """The first `{{ if … }}` whose condition names a ToolCalls field, searching nested bodies."""
    for node in nodes:
        if isinstance(node, IfNode) and _is_tool_calls_if(node):
            return node
        if isinstance(node, ListNode):
            found = _find_tool_calls_if(node.nodes)
        elif isinstance(node, (IfNode, RangeNode, WithNode)):
            found = _find_tool_calls_if(node.list.nodes)
            if found is None and node.else_list is not None:
                found = _find_tool_calls_if(node.else_list.nodes)
        else:
            continue
        if found is not None:
            return found
    return None


def _find_text(nodes: list[Node]) -> TextNode | None:
    """Depth-first, the first text that is not only whitespace; an action (or a branch without such
    text) ends the search so that text after the calls is never taken."""
    for node in nodes:
        if isinstance(node, TextNode):
            if node.text.strip(_GO_SPACE):
                return node
        elif isinstance(node, ListNode):
            found = _find_text(node.nodes)
            if found is not None:
                return found
        elif isinstance(node, (IfNode, RangeNode, WithNode)):
            found = _find_text(node.list.nodes)
            if found is None and node.else_list is not None:
                found = _find_text(node.else_list.nodes)
            return found
        elif isinstance(node, ActionNode):
            return None
    return None


def parse_tag(root: ListNode | None) -> str:
    """The text a model starts its tool calls with, e.g. `<tool_call>` or `[TOOL_CALLS] [`; `{` when the
    template has none (every JSON object is then tried as a call)."""
    if root is None:
        return "{"
    branch = _find_tool_calls_if(root.nodes)
    if branch is None:
        return "{"
    text = _find_text(branch.list.nodes)
    if text is None:
        return "{"
    tag = text.text.replace("\r\n", "\n").split("{", 1)[0].strip(_GO_SPACE)
    return tag or "{"


# --- JSON helpers ---------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def _json_object(text: str) -> dict[str, Any] | None:
    """A JSON object as Go's json.Unmarshal into map[string]any accepts it, else None."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


_MISSING = object()


def _map_value(obj: dict[str, Any], key: str) -> Any:
    """obj[key] as an arguments object: an object, or a string holding one. _MISSING if neither; None
    for a string holding JSON null (Go decodes it into a nil map)."""
    value = obj.get(key)
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            decoded = json.loads(value, parse_constant=_reject_constant)
        except ValueError:
            return _MISSING
        if decoded is None or isinstance(decoded, dict):
            return decoded
    return _MISSING


def _arguments_in(obj: dict[str, Any], tool_name: str) -> tuple[dict[str, Any] | None, bool]:
    """(arguments, found) inside a decoded object: `arguments`/`parameters` beside a `name`, a key equal
    to the tool's name, or the same search in nested objects. A `name` without either means "no
    arguments object here" (found, but None): Ollama does not turn `{"name": "f"}` into a call."""
    if "name" in obj:
        for key in ("arguments", "parameters"):
            args = _map_value(obj, key)
            if args is not _MISSING:
                return args, True
        return None, True
    args = _map_value(obj, tool_name)
    if args is not _MISSING:
        return args, True
    for value in obj.values():
        if isinstance(value, dict):
            children = [value]
        elif isinstance(value, list):
            children = [item for item in value if isinstance(item, dict)]
        else:
            continue
        for child in children:
            result, found = _arguments_in(child, tool_name)
            if found:
                return result, True
    return None, False


def find_arguments(tool_name: str, buffer: str) -> tuple[dict[str, Any] | None, int]:
    """The first balanced, valid JSON object in `buffer` (quote and escape aware) read as the arguments of
    `tool_name`; with the index of its closing brace. (None, 0) if there is none yet."""
    start = -1
    braces = 0
    in_string = escaped = False
    for i, c in enumerate(buffer):
        if escaped:
            escaped = False
            continue
        if c == "\\":
            escaped = True
            continue
        if c == '"':
            in_string = not in_string
            continue
        if in_string:
            continue
        if c == "{":
            if braces == 0:
                start = i
            braces += 1
        elif c == "}":
            braces -= 1
            if braces == 0 and start != -1:
                data = _json_object(buffer[start:i + 1])
                if data is None:
                    start = -1
                    continue
                args, found = _arguments_in(data, tool_name)
                return (args, i) if found else (data, i)
            braces = max(braces, 0)
    return None, 0


def find_tool(names: list[str], buffer: str) -> tuple[str | None, int]:
    """The tool whose name occurs first in the buffer (the longer name at the same place) and where the
    name ends; nothing while the buffer ends with a proper prefix of some name (`get` of `get_weather`)."""
    if not buffer or not names:
        return None, 0
    longest = max(len(n) for n in names)
    for i in range(1, min(len(buffer), longest) + 1):
        tail = buffer[-i:]
        if any(len(tail) < len(n) and n.startswith(tail) for n in names):
            return None, 0
    found: str | None = None
    start = -1
    for name in names:
        pos = buffer.find(name)
        if pos == -1:
            continue
        if start != -1 and (pos > start or (pos == start and len(name) <= len(found or ""))):
            continue
        found, start = name, pos
    if found is None:
        return None, 0
    return found, start + len(found)


# --- the parser -----------------------------------------------------------------------------------


LOOKING_FOR_TAG, TOOL_CALLING, DONE = range(3)


class ToolParser:
    """Feed it the model's text as it streams; it returns (calls, content) for each piece. Calls are
    `{"function": {"index", "name", "arguments"}}` dicts (no id: the caller assigns ids)."""

    def __init__(self, tools: list[dict[str, Any]], tag: str = "{") -> None:
        self.tag = tag
        self.names: list[str] = []
        for tool in tools:
            function = tool.get("function") if isinstance(tool, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            self.names.append(name if isinstance(name, str) else "")
        self.state = LOOKING_FOR_TAG
        self.buffer = ""
        self.n = 0

    @classmethod
    def for_template(cls, tools: list[dict[str, Any]], root: ListNode | None) -> ToolParser:
        return cls(tools, parse_tag(root))

    @property
    def _bracket_tag(self) -> bool:
        return self.tag in ("{", "[")

    def add(self, text: str) -> tuple[list[dict[str, Any]], str]:
        if self.state == DONE:
            return [], text
        self.buffer += text
        content = ""
        if self.state == LOOKING_FOR_TAG:
            i, found = self._find_tag()
            if i == -1:
                content, self.buffer = self.buffer, ""
            else:
                content, self.buffer = self.buffer[:i], self.buffer[i:]
            # with `{` or `[` as the tag, only output that starts with one (after whitespace) is parsed
            if self._bracket_tag and content.strip(_GO_SPACE):
                self.state = DONE
                rest, self.buffer = self.buffer, ""
                return [], content + rest
            if not found:
                return [], content
            self.state = TOOL_CALLING
        calls = []
        while (call := self._parse_call()) is not None:
            calls.append(call)
        if self._done():
            self.state = DONE
            content, self.buffer = self.buffer, ""
        return calls, content

    def content(self) -> str:
        """What is left for the user at the end of the stream: the unparsed buffer, only if no call was
        found and the tag is `{` or `[` (it may have been plain JSON or text)."""
        if self.n > 0 or not self._bracket_tag:
            return ""
        return self.buffer

    def _find_tag(self) -> tuple[int, bool]:
        i = self.buffer.find(self.tag)
        if i >= 0:
            return i, True
        for k in range(min(len(self.buffer), len(self.tag)), 0, -1):
            if self.buffer.endswith(self.tag[:k]):
                return len(self.buffer) - k, False
        return -1, False

    def _parse_call(self) -> dict[str, Any] | None:
        name, end = find_tool(self.names, self.buffer)
        if name is None:
            return None
        args, args_end = find_arguments(name, self.buffer)
        if args is None:
            return None
        end = max(end, args_end)
        call = {"function": {"index": self.n, "name": name, "arguments": args}}
        self.n += 1
        self.buffer = self.buffer[end:]
        return call

    def _done(self) -> bool:
        """For `{`/`[` tags: the buffer's braces (or brackets) balance, so it was not, or no longer is,
        a call; other tags never finish."""
        if not self._bracket_tag:
            return False
        opening, closing = ("{", "}") if self.tag == "{" else ("[", "]")
        count = 0
        in_string = escaped = False
        for c in self.buffer:
            if escaped:
                escaped = False
                continue
            if c == "\\":
                escaped = True
                continue
            if c == '"':
                in_string = not in_string
                continue
            if in_string:
                continue
            if c == opening:
                count += 1
            elif c == closing:
                count -= 1
                if count == 0:
                    return True
        return False
