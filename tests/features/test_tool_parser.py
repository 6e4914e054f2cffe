"""The generic tool-call parser (engine/tools.py) over every tag shape of runtime.md §5.1, with the cases
of Ollama's tools/tools_test.go and tools/template_test.go."""

from __future__ import annotations

import re

import pytest

from engine.template import Template
from engine.tools import ToolParser, find_arguments, parse_tag, tool_call_id


def _tool(name: str, *props: str) -> dict:
    return {"type": "function", "function": {"name": name, "description": name, "parameters": {
        "type": "object", "properties": {p: {"type": "string"} for p in props}}}}


TOOLS = [_tool("get_temperature", "format", "city"), _tool("get_conditions", "location"), _tool("say_hello"),
         _tool("say_hello_world"), _tool("get_address", "location"), _tool("add", "a", "b")]

QWEN = ('{{if .ToolCalls}}<tool_call>{{range .ToolCalls}}{"name": "{{.Function.Name}}", '
        '"arguments": {{.Function.Arguments}}}{{end}}</tool_call>{{end}}')
DEEPSEEK = ("{{if .ToolCalls}}<|tool▁calls▁begin|>{{range .ToolCalls}}<|tool▁call▁begin|>function<|tool▁sep|>"
            "get_current_weather\n```json\n{\"location\": \"Tokyo\"}\n```<|tool▁call▁end|>{{end}}"
            "<|tool▁calls▁end|><|end▁of▁sentence|>{{end}}")
CALL = '{"name": "{{.Function.Name}}", "arguments": {{.Function.Arguments}}}'
JSON = "{{if .ToolCalls}}{{range .ToolCalls}}" + CALL + "{{end}}{{end}}"
MISTRAL = ('{{if .ToolCalls}}[TOOL_CALLS] [{{range .ToolCalls}}{"name": "{{.Function.Name}}", '
           '"arguments": {{.Function.Arguments}}}{{end}}][/TOOL_CALLS]{{end}}')
LIST = "{{if .ToolCalls}}[{{range .ToolCalls}}" + CALL + "{{end}}]{{end}}"


@pytest.mark.parametrize(("template", "tag"), [
    ("", "{"),
    ("{{if .ToolCalls}}{{end}}", "{"),
    ("{{if .ToolCalls}}{{range .ToolCalls}}{{ . }}{{end}}{{end}}", "{"),
    ("{{if .ToolCalls}}```json\n{{end}}", "```json"),
    ("{{if .ToolCalls}}[{{range .ToolCalls}}{{ . }}{{end}}]{{end}}", "["),
    ("{{if .ToolCalls}}\n [ {{range .ToolCalls}}{{ . }}{{end}}]{{end}}", "["),
    ("{{if .ToolCalls}}{{range .ToolCalls}}{{ . }}{{end}}]{{end}}", "{"),
    ("{{if .ToolCalls}} {{range .ToolCalls}}{{ . }}{{end}}{{end}}", "{"),
    ("{{if .ToolCalls}}{{range .ToolCalls}}\n{{ . }}\n{{end}}{{end}}", "{"),
    (JSON, "{"),
    ("{{if .ToolCalls}}{{range .ToolCalls}}\r\n{\"name\": \"{{ .Function.Name }}\"}{{end}}{{end}}", "{"),
    ("{{if .ToolCalls}}\n{{range .ToolCalls}}\n{\"name\": \"{{ .Function.Name }}\"}\r\n{{end}}\r\n{{end}}", "{"),
    ("{{if .ToolCalls}}<|tool▁calls▁begin|>{{range .ToolCalls}}<|tool▁call▁begin|>x{{end}}{{end}}",
     "<|tool▁calls▁begin|>"),
    ("{{if .ToolCalls}}{{range .ToolCalls}}<tool_call>{\"name\": \"{{ .Function.Name }}\"}</tool_call>{{end}}{{end}}",
     "<tool_call>"),
    ("{{if .ToolCalls}}\n{{range .ToolCalls}}<tool_call>{\"a\": 1}</tool_call>{{end}}{{end}}", "<tool_call>"),
    ("{{if .ToolCalls}}First text{{if .Something}}inner{{end}}Second text{{end}}", "First text"),
    ("{{if .ToolCalls}}Action: ```json{{end}}", "Action: ```json"),
    ("{{if .ToolCalls}}functools[{{end}}", "functools["),
    ("{{if .ToolCalls}}[TOOL_CALL] [{{end}}", "[TOOL_CALL] ["),
    ("{{if .ToolCalls}}[TOOL_CALL][{{end}}", "[TOOL_CALL]["),
    # nested in a range over messages, and in an else branch
    ("{{range .Messages}}{{if eq .Role \"x\"}}{{else if .ToolCalls}}<calls>{{end}}{{end}}", "<calls>"),
    ("{{with .Tools}}{{end}}{{range .Messages}}{{if .ToolCalls}}[TOOL_CALLS]{{end}}{{end}}", "[TOOL_CALLS]"),
    (QWEN, "<tool_call>"), (MISTRAL, "[TOOL_CALLS] ["), (LIST, "["),
])
def test_parse_tag(template: str, tag: str) -> None:
    assert parse_tag(Template.parse(template).root) == tag


