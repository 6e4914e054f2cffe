"""Go text/template semantics as implemented by the engine (expected values follow Go's behaviour)."""

from __future__ import annotations

import pytest

from engine.template import TemplateError
from engine.template.errors import ExecError

DATA = {
    "S": "x", "E": "", "N": 3, "Z": 0, "F": 1.5, "T": True, "No": False,
    "L": [1, 2, 3], "Empty": [], "M": {"b": 2, "a": 1}, "EmptyMap": {}, "Nil": None,
    "Nested": {"inner": {"value": "deep"}}, "U": "héllo",
}


def test_text_passes_through(go_render):
    assert go_render("plain text, no actions", DATA) == "plain text, no actions"
    assert go_render("", DATA) == ""


@pytest.mark.parametrize(("field", "truth"), [
    ("S", True), ("E", False), ("N", True), ("Z", False), ("F", True), ("T", True), ("No", False),
    ("L", True), ("Empty", False), ("M", True), ("EmptyMap", False), ("Nil", False), ("Missing", False),
])
def test_truthiness(go_render, field, truth):
    text = "{{ if ." + field + " }}yes{{ else }}no{{ end }}"
    assert go_render(text, DATA) == ("yes" if truth else "no")


def test_and_or_return_operands(go_render):
    assert go_render("{{ and .S .E }}|{{ and .S .N }}|{{ or .E .Z .S }}|{{ or .E .Z }}", DATA) == "|3|x|0"
    assert go_render("{{ and .N .S .L }}", DATA) == "[1 2 3]"


def test_and_or_short_circuit(go_render):
    # the failing index is never evaluated
    assert go_render("{{ and .E (index .L 99) }}|{{ or .S (index .L 99) }}", DATA) == "|x"
    with pytest.raises(ExecError, match="index out of range: 99"):
        go_render("{{ and .S (index .L 99) }}", DATA)


def test_and_with_pipeline_operand(go_render):
    assert go_render("{{ .S | and .N }}|{{ .S | or .E }}", DATA) == "x|x"


def test_not(go_render):
    assert go_render("{{ not .E }}{{ not .S }}{{ not .Missing }}", DATA) == "truefalsetrue"


def test_eq_with_several_arguments(go_render):
    assert go_render("{{ eq .N 1 2 3 }}{{ eq .N 1 2 }}{{ eq .S \"y\" \"x\" }}", DATA) == "truefalsetrue"


def test_comparisons(go_render):
    assert go_render("{{ ne 1 2 }}{{ lt 1 2 }}{{ le 2 2 }}{{ gt \"b\" \"a\" }}{{ ge 1.5 2.5 }}", DATA) == (
        "truetruetruetruefalse")
    assert go_render("{{ eq .Missing \"x\" }}{{ eq .Nil .Missing }}{{ eq .F 1.5 }}", DATA) == "falsetruetrue"


@pytest.mark.parametrize(("text", "message"), [
    ('{{ eq .S 1 }}', "error calling eq: incompatible types for comparison: string and int"),
    ("{{ eq .S }}", "error calling eq: missing argument for comparison"),
    ("{{ lt .L 1 }}", "error calling lt: invalid type for comparison"),
    ("{{ lt 1 1.5 }}", "error calling lt: incompatible types for comparison: int and float64"),
    ("{{ ne 1 }}", "wrong number of args for ne: want 2 got 1"),
    ("{{ eq .L .L }}", r"error calling eq: non-comparable type \[%!s\(int=1\) %!s\(int=2\) %!s\(int=3\)\]: "),
])
def test_comparison_errors(go_render, text, message):
    with pytest.raises(ExecError, match=message):
        go_render(text, DATA)


def test_range_over_slice_and_map(go_render):
    assert go_render("{{ range .L }}{{ . }},{{ end }}", DATA) == "1,2,3,"
    assert go_render("{{ range $i, $x := .L }}{{ $i }}={{ $x }};{{ end }}", DATA) == "0=1;1=2;2=3;"
    assert go_render("{{ range $k, $v := .M }}{{ $k }}={{ $v }};{{ end }}", DATA) == "a=1;b=2;"
    assert go_render("{{ range $v := .M }}{{ $v }}{{ end }}", DATA) == "12"


def test_range_else(go_render):
    assert go_render("{{ range .Empty }}x{{ else }}empty{{ end }}", DATA) == "empty"
    assert go_render("{{ range .Missing }}x{{ else }}none{{ end }}", DATA) == "none"
    assert go_render("{{ range .EmptyMap }}x{{ else }}none{{ end }}", DATA) == "none"
    assert go_render("{{ range .L }}{{ . }}{{ else }}none{{ end }}", DATA) == "123"


