"""Every fixture ported from Ollama's parser tests, run against engine.parsers: the pieces are fed as the
test fed them, and the content, thinking and calls compared with what Ollama's parser gives."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from engine.parsers import ParserError, parser_for_name
from engine.parsers.base import Parser
from tests.parsers.fixtures import ALL_CASES, ALL_UNITS, UNIT_FUNCTIONS, VARIANTS
from tests.parsers.fixtures.spec import ANY, NO_INIT, NONEMPTY, Case, Unit


def new_parser(name: str) -> Parser:
    if name in VARIANTS:
        return VARIANTS[name][0]()
    parser = parser_for_name(name)
    assert parser is not None, f"no parser named {name!r}"
    return parser


def _check_calls(got: list[dict[str, Any]], want: list[dict[str, Any]], where: str) -> None:
    simplified = []
    for call, expected in zip(got, want, strict=False):
        function = call["function"]
        item = {"name": function["name"], "arguments": function["arguments"]}
        if "index" in expected:
            item["index"] = function["index"]
        if "id" in expected:
            item["id"] = call.get("id", "")
        simplified.append(item)
    if len(got) != len(want):
        simplified = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in got]
    assert simplified == want, where


def _check(got: Any, want: Any, what: str) -> None:
    if want is NONEMPTY:
        assert got, what
    elif want is not ANY:
        assert got == want, what


def run_case(case: Case) -> None:
    parser = new_parser(case.parser)
    if case.init is not NO_INIT:
        tools = copy.deepcopy(case.init.tools)
        out = parser.init(tools, copy.deepcopy(case.init.last), case.init.think)
        _check(out, case.tools_out, "tools returned by init")
    content, thinking, calls = [], [], []
    for i, step in enumerate(case.steps):
        where = f"step {i} ({step.text!r})"
        if step.init is not None:
            parser.init(copy.deepcopy(step.init.tools), copy.deepcopy(step.init.last), step.init.think)
        if step.error is not None:
            with pytest.raises(ParserError) as info:
                parser.add(step.text, step.done)
            if isinstance(step.error, str):
                assert step.error in str(info.value), where
            return
        parsed = parser.add(step.text, step.done)
        _check(parsed.content, step.content, f"content of {where}")
        _check(parsed.thinking, step.thinking, f"thinking of {where}")
        if step.calls is not ANY:
            _check_calls(parsed.calls, step.calls, f"calls of {where}")
        content.append(parsed.content)
        thinking.append(parsed.thinking)
        calls += parsed.calls
    _check("".join(content), case.content, "content")
    _check("".join(thinking), case.thinking, "thinking")
    if case.calls is not ANY:
        _check_calls(calls, case.calls, "calls")


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: f"{c.parser}: {c.name}")
def test_case(case: Case) -> None:
    run_case(case)
    text = "".join(step.text for step in case.steps)
    pieces = [[text[:i], text[i:]] for i in range(len(text) + 1)] if case.every_split else []
    if case.one_char_pieces:
        pieces.append(list(text))
    for chunks in pieces:
        steps = [dataclasses.replace(case.steps[0], text=chunk, done=i == len(chunks) - 1)
                 for i, chunk in enumerate(chunks)]
        run_case(dataclasses.replace(case, steps=steps, every_split=False, one_char_pieces=False))


@pytest.mark.parametrize("unit", ALL_UNITS, ids=lambda u: f"{u.parser}: {u.name}")
def test_unit(unit: Unit) -> None:
    assert UNIT_FUNCTIONS[unit.function](*copy.deepcopy(unit.args)) == unit.want
