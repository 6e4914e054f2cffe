"""Ports of Ollama's template/template_test.go, plus the data shapes and printing rules Ollama's
templates see (tools, tool calls, thinking values, legacy turns)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from engine.template import DEFAULT_TEMPLATE, Template, TemplateError, Values
from engine.template.ollama import collate

# --- TestParse / TestParseError ------------------------------------------------------------------

PARSE_CASES = [
    ("{{ .Prompt }}", ["prompt", "response"]),
    ("{{ .System }} {{ .Prompt }}", ["prompt", "response", "system"]),
    ("{{ .System }} {{ .Prompt }} {{ .Response }}", ["prompt", "response", "system"]),
    ("{{ with .Tools }}{{ . }}{{ end }} {{ .System }} {{ .Prompt }}",
     ["prompt", "response", "system", "tools"]),
    ("{{ range .Messages }}{{ .Role }} {{ .Content }}{{ end }}", ["content", "messages", "role"]),
    ('{{ range .Messages }}{{ if eq .Role "tool" }}Tool Result: {{ .ToolName }} {{ .Content }}{{ end }}'
     "{{ end }}", ["content", "messages", "role", "toolname"]),
    ("""{{- range .Messages }}
{{- if eq .Role "system" }}SYSTEM:
{{- else if eq .Role "user" }}USER:
{{- else if eq .Role "assistant" }}ASSISTANT:
{{- else if eq .Role "tool" }}TOOL:
{{- end }} {{ .Content }}
{{- end }}""", ["content", "messages", "role"]),
    ("""{{- if .Messages }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ else -}}
{{ if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ .Response }}<|im_end|>
{{- end -}}""", ["content", "messages", "prompt", "response", "role", "system"]),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse_vars(text, expected):
    assert Template.parse(text).vars() == expected


def test_vars_include_variables_and_root_fields():
    template = Template.parse("{{ $system := .System }}{{ range $i, $_ := .Messages }}{{ $.Tools }}{{ end }}")
    assert template.vars() == ["$", "messages", "system", "tools"]


def test_uses_is_case_insensitive():
    template = Template.parse("{{ if .Tools }}{{ .Suffix }}{{ end }}{{ .prompt }}")
    assert template.uses("tools") and template.uses("Suffix") and template.uses("PROMPT")
    assert not template.uses("messages")


@pytest.mark.parametrize(("text", "message"), [
    ("{{ .Prompt ", "unclosed action"),
    ('{{define "x"}}{{template "x"}}{{end}}{{template "x"}}', "undefined template specified"),
    ("{{ .Prompt }", 'template: :1: unexpected "}" in operand'),
])
def test_parse_errors(text, message):
    with pytest.raises(TemplateError, match=message):
        Template.parse(text)


def test_parse_keeps_source_text():
    assert Template.parse("{{ .Prompt }}").text == "{{ .Prompt }}"
    assert str(Template.parse(DEFAULT_TEMPLATE)) == DEFAULT_TEMPLATE


def test_parse_appends_response_only_when_needed():
    # str() of a tree is Go's Node.String(): actions are printed without their inner spaces
    assert str(Template.parse("{{ .Prompt }}").root) == "{{.Prompt}}{{.Response}}"
    assert len(Template.parse("{{ .Prompt }}{{ .Response }}").root.nodes) == 2
    assert str(Template.parse("{{ range .Messages }}{{ end }}").root) == "{{range .Messages}}{{end}}"


# --- TestExecuteWithMessages -------------------------------------------------------------------

MISTRAL_NO_RESPONSE = "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] "
MISTRAL_RESPONSE = "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] {{ .Response }}"
MISTRAL_MESSAGES = (
    "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}\n{{- range .Messages }}\n"
    '{{- if eq .Role "user" }}{{ .Content }}[/INST] {{ else if eq .Role "assistant" }}{{ .Content }}[INST] '
    "{{ end }}\n{{- end }}")
CHATML_RESPONSE = """{{ if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ .Response }}<|im_end|>
"""
CHATML_MESSAGES = """
{{- range $index, $_ := .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""


def _msgs(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": role, "content": content} for role, content in pairs]


EXECUTE_CASES = [
    ("mistral", [MISTRAL_NO_RESPONSE, MISTRAL_RESPONSE, MISTRAL_MESSAGES],
     _msgs(("user", "Hello friend!"), ("assistant", "Hello human!"), ("user", "What is your name?")),
     "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] "),
    ("mistral system", [MISTRAL_NO_RESPONSE, MISTRAL_RESPONSE, MISTRAL_MESSAGES],
     _msgs(("system", "You are a helpful assistant!"), ("user", "Hello friend!"),
           ("assistant", "Hello human!"), ("user", "What is your name?")),
     "[INST] You are a helpful assistant!\n\nHello friend![/INST] Hello human![INST] "
     "What is your name?[/INST] "),
    ("mistral assistant prefill",
     ["[INST] {{ .Prompt }}[/INST] ", "[INST] {{ .Prompt }}[/INST] {{ .Response }}",
      '\n{{- range $i, $m := .Messages }}\n{{- if eq .Role "user" }}[INST] {{ .Content }}[/INST] '
      '{{ else if eq .Role "assistant" }}{{ .Content }}{{ end }}\n{{- end }}'],
     _msgs(("user", "Hello friend!"), ("assistant", "Hello human!"), ("user", "What is your name?"),
           ("assistant", "My name is Ollama and I")),
     "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] My name is Ollama and I"),
    ("chatml", [CHATML_RESPONSE, CHATML_MESSAGES],
     _msgs(("system", "You are a helpful assistant!"), ("user", "Hello friend!"),
           ("assistant", "Hello human!"), ("user", "What is your name?")),
     "<|im_start|>system\nYou are a helpful assistant!<|im_end|>\n<|im_start|>user\nHello friend!<|im_end|>\n"
     "<|im_start|>assistant\nHello human!<|im_end|>\n<|im_start|>user\nWhat is your name?<|im_end|>\n"
     "<|im_start|>assistant\n"),
]


@pytest.mark.parametrize(("name", "templates", "messages", "expected"), EXECUTE_CASES,
                         ids=[c[0] for c in EXECUTE_CASES])
def test_execute_with_messages(name, templates, messages, expected):
    for text in templates:
        assert Template.parse(text).execute(Values(messages=messages)) == expected, text


def test_force_legacy_renders_turns_of_a_messages_template():
    template = Template.parse(
        "{{ if .Messages }}M{{ else }}{{ .System }}|{{ .Prompt }}|{{ .Response }};{{ end }}")
    messages = _msgs(("system", "S"), ("user", "a"), ("assistant", "b"), ("user", "c"))
    assert template.execute(Values(messages=messages)) == "M"
    assert template.execute(Values(messages=messages, force_legacy=True)) == "S|a|b;|c|"


def test_legacy_system_message_flushes_pending_turn():
    template = Template.parse("[{{ .System }}|{{ .Prompt }}|{{ .Response }}]")
    messages = _msgs(("user", "u1"), ("system", "s2"), ("user", "u2"), ("tool", "ignored"))
    assert template.execute(Values(messages=messages)) == "[|u1|][s2|u2|"


def test_legacy_final_turn_is_cut_after_response():
    template = Template.parse("<s>{{ .Prompt }} {{ .Response }}</s>{{ if .Prompt }}never{{ end }}")
    messages = _msgs(("user", "q1"), ("assistant", "a1"), ("user", "q2"))
    assert template.execute(Values(messages=messages)) == "<s>q1 a1</s>never<s>q2 "


def test_legacy_final_turn_tolerates_missing_fields():
    # Ollama executes the cut tree without missingkey=zero, so a missing value's fields are just missing.
    template = Template.parse("{{ .Prompt }}{{ .Nope.Deeper }}{{ .Response }}")
    assert template.execute(Values(messages=_msgs(("user", "q")))) == "q<no value>"


# --- TestExecuteWithSuffix / TestDateFunctions -------------------------------------------------

SUFFIX_TEMPLATE = """{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>
{{- else }}{{ .Prompt }}
{{- end }}"""


def test_execute_with_suffix():
    template = Template.parse(SUFFIX_TEMPLATE)
    assert template.execute(Values(messages=_msgs(("user", "hello")))) == "hello"
    got = template.execute(Values(prompt="def add(", suffix="return x"))
    assert got == "<PRE> def add( <SUF>return x <MID>"


def test_date_functions():
    today = datetime.date.today()
    template = Template.parse("{{- range .Messages }}{{ .Content }}{{ end }} Today is {{ currentDate }}")
    got = template.execute(Values(messages=_msgs(("user", "Hello"))))
    assert got == f"Hello Today is {today.isoformat()}"
    template = Template.parse('{{- range .Messages }}{{ end }}{{ yesterdayDate "2006" }}')
    assert template.execute(Values(messages=_msgs(("user", "Hello")))) == (
        today - datetime.timedelta(days=1)).isoformat()


# --- TestCollate -------------------------------------------------------------------------------

def test_collate_merges_consecutive_same_role():
    system, collated = collate(_msgs(("user", "Hello"), ("user", "How are you?")))
    assert system == ""
    assert collated == _msgs(("user", "Hello\n\nHow are you?"))


def test_collate_keeps_tool_messages_apart():
    messages = [{"role": "tool", "content": "sunny", "tool_name": "get_weather"},
                {"role": "tool", "content": "72F", "tool_name": "get_temperature"}]
    assert collate(messages) == ("", messages)


def test_collate_mixed_with_system():
    messages = [*_msgs(("system", "You are helpful"), ("user", "Hello"), ("assistant", "Hi there!"),
                       ("user", "What's the weather?")),
                {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
                {"role": "tool", "content": "72F", "tool_name": "get_temperature"},
                {"role": "user", "content": "Thanks"}]
    system, collated = collate(messages)
    assert system == "You are helpful"
    assert collated == messages


def test_collate_joins_all_system_messages_and_leaves_input_alone():
    messages = _msgs(("system", "a"), ("system", "b"), ("user", "u"), ("system", "c"))
    system, collated = collate(messages)
    assert system == "a\n\nb\n\nc"
    assert [m["content"] for m in collated] == ["a\n\nb", "u", "c"]
    assert messages[0]["content"] == "a"


def test_collate_lowercases_roles():
    _, collated = collate(_msgs(("USER", "x"), ("user", "y")))
    assert collated == _msgs(("user", "x\n\ny"))


def test_messages_mode_sees_collated_system():
    template = Template.parse("{{ .System }}|{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}")
    messages = _msgs(("system", "a"), ("user", "u1"), ("user", "u2"), ("system", "b"))
    assert template.execute(Values(messages=messages)) == "a\n\nb|system:a;user:u1\n\nu2;system:b;"


# --- tool calls and tools ----------------------------------------------------------------------

def _tool_call_message(arguments: dict) -> dict:
    return {"role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": arguments}}]}


def test_tool_call_arguments_print_as_sorted_json():
    template = Template.parse(
        "{{- range .Messages }}{{- range .ToolCalls }}{{ .Function.Arguments }}{{- end }}{{- end }}")
    got = template.execute(Values(messages=[_tool_call_message({"unit": "celsius", "location": "Tokyo"})]))
    assert got == '{"location":"Tokyo","unit":"celsius"}'
    assert json.loads(got) == {"location": "Tokyo", "unit": "celsius"}


def test_tool_call_arguments_json_escaping_and_numbers():
    template = Template.parse(
        "{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Arguments }}{{ end }}{{ end }}")
    arguments = {"q": "<a&b>", "city": "Zürich", "n": 100000000, "f": 0.5,
                 "nested": {"z": 1, "a": [True, None]}}
    got = template.execute(Values(messages=[_tool_call_message(arguments)]))
    assert got == ('{"city":"Zürich","f":0.5,"n":100000000,"nested":{"a":[true,null],"z":1},'
                   '"q":"\\u003ca\\u0026b\\u003e"}')


def test_tool_call_arguments_range():
    template = Template.parse(
        "{{- range .Messages }}{{- range .ToolCalls }}{{- range $k, $v := .Function.Arguments }}"
        "{{ $k }}={{ $v }};{{- end }}{{- end }}{{- end }}")
    assert template.execute(Values(messages=[_tool_call_message({"city": "Tokyo"})])) == "city=Tokyo;"
    # Go prints JSON numbers (float64) with %v
    got = template.execute(Values(messages=[_tool_call_message({"b": 1000000, "a": 2.5, "c": None})]))
    assert got == "a=2.5;b=1e+06;c=<no value>;"


def test_tool_call_fields_and_missing_arguments():
    template = Template.parse(
        "{{ range .Messages }}{{ range .ToolCalls }}{{ .ID }}/{{ .Function.Index }}/{{ .Function.Name }}/"
        "{{ .Function.Arguments }}{{ end }}{{ if not .ToolCalls }}none{{ end }}{{ end }}")
    messages = [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "function": {"index": 2, "name": "f"}}]}, {"role": "user", "content": "x"}]
    assert template.execute(Values(messages=messages)) == "call_1/2/f/{}none"