def test_range_over_integer(go_render):
    assert go_render("{{ range 3 }}{{ . }}{{ end }}{{ range 0 }}x{{ else }}zero{{ end }}", DATA) == "012zero"
    with pytest.raises(ExecError, match="can't use 3 to iterate over more than one variable"):
        go_render("{{ range $i, $x := 3 }}{{ end }}", DATA)


def test_range_over_string_fails(go_render):
    with pytest.raises(ExecError, match="range can't iterate over x"):
        go_render("{{ range .S }}{{ end }}", DATA)


def test_break_and_continue(go_render):
    assert go_render("{{ range .L }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ . }}{{ end }}", DATA) == "13"
    assert go_render("{{ range .L }}{{ if eq . 2 }}{{ break }}{{ end }}{{ . }}{{ end }}", DATA) == "1"
    nested = "{{ range .L }}{{ range $.L }}{{ if eq . 2 }}{{ break }}{{ end }}{{ . }}{{ end }};{{ end }}"
    assert go_render(nested, DATA) == "1;1;1;"


@pytest.mark.parametrize(("text", "message"), [
    ("{{ break }}", "template: :1: {{break}} outside {{range}}"),
    ("{{ range .L }}{{ end }}{{ continue }}", "template: :1: {{continue}} outside {{range}}"),
    ("{{ range .L }}{{ else }}{{ break }}{{ end }}", "{{break}} outside {{range}}"),
    ("{{ range .L }}{{ break 1 }}{{ end }}", 'unexpected "1" in {{break}}'),
])
def test_break_continue_errors(go_render, text, message):
    with pytest.raises(TemplateError, match=message):
        go_render(text, DATA)


def test_if_else_if_chain(go_render):
    text = "{{ if eq .N 1 }}one{{ else if eq .N 3 }}three{{ else if eq .N 3 }}again{{ else }}other{{ end }}"
    assert go_render(text, DATA) == "three"
    assert go_render("{{ if .E }}a{{ else if .Z }}b{{ else }}c{{ end }}", DATA) == "c"


def test_with_sets_dot_and_else(go_render):
    assert go_render("{{ with .S }}[{{ . }}]{{ else }}no{{ end }}", DATA) == "[x]"
    assert go_render("{{ with .E }}[{{ . }}]{{ else }}no{{ end }}", DATA) == "no"
    assert go_render("{{ with .E }}a{{ else with .Nested.inner }}{{ .value }}{{ end }}", DATA) == "deep"


def test_variables_and_scoping(go_render):
    assert go_render("{{ $x := 1 }}{{ if .T }}{{ $x = 2 }}{{ end }}{{ $x }}", DATA) == "2"
    text = '{{ $x := .S }}{{ range .L }}{{ $x = printf "%s%d" $x . }}{{ end }}{{ $x }}'
    assert go_render(text, DATA) == "x123"
    assert go_render("{{ range .L }}{{ $.S }}{{ end }}{{ $ | len }}", DATA) == "xxx14"
    assert go_render("{{ if .T }}{{ $y := 1 }}{{ $y }}{{ end }}", DATA) == "1"
    with pytest.raises(TemplateError, match='undefined variable "\\$y"'):
        go_render("{{ if .T }}{{ $y := 1 }}{{ end }}{{ $y }}", DATA)


def test_variable_declared_in_range_body_is_per_iteration(go_render):
    assert go_render("{{ range .L }}{{ $v := . }}{{ $v }}{{ end }}", DATA) == "123"


def test_declaration_prints_nothing(go_render):
    assert go_render("a{{ $x := .S }}b{{ $x }}", DATA) == "abx"


def test_printing_values(go_render):
    text = "{{ .S }}|{{ .N }}|{{ .F }}|{{ .T }}|{{ .L }}|{{ .M }}|{{ .Missing }}|{{ .Nil }}"
    assert go_render(text, DATA) == (
        "x|3|1.5|true|[1 2 3]|map[a:1 b:2]|<no value>|<no value>")
    assert go_render("{{ .L }}", {"L": [1, None, "a", [2.5]]}) == "[1 <nil> a [2.5]]"


def test_number_literals(go_render):
    text = "{{ 1e6 }} {{ 3 }} {{ 'a' }} {{ 0x10 }} {{ 010 }} {{ 1_000 }} {{ -2.50 }} {{ .5 }}"
    assert go_render(text, DATA) == (
        "1e+06 3 97 16 8 1000 -2.5 0.5")


def test_string_literals(go_render):
    assert go_render('{{ "a\\tb\\n\\u00e9\\x41" }}|{{ `raw\\n` }}', DATA) == "a\tb\néA|raw\\n"


def test_trim_markers(go_render):
    assert go_render("a  \n {{- .S -}} \n\t b", DATA) == "axb"
    assert go_render("a {{- .S }} b", DATA) == "ax b"
    assert go_render("a {{ .S -}} b", DATA) == "a xb"
    assert go_render("{{ 3 }} {{-3}}", DATA) == "3 -3"  # no space after '-': a negative number, no trim