def _call(index: int, name: str, **arguments: str) -> dict:
    return {"function": {"index": index, "name": name, "arguments": arguments}}


CASES = [
    ("just text", QWEN, ["Hello, how can I help you today?"], "Hello, how can I help you today?", []),
    ("empty input", QWEN, [""], "", []),
    ("tool call", QWEN, ['<tool_call>{"name": "get_conditions", "arguments": {"location": "San Francisco"}}'
                         '</tool_call>'], "", [_call(0, "get_conditions", location="San Francisco")]),
    ("empty args", QWEN, ['<tool_call>{"name": "get_conditions", "arguments": {}}</tool_call>'], "",
     [_call(0, "get_conditions")]),
    ("text before", QWEN, ['Let me check. <tool_call>{"name": "get_temperature", "arguments": {"city": "New York"}}'
                           '</tool_call>'], "Let me check. ", [_call(0, "get_temperature", city="New York")]),
    ("name in prose", QWEN, ["I'll use the say_hello tool. "], "I'll use the say_hello tool. ", []),
    ("two in a list", MISTRAL, ['[TOOL_CALLS] [{"name": "get_temperature", "arguments": {"city": "London", '
                                '"format": "fahrenheit"}}, {"name": "get_conditions", "arguments": {"location": '
                                '"Tokyo"}}][/TOOL_CALLS]'], "",
     [_call(0, "get_temperature", city="London", format="fahrenheit"), _call(1, "get_conditions", location="Tokyo")]),
    ("qwen two", QWEN, ['Both! <tool_call>{"name": "get_temperature", "arguments": {"city": "London"}}</tool_call>'
                        '<tool_call>{"name": "get_conditions", "arguments": {"location": "Tokyo"}}</tool_call>'],
     "Both! ", [_call(0, "get_temperature", city="London"), _call(1, "get_conditions", location="Tokyo")]),
    ("empty then args", QWEN, ['Hi. <tool_call>{"name": "say_hello", "arguments": {}}</tool_call><tool_call>'
                               '{"name": "get_temperature", "arguments": {"city": "London"}}</tool_call>'],
     "Hi. ", [_call(0, "say_hello"), _call(1, "get_temperature", city="London")]),
    ("deepseek", DEEPSEEK, ["<think>Wait</think><|tool▁calls▁begin|><|tool▁call▁begin|>function<|tool▁sep|>"
                            "get_temperature\n```json\n{\"city\": \"Tokyo\"}\n```<|tool▁call▁end|><|tool▁calls▁end|>"],
     "<think>Wait</think>", [_call(0, "get_temperature", city="Tokyo")]),
    ("deepseek incremental", DEEPSEEK, ["<think>Wait", ", I need", " a tool</think><|too", "l▁calls▁begin", "|>",
                                        "<|tool▁call▁begin|>function<|tool▁sep|>get_temperature\n", "```json\n",
                                        "{\"city\": \"Tokyo\"}\n", "```", "<|tool▁c", "all▁end|>",
                                        "<|tool▁calls▁end|>"],
     "<think>Wait, I need a tool</think>", [_call(0, "get_temperature", city="Tokyo")]),
    ("json", JSON, ["{", '"name": "get_temperature",', '"arguments": {', '"city": "Tokyo"', "}", "}"], "",
     [_call(0, "get_temperature", city="Tokyo")]),
    ("json maybe a call", JSON, ["{", '"name": "get_temperature",', '"arguments": {'], "", []),
    ("json not a call", JSON, ["{", '"name": "search", ', '"arguments": {', '"query": "What?"', "}", "}"],
     '{"name": "search", "arguments": {"query": "What?"}}', []),
    ("json object then call", JSON, ['{"name": "jeff"}', '{"name": "get_conditions", "arguments": {"location": "SF"}}'],
     '{"name": "jeff"}{"name": "get_conditions", "arguments": {"location": "SF"}}', []),
    ("json code", JSON, ['for { fmt.Println("hello") }'], 'for { fmt.Println("hello") }', []),
    ("list multiple", LIST, ["[", "{", '"name": "get_temperature", ', '"arguments": {', '"city": "London"', "}",
                             "},", "{", '"name": "get_conditions", ', '"arguments": {', '"location": "Tokyo"', "}",
                             "}]"], "",
     [_call(0, "get_temperature", city="London"), _call(1, "get_conditions", location="Tokyo")]),
    ("list invalid", LIST, ["[", "{", '"name": "search", ', '"arguments": {', '"query": "x"', "}", "}"], "", []),
    ("list trailing ]", LIST, ["[", '{"name": "get_conditions", ', '"arguments": {"location": "Tokyo"}', "}", "]", "]"],
     "", [_call(0, "get_conditions", location="Tokyo")]),
    ("list not a call", LIST, ["[special", " del", "ivery]"], "[special delivery]", []),
    ("name collision", QWEN, ["<tool_call>", "{", '"name": "say_hello', '_world",', '"arguments": {}}', "}"], "",
     [_call(0, "say_hello_world")]),
    ("name collision multiple", QWEN, ["<tool_call>", "{", '"name": "say_hello', '_world",', '"arguments": {}}',
                                       "</tool_call>", "<tool_call>", "{", '"name": "say_hello', '",',
                                       '"arguments": {}}', "</tool_call>"], "",
     [_call(0, "say_hello_world"), _call(1, "say_hello")]),
    ("name collision unfinished", QWEN, ['<tool_call>{"name": "say_hello'], "", []),
    ("substring of another", JSON, ["{", '"name": "get_address",', '"arguments": {', '"location": "London"', "}", "}"],
     "", [_call(0, "get_address", location="London")]),
    ("args before name", QWEN, ['<tool_call>{"arguments": {"a": "5", "b": "10"}, "name": "add"}</tool_call>'], "",
     [_call(0, "add", a="5", b="10")]),
    ("parameters key", QWEN, ['<tool_call>{"name": "add", "parameters": {"a": "1"}}</tool_call>'], "",
     [_call(0, "add", a="1")]),
    ("arguments as a JSON string", QWEN, ['<tool_call>{"name": "add", "arguments": "{\\"a\\": \\"2\\"}"}</tool_call>'],
     "", [_call(0, "add", a="2")]),
    ("name as key", QWEN, ['<tool_call>{"add": {"a": "3"}}</tool_call>'], "", [_call(0, "add", a="3")]),
    ("nested object", QWEN, ['<tool_call>{"call": {"name": "add", "arguments": {"a": "4"}}}</tool_call>'], "",
     [_call(0, "add", a="4")]),
    ("bare object is the arguments", QWEN, ['<tool_call>add {"a": "5"}</tool_call>'], "", [_call(0, "add", a="5")]),
    ("name without arguments is no call", JSON, ['{"name": "say_hello"}'], '{"name": "say_hello"}', []),
    ("brace in a string", QWEN, ['<tool_call>{"name": "add", "arguments": {"a": "}{"}}</tool_call>'], "",
     [_call(0, "add", a="}{")]),
    ("whitespace before a bracket tag", JSON, ["  \n", '{"name": "add", "arguments": {"a": "6"}}'], "  \n",
     [_call(0, "add", a="6")]),
    ("text before a bracket tag", JSON, ['Sure: {"name": "add", "arguments": {"a": "7"}}'],
     'Sure: {"name": "add", "arguments": {"a": "7"}}', []),
    ("text after a call is swallowed", QWEN, ['<tool_call>{"name": "add", "arguments": {}}</tool_call> done'], "",
     [_call(0, "add")]),
    ("one character at a time", QWEN, list('<tool_call>{"name": "get_conditions", "arguments": {"location": "Oslo"}}'
                                           '</tool_call>'), "", [_call(0, "get_conditions", location="Oslo")]),
]