def test_tool_message_fields():
    template = Template.parse(
        "{{ range .Messages }}{{ .ToolName }}|{{ .ToolCallID }}|{{ .Thinking }}{{ end }}")
    messages = [{"role": "tool", "content": "r", "tool_name": "f", "tool_call_id": "c1", "thinking": "t"}]
    assert template.execute(Values(messages=messages)) == "f|c1|t"


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather",
        "parameters": {
            "type": "object",
            "required": ["location"],
            "properties": {
                "unit": {"type": "string", "enum": ["c", "f"], "description": "Unit", "default": "c"},
                "location": {"type": ["string", "null"], "description": "City <name>"},
            },
        },
    },
}


def _with_tools(text: str, tools: list[dict] | None = None) -> str:
    return Template.parse("{{ range .Messages }}{{ end }}" + text).execute(
        Values(messages=_msgs(("user", "test")), tools=[WEATHER_TOOL] if tools is None else tools))


def test_tool_prints_as_json_in_field_order():
    assert _with_tools("{{ range .Tools }}{{ . }}{{ end }}") == (
        '{"type":"function","function":{"name":"get_weather","description":"Get the weather",'
        '"parameters":{"type":"object","required":["location"],"properties":{'
        '"location":{"type":["string","null"],"description":"City \\u003cname\\u003e"},'
        '"unit":{"type":"string","description":"Unit","enum":["c","f"]}}}}}')


