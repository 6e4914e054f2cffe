"""Thinking tags inferred from Go templates and the streaming thinking parser (engine/thinking.py), with
cases from Ollama's thinking/parser_test.go and thinking/template_test.go."""

from __future__ import annotations

import pytest

from engine.template import Template
from engine.thinking import ThinkingParser, infer_tags

QWEN3 = """{{- range $i, $_ := .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""


@pytest.mark.parametrize(("template", "tags"), [
    (QWEN3, ("<think>", "</think>")),
    ("{{ range .Messages }}{{ if .Thinking }}  <reasoning> {{ .Thinking }} </reasoning>\n{{ end }}{{ end }}",
     ("<reasoning>", "</reasoning>")),
    # .Thinking outside a range over .Messages does not count
    ("{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}", ("", "")),
    ("{{ range .Tools }}{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ end }}", ("", "")),
    # the enclosing list must start and end with text
    ("{{ range .Messages }}{{ if .Thinking }}{{ .Thinking }}{{ end }}{{ end }}", ("", "")),
    ("{{ range $m := .Messages }}{{ with .Thinking }}[T]{{ . }}{{ end }}{{ if .Thinking }}<t>{{ .Thinking }}</t>"
     "{{ end }}{{ end }}", ("<t>", "</t>")),
    ("{{ .Prompt }}", ("", "")),
])
def test_infer_tags(template: str, tags: tuple[str, str]) -> None:
    assert infer_tags(Template.parse(template).root) == tags


def _run(parser: ThinkingParser, pieces: list[str]) -> tuple[str, str]:
    thinking = content = ""
    for piece in pieces:
        t, c = parser.add(piece)
        thinking += t
        content += c
    return thinking, content


@pytest.mark.parametrize(("pieces", "thinking", "content"), [
    (["<think>abc</think>def"], "abc", "def"),
    (["  <think>\n abc</think>\n\n def"], "abc", "def"),
    (["<th", "ink>", "a", "b</th", "ink>", "  ", "c"], "ab", "c"),
    (["no thinking here"], "", "no thinking here"),
    (["  plain"], "", "  plain"),
    (["<think>abc</thi"], "abc", ""),
    (["<think>a</think>b</think>c"], "a", "b</think>c"),
    (["<think>", "   ", "x</think>", "\n", " y z"], "x", "y z"),
    (["<thinx"], "", "<thinx"),
])
def test_parser(pieces: list[str], thinking: str, content: str) -> None:
    assert _run(ThinkingParser("<think>", "</think>"), pieces) == (thinking, content)


def test_held_back_until_decided() -> None:
    parser = ThinkingParser("<think>", "</think>")
    assert parser.add("  <thi") == ("", "")
    assert parser.add("nk>one</") == ("one", "")
    assert parser.add("think>two") == ("", "two")
    assert parser.thinking_done


def test_primed_parser() -> None:
    """A prompt that ends with the opening tag: the parser is fed the tag first."""
    parser = ThinkingParser("<think>", "</think>")
    assert parser.add("<think>") == ("", "")
    assert _run(parser, ["I should ", "answer.</think>", "Yes."]) == ("I should answer.", "Yes.")