@pytest.mark.parametrize(("template", "inputs", "content", "calls"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parser(template: str, inputs: list[str], content: str, calls: list[dict]) -> None:
    parser = ToolParser.for_template(TOOLS, Template.parse(template).root)
    got_calls: list[dict] = []
    got_content = ""
    for text in inputs:
        new_calls, new_content = parser.add(text)
        got_calls += new_calls
        got_content += new_content
    assert got_content == content
    assert got_calls == calls
    # argument order is the model's
    for got, want in zip(got_calls, calls, strict=True):
        assert list(got["function"]["arguments"]) == list(want["function"]["arguments"])


@pytest.mark.parametrize(("tag", "buffer", "n", "left"), [
    ("{", "", 0, ""),
    ("<tool_call>", '<tool_call>{"name": "get_temperature"', 0, ""),
    ("{", '{"name": "get_temperature"}', 0, '{"name": "get_temperature"}'),
    ("{", '{"hello": "world"}', 1, ""),
    ("[", '[{"name": "get_temperature"}]', 0, '[{"name": "get_temperature"}]'),
    ("{", '{ fmt.Println("hello")', 0, '{ fmt.Println("hello")'),
])
def test_content_left_at_the_end(tag: str, buffer: str, n: int, left: str) -> None:
    parser = ToolParser(TOOLS, tag)
    parser.buffer, parser.n = buffer, n
    assert parser.content() == left


@pytest.mark.parametrize(("tag", "buffer", "done"), [
    ("<tool_call>", "", False), ("{", '{"name": "get_weather"', False), ("{", '{"name": "get_weather"}', True),
    ("{", "{}", True), ("[", '[{"name": "get_weather"', False), ("[", '[{"name": "get_weather"}]', True),
    ("[", "[]", True), ("{", '{"note": "a}b"', False), ("{", '{"note": "a}b"}', True), ("[", '[{"note": "x]y"}', False),
])
def test_done(tag: str, buffer: str, done: bool) -> None:
    parser = ToolParser(TOOLS, tag)
    parser.buffer = buffer
    assert parser._done() is done


def test_partial_tag_is_held_back() -> None:
    parser = ToolParser(TOOLS, "<tool_call>")
    assert parser.add("Hi <tool") == ([], "Hi ")
    assert parser.add("ing>") == ([], "<tooling>")


def test_find_arguments_skips_invalid_objects() -> None:
    args, end = find_arguments("add", '{not json} {"a": "1"}')
    assert args == {"a": "1"} and end == len('{not json} {"a": "1"}') - 1


def test_tool_call_id() -> None:
    ids = {tool_call_id() for _ in range(50)}
    assert len(ids) == 50 and all(re.fullmatch(r"call_[a-z0-9]{8}", i) for i in ids)