def test_comments(go_render):
    assert go_render("a{{/* comment */}}b", DATA) == "ab"
    assert go_render("a {{- /* comment */ -}} b", DATA) == "ab"
    assert go_render("{{/* multi\nline */}}x", DATA) == "x"
    with pytest.raises(TemplateError, match="comment ends before closing delimiter"):
        go_render("{{/* c */ .S }}", DATA)
    with pytest.raises(TemplateError, match="unclosed comment"):
        go_render("{{/* c ", DATA)


def test_pipelines_and_parentheses(go_render):
    text = '{{ .S | printf "%s!" }}|{{ .L | len }}|{{ "a" | printf "%s-%s" "b" }}'
    assert go_render(text, DATA) == "x!|3|b-a"
    assert go_render("{{ if and .S (eq (len .L) 3) }}yes{{ end }}", DATA) == "yes"
    assert go_render("{{ (index .Nested \"inner\").value }}", DATA) == "deep"


def test_printf_verbs(go_render):
    text = ('{{ printf "%s-%d-%v-%q-%5.2f|%-4s|%04d|%x|%t|%%|%T|%c|%e|%g" '
            '.S .N .L .S .F "ab" 7 255 .T .F 65 .F .F }}')
    assert go_render(text, DATA) == 'x-3-[1 2 3]-"x"- 1.50|ab  |0007|ff|true|%|float64|A|1.500000e+00|1.5'


def test_printf_argument_mismatches(go_render):
    assert go_render('{{ printf "%d %s" 1 }}', DATA) == "1 %!s(MISSING)"
    assert go_render('{{ printf "%d" 1 "a" }}', DATA) == "1%!(EXTRA string=a)"
    assert go_render('{{ printf "%d" "x" }}', DATA) == "%!d(string=x)"
    assert go_render('{{ printf "%s|%v" .Missing nil }}', DATA) == "%!s(<nil>)|<nil>"


def test_print_and_println(go_render):
    assert go_render('{{ print 1 2 "a" "b" 3 }}', DATA) == "1 2ab3"
    assert go_render('{{ println "a" 1 }}', DATA) == "a 1\n"


def test_len_index_slice(go_render):
    # len counts UTF-8 bytes
    assert go_render("{{ len .S }}{{ len .L }}{{ len .M }}{{ len .U }}", DATA) == "1326"
    text = '{{ index .L 1 }}{{ index .M "a" }}{{ index .M "zz" }}{{ index .Nested "inner" "value" }}'
    assert go_render(text, DATA) == "21<no value>deep"
    assert go_render("{{ index .S 0 }}", DATA) == "120"  # a byte
    assert go_render("{{ index .Words 0 }}", {"Words": ["b", "a"]}) == "b"
    assert go_render("{{ slice .L 1 }}{{ slice .L 0 2 }}{{ slice .L }}{{ slice .U 1 3 }}", DATA) == (
        "[2 3][1 2][1 2 3]é")


@pytest.mark.parametrize(("text", "message"), [
    ("{{ index .L 5 }}", "error calling index: index out of range: 5"),
    ("{{ index .L 3 }}", "error calling index: reflect: slice index out of range"),
    ("{{ index .Missing 0 }}", "error calling index: index of untyped nil"),
    ('{{ index .L "a" }}', "error calling index: cannot index slice/array with type string"),
    ("{{ index .N 0 }}", "error calling index: can't index item of type int"),
    ("{{ slice .L 2 1 }}", "error calling slice: invalid slice index: 2 > 1"),
    ("{{ slice .S 0 1 1 }}", "error calling slice: cannot 3-index slice a string"),
    ("{{ len .N }}", "error calling len: len of type int"),
])
def test_collection_errors(go_render, text, message):
    with pytest.raises(ExecError, match=message):
        go_render(text, DATA)


def test_escaping_functions(go_render):
    assert go_render("{{ html \"<a href='x'>&\" }}", DATA) == "&lt;a href=&#39;x&#39;&gt;&amp;"
    assert go_render('{{ js "a\'b<c=" }}', DATA) == "a\\'b\\u003Cc\\u003D"
    assert go_render('{{ urlquery "a b&c/é" }}', DATA) == "a+b%26c%2F%C3%A9"


def test_json_function(go_render):
    assert go_render('{{ json .M }}{{ json .S }}{{ json .L }}{{ json .Nil }}{{ json "<é>" }}', DATA) == (
        '{"a":1,"b":2}"x"[1,2,3]null"\\u003cé\\u003e"')