def test_tools_print_as_json_array():
    assert _with_tools("{{ .Tools }}") == "[" + _with_tools("{{ range .Tools }}{{ . }}{{ end }}") + "]"
    assert _with_tools("{{ json .Tools }}") == _with_tools("{{ .Tools }}")
    assert _with_tools("{{ .Tools }}", tools=[]) == "null"
    assert _with_tools("{{ if .Tools }}yes{{ else }}no{{ end }}", tools=[]) == "no"


def test_properties_print_as_json_and_range_sorted():
    assert json.loads(_with_tools("{{ range .Tools }}{{ .Function.Parameters.Properties }}{{ end }}")) == {
        "location": {"type": ["string", "null"], "description": "City <name>"},
        "unit": {"type": "string", "description": "Unit", "enum": ["c", "f"]},
    }
    assert _with_tools(
        "{{- range .Tools }}{{- range $name, $prop := .Function.Parameters.Properties }}"
        "{{ $name }}:{{ $prop.Type }};{{- end }}{{- end }}") == "location:[string null];unit:string;"


def test_property_helpers():
    text = ("{{ range .Tools }}{{ range $n, $p := .Function.Parameters.Properties }}"
            "{{ $n }}={{ toTypeScriptType $p }}/{{ $p.ToTypeScriptType }}/{{ $p.Description }}/{{ $p.Enum }};"
            "{{ end }}{{ toTypeScriptType .Function }}{{ end }}")
    assert _with_tools(text) == (
        "location=string | null/string | null/City <name>/[];unit=string/string/Unit/[c f];any")