def test_define_template_block(go_render):
    text = ('{{ define "x" }}X{{ . }}{{ end }}{{ template "x" .S }}'
            '{{ block "y" .N }}B{{ . }}{{ end }}{{ template "y" 5 }}')
    assert go_render(text, DATA) == "XxB3B5"
    with pytest.raises(ExecError, match='template "nope" not defined'):
        go_render('{{ template "nope" }}', DATA)


def test_template_call_does_not_see_callers_variables(go_render):
    with pytest.raises(TemplateError, match='undefined variable "\\$x"'):
        go_render('{{ define "t" }}{{ $x }}{{ end }}{{ $x := 1 }}{{ template "t" }}', DATA)


def test_missing_keys(go_render):
    assert go_render("{{ .Missing }}|{{ if .Missing }}y{{ else }}n{{ end }}", DATA) == "<no value>|n"
    with pytest.raises(ExecError, match=r"nil pointer evaluating interface \{\}\.Deep"):
        go_render("{{ .Missing.Deep }}", DATA)
    assert go_render("{{ .Missing.Deep }}", DATA, zero_missing_keys=False) == "<no value>"
    assert go_render("{{ $x := .Missing }}{{ $x.Deep }}", DATA) == "<no value>"


@pytest.mark.parametrize(("text", "message"), [
    ("{{ .S }", 'template: :1: unexpected "}" in operand'),
    ("{{ .S ", "template: :1: unclosed action"),
    ("{{ if .S }}x", "template: :1: unexpected EOF"),
    ("{{ if }}{{ end }}", "template: :1: missing value for if"),
    ("{{ end }}", "template: :1: unexpected {{end}}"),
    ("{{ else }}", "template: :1: unexpected {{else}}"),
    ("{{ nope }}", 'template: :1: function "nope" not defined'),
    ("{{ $x }}", 'template: :1: undefined variable "\\$x"'),
    ("line\n{{ .S\n\n", "template: :4: unclosed action started at :2"),
    ("{{ .S\n\n}", 'template: :3: unexpected "}" in operand'),
    ("{{ if .S }}\n{{ else }}\n{{ else }}{{ end }}", "template: :3: expected end; found {{else}}"),
    ('{{ "abc }}', "template: :1: unterminated quoted string"),
    ("{{ .S | 3 }}", "template: :1: non executable command in pipeline stage 2"),
    ('{{ "\\q" }}', "template: :1: invalid syntax"),
    ("{{ 3x }}", 'template: :1: bad number syntax: "3x"'),
    ("{{ .S.3 }}", 'template: :1: unexpected ".3" in operand'),
    ("{{ true.x }}", 'template: :1: unexpected . after term "true"'),
    ("{{ ) }}", "template: :1: unexpected right paren U\\+0029 '\\)'"),
    ("{{ (.S }}", "template: :1: unclosed left paren"),
    ("{{ .S\x01 }}", "bad character U\\+0001"),
    ("{{ range $i, $x, $y := .L }}{{ end }}", "too many declarations in range"),
    ('{{ define "a" }}1{{ end }}{{ define "a" }}2{{ end }}', 'multiple definition of template "a"'),
])
def test_parse_error_messages(go_render, text, message):
    with pytest.raises(TemplateError, match=message):
        go_render(text, DATA)


@pytest.mark.parametrize(("text", "message"), [
    # fields looked up in a map[string]any hold interface{} values
    ("{{ .S.B }}", 'template: :1:5: executing "" at <.S.B>: can\'t evaluate field B in type interface {}$'),
    ("x\n  {{ .N.Foo }}",
     'template: :2:7: executing "" at <.N.Foo>: can\'t evaluate field Foo in type interface {}$'),
    ("{{ $x := .N }}{{ $x.Foo }}", "can't evaluate field Foo in type int$"),
    ("{{ .S 1 }}", 'template: :1:3: executing "" at <.S>: S is not a method but has arguments'),
    ("{{ nil }}", 'template: :1:3: executing "" at <nil>: nil is not a command'),
    ('{{ printf 1 }}', 'template: :1:10: executing "" at <1>: expected string; found 1'),
    ("{{ printf }}", "wrong number of args for printf: want at least 1 got 0"),
    ("{{ len 3 }}", 'template: :1:3: executing "" at <len 3>: error calling len: len of type int'),
    ("{{ 3 | .S }}", "S is not a method but has arguments"),
    ('{{ "a" 1 }}', 'can\'t give argument to non-function "a"'),
])
def test_exec_error_messages(go_render, text, message):
    pattern = message.replace("(", "\\(").replace(")", "\\)").replace("{}", "\\{\\}")
    with pytest.raises(ExecError, match=pattern):
        go_render(text, DATA)


def test_multibyte_positions_are_bytes(go_render):
    with pytest.raises(ExecError, match=":1:7:"):
        go_render("é{{ .S.B }}", DATA)  # é is two bytes