def test_tool_function_prints_as_go_struct():
    tool = {"type": "function", "function": {"name": "f", "description": "d",
                                             "parameters": {"type": "object", "properties": {}}}}
    got = _with_tools("{{ range .Tools }}{{ .Function }}{{ end }}", [tool])
    assert got == "{f d {object <nil> <nil> [] {}}}"
    assert _with_tools("{{ range .Tools }}{{ json .Function }}{{ end }}", [tool]) == (
        '{"name":"f","description":"d","parameters":{"type":"object","properties":{}}}')


def test_nested_properties_keep_their_order():
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "p": {"type": "object", "properties": {"z": {"type": "integer"}, "a": {"anyOf": [
            {"type": "string"}, {"type": "number"}]}}}}}}}
    assert _with_tools("{{ range .Tools }}{{ .Function.Parameters.Properties }}{{ end }}", [tool]) == (
        '{"p":{"type":"object","properties":{"z":{"type":"integer"},"a":{"anyOf":[{"type":"string"},'
        '{"type":"number"}]}}}}')
    text = ("{{ range .Tools }}{{ range .Function.Parameters.Properties }}{{ range .Properties }}"
            "{{ toTypeScriptType . }},{{ end }}{{ end }}{{ end }}")
    assert _with_tools(text, [tool]) == "string | number,number,"


def test_json_function_on_messages():
    template = Template.parse("{{ range .Messages }}{{ json . }}{{ end }}")
    assert template.execute(Values(messages=_msgs(("user", "hi")))) == (
        '{"Role":"user","Content":"hi","Thinking":"","Images":null,"ToolCalls":null,"ToolName":"",'
        '"ToolCallID":""}')


def test_images_are_present_in_messages():
    template = Template.parse(
        "{{ range .Messages }}{{ len .Images }}{{ json .Images }}{{ if .Images }}!{{ end }}{{ end }}")
    messages = [{"role": "user", "content": "x", "images": ["AQID"]}]
    assert template.execute(Values(messages=messages)) == '1["AQID"]!'


# --- thinking -------------------------------------------------------------------------------------

THINK_TEMPLATE = "{{ range .Messages }}{{ end }}{{ .Think }}/{{ .ThinkLevel }}/{{ .IsThinkSet }}"


@pytest.mark.parametrize(("think", "level", "expected"), [
    (None, "", "false//false"),
    (False, "", "false//true"),
    (True, "", "true/medium/true"),
    (True, "high", "true/high/true"),
    (None, "low", "true/low/true"),
])
def test_think_values(think, level, expected):
    template = Template.parse(THINK_TEMPLATE)
    assert template.execute(Values(messages=_msgs(("user", "x")), think=think, think_level=level)) == expected


def test_think_values_in_legacy_and_suffix_modes():
    template = Template.parse("{{ .Think }}{{ .ThinkLevel }}{{ .Prompt }}{{ .Suffix }}")
    assert template.execute(Values(messages=_msgs(("user", "p")), think=True)) == "truemediump<no value>"
    assert template.execute(Values(prompt="p", suffix="s", think=False)) == "falseps"


def test_messages_mode_has_no_prompt():
    template = Template.parse("{{ range .Messages }}{{ end }}{{ .Prompt }}|{{ if .Prompt }}x{{ end }}")
    assert template.execute(Values(messages=_msgs(("user", "x")))) == "<no value>|"


def test_missing_field_of_missing_key_is_an_error():
    template = Template.parse("{{ range .Messages }}{{ end }}{{ .Prompt.Text }}")
    with pytest.raises(TemplateError, match=r"nil pointer evaluating interface \{\}\.Text"):
        template.execute(Values(messages=_msgs(("user", "x"))))


def test_struct_field_errors():
    template = Template.parse("{{ range .Messages }}{{ .Nope }}{{ end }}")
    with pytest.raises(TemplateError, match=r"can't evaluate field Nope in type \*template.templateMessage"):
        template.execute(Values(messages=_msgs(("user", "x"))))


def test_parse_is_cached_and_execution_is_repeatable():
    text = "{{ range .Messages }}{{ .Content }}{{ end }}"
    assert Template.parse(text) is Template.parse(text)
    template = Template.parse(text)
    values = Values(messages=_msgs(("user", "a"), ("user", "b")))
    assert template.execute(values) == template.execute(values) == "a\n\nb"


# --- command-r with tools: expected renders from Ollama's TestTools (commit 79935898d) ------------

COMMAND_R_TOOL = {"type": "function", "function": {
    "name": "get_weather",
    "description": "Get current weather information for a location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                     "description": "The unit of temperature to use"},
        },
        "required": ["location"],
    },
}}
COMMAND_R_CASES = {
    "tools-single": Values(messages=[], tools=[COMMAND_R_TOOL]),
    "tools-single-call": Values(messages=[{"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"location": "San Francisco, CA"}}}]}]),
    "tools-single-result": Values(messages=[{"role": "tool", "content": (
        '{"temperature": 22, "condition": "Sunny", "humidity": 45, "wind_speed": 10}')}]),
}


@pytest.mark.parametrize("case", sorted(COMMAND_R_CASES))
def test_command_r_with_tools(corpus, case):
    template = Template.parse((corpus / "command-r.gotmpl").read_text(encoding="utf-8"))
    expected = (Path(__file__).parent / "testdata" / "command-r" / case).read_text(encoding="utf-8")
    assert template.execute(COMMAND_R_CASES[case]) == expected
