"""Ollama's renderer test cases (model/renderers/*_test.go at the reference commit), as fixtures: each case
gives the renderer, the request's messages, tools and think value, and what Ollama's test asserts about the
prompt (equal to, contains, ...). Every case must pass, and every renderer name must have cases."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine.renderers import (
    BUILDERS,
    Renderer,
    RenderError,
    UnknownRendererError,
    leading_bos,
    messages_from_json,
    renderer_for,
    tools_from_json,
)
from engine.renderers.api import Tool
from engine.renderers.base import tag_images
from engine.renderers.cohere import CohereRenderer
from engine.renderers.deepseek import CogitoRenderer, DeepSeek3Renderer
from engine.renderers.gemma import FunctionGemmaRenderer, Gemma4Renderer
from engine.renderers.glimmer import GlimmerRenderer
from engine.renderers.glm import GLM47Renderer, GlmOcrRenderer
from engine.renderers.gojson import hf_tojson, marshal_spaced
from engine.renderers.laguna import LagunaRenderer, LagunaV8Renderer
from engine.renderers.lfm2 import LFM2Renderer
from engine.renderers.nemotron import Nemotron3NanoRenderer
from engine.renderers.olmo import Olmo3Renderer, Olmo3ThinkRenderer
from engine.renderers.qwen import (
    Qwen3CoderRenderer,
    Qwen3VLRenderer,
    Qwen35Renderer,
    format_call_argument,
    format_definition_type,
    qwen38_reasoning_instructions,
)

FIXTURES = Path(__file__).parent / "fixtures"

# The names in Ollama's renderer switch at the reference commit, each with the Go renderer it builds and
# that renderer's settings (image tags left out: the server turns them on for every renderer).
SWITCH: dict[str, tuple[str, dict[str, Any]]] = {
    "qwen3-coder": ("Qwen3CoderRenderer", {}),
    "qwen3-vl-instruct": ("Qwen3VLRenderer", {"isThinking": False}),
    "qwen3-vl-thinking": ("Qwen3VLRenderer", {"isThinking": True}),
    "qwen3.5": ("Qwen35Renderer", {"isThinking": True, "emitEmptyThinkOnNoThink": True}),
    "qwen3.8": ("Qwen35Renderer", {"isThinking": True, "variant": 1, "alwaysRenderAssistantThinkBlock": True,
                                   "emitEmptyThinkOnNoThink": True}),
    "ornith": ("Qwen35Renderer", {"isThinking": True, "alwaysRenderAssistantThinkBlock": True,
                                  "emitEmptyThinkOnNoThink": True}),
    "cogito": ("CogitoRenderer", {"isThinking": True}),
    "deepseek3.1": ("DeepSeek3Renderer", {"IsThinking": True, "Variant": 0}),
    "olmo3": ("Olmo3Renderer", {"UseExtendedSystemMessage": False}),
    "olmo3.1": ("Olmo3Renderer", {"UseExtendedSystemMessage": True}),
    "olmo3-think": ("Olmo3ThinkRenderer", {"Variant": 1}),
    "olmo3-32b-think": ("Olmo3ThinkRenderer", {"Variant": 0}),
    "nemotron-3-nano": ("Nemotron3NanoRenderer", {}),
    "nemotron-3.5-nano": ("Nemotron3NanoRenderer", {"v35": True}),
    "gemma4": ("Gemma4Renderer", {}),
    "gemma4-small": ("Gemma4Renderer", {}),
    "gemma4-large": ("Gemma4Renderer", {"emptyBlockOnNothink": True}),
    "functiongemma": ("FunctionGemmaRenderer", {}),
    "glm-4.7": ("GLM47Renderer", {}),
    "glm-ocr": ("GlmOcrRenderer", {}),
    "lfm2": ("LFM2Renderer", {"IsThinking": False}),
    "lfm2-thinking": ("LFM2Renderer", {"IsThinking": True}),
    "laguna": ("LagunaRenderer", {}),
    "poolside-v1": ("LagunaV8Renderer", {}),
    "cohere": ("CohereRenderer", {}),
    "glimmer": ("GlimmerRenderer", {}),
}

# Go's zero values for the settings the tests leave out.
_ZERO = {"isThinking": False, "emitEmptyThinkOnNoThink": False, "variant": 0, "alwaysRenderAssistantThinkBlock": False,
         "IsThinking": False, "Variant": 0, "UseExtendedSystemMessage": False, "v35": False,
         "emptyBlockOnNothink": False}


def _settings(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in ("useImgTags", "currentDate") and v != _ZERO.get(k)}


def build(spec: dict[str, Any]) -> Renderer:
    """The renderer a fixture names: by switch name, by Go constructor, or by Go type and fields."""
    if "name" in spec:
        return renderer_for(spec["name"], img_tags=False)  # Ollama's package tests run without image tags
    if "ctor" in spec:
        name = {"newQwen38Renderer": "qwen3.8", "newOrnithRenderer": "ornith"}[spec["ctor"]]
        return renderer_for(name, img_tags=False)
    fields = spec["fields"]
    img_tags = fields.get("useImgTags", False)
    match spec["type"]:
        case "Qwen3CoderRenderer":
            return Qwen3CoderRenderer()
        case "Qwen3VLRenderer":
            return Qwen3VLRenderer(thinking=fields.get("isThinking", False),
                                   empty_think_on_no_think=fields.get("emitEmptyThinkOnNoThink", False),
                                   img_tags=img_tags)
        case "Qwen35Renderer":
            return Qwen35Renderer(thinking=fields.get("isThinking", False), qwen38=fields.get("variant", 0) == 1,
                                  always_think_block=fields.get("alwaysRenderAssistantThinkBlock", False),
                                  empty_think_on_no_think=fields.get("emitEmptyThinkOnNoThink", False),
                                  img_tags=img_tags)
        case "CogitoRenderer":
            return CogitoRenderer(thinking=fields.get("isThinking", False))
        case "DeepSeek3Renderer":
            return DeepSeek3Renderer(thinking=fields.get("IsThinking", False))
        case "Olmo3Renderer":
            return Olmo3Renderer(extended_system=fields.get("UseExtendedSystemMessage", False))
        case "Olmo3ThinkRenderer":
            return Olmo3ThinkRenderer(model_32b=fields.get("Variant", 0) == 0)
        case "GLM47Renderer":
            return GLM47Renderer()
        case "GlmOcrRenderer":
            return GlmOcrRenderer(img_tags=img_tags)
        case "Nemotron3NanoRenderer":
            return Nemotron3NanoRenderer(v35=fields.get("v35", False))
        case "Gemma4Renderer":
            return Gemma4Renderer(img_tags=img_tags, empty_block_on_no_think=fields.get("emptyBlockOnNothink", False))
        case "FunctionGemmaRenderer":
            return FunctionGemmaRenderer()
        case "LFM2Renderer":
            return LFM2Renderer(thinking=fields.get("IsThinking", False), img_tags=img_tags)
        case "LagunaRenderer":
            return LagunaRenderer()
        case "LagunaV8Renderer":
            return LagunaV8Renderer()
        case "CohereRenderer":
            return CohereRenderer()
        case "GlimmerRenderer":
            return GlimmerRenderer(img_tags=img_tags, current_date=fields.get("currentDate", ""))
    raise AssertionError(f"no renderer for {spec}")


def names_covered(case: dict[str, Any]) -> set[str]:
    spec = case.get("renderer")
    if spec is None:
        return set()
    if "name" in spec:
        return {spec["name"]}
    if "ctor" in spec:
        return {{"newQwen38Renderer": "qwen3.8", "newOrnithRenderer": "ornith"}[spec["ctor"]]}
    settings = _settings(spec["fields"])
    return {name for name, (typ, fields) in SWITCH.items() if typ == spec["type"] and _settings(fields) == settings}


def _identity(value: Any) -> Any:
    return value  # fixtures keep Go's int/float distinction as JSON does (1 vs 1.0)


def _tool(value: Any) -> Any:
    return Tool.from_json(value["$tool"], _identity) if isinstance(value, dict) and "$tool" in value else value


FUNCTIONS = {
    "marshalWithSpaces": lambda value: [marshal_spaced(value)],
    "renderContentWithImageTags": lambda content, count, offset: list(tag_images(content, count, offset)),
    "formatToolCallArgument": lambda value: [format_call_argument(value)],
    "formatToolDefinitionType": lambda types: [format_definition_type(types)],
    "qwen38ReasoningInstructions": lambda think: [qwen38_reasoning_instructions(think)],
    "LeadingBOSForRenderer": lambda name: [leading_bos(name)],
    "lfm2JSON": lambda value: [hf_tojson(value)],
}


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for path in sorted(FIXTURES.glob("*.json")):
        for case in json.loads(path.read_text())["cases"]:
            cases.append((f"{path.stem}:{case['name']}", case))
    return cases


CASES = load_cases()


def run(case: dict[str, Any]) -> list[Any] | Exception:
    """The case's outputs (Go's results in order, less the error), or the error it raised."""
    try:
        if "function" in case:
            return FUNCTIONS[case["function"]](*[_tool(a) for a in case["args"]])
        renderer = build(case["renderer"])
        messages = messages_from_json(case["messages"], _identity)
        tools = tools_from_json(case.get("tools"), _identity)
        return [renderer.render(messages, tools, case.get("think"))]
    except (RenderError, UnknownRendererError) as e:
        return e


def check(outputs: list[Any] | Exception, expect: dict[str, Any]) -> None:
    if "error" in expect:
        assert isinstance(outputs, Exception) == expect["error"], outputs
        return
    if "error_message" in expect:
        assert isinstance(outputs, Exception) and str(outputs) == expect["error_message"], outputs
        return
    assert not isinstance(outputs, Exception), f"unexpected error: {outputs}"
    got = outputs[expect.get("out", 0)]
    for op, want in expect.items():
        match op:
            case "out":
                pass
            case "equals":
                assert got == want
            case "not_equals":
                assert got != want
            case "contains":
                assert want in got
            case "not_contains":
                assert want not in got
            case "startswith":
                assert got.startswith(want)
            case "endswith":
                assert got.endswith(want)
            case "index_le" | "index_lt":
                first, second = (got.find(w) for w in want)
                assert first != -1 and second != -1 and (first <= second if op == "index_le" else first < second)
            case _:
                raise AssertionError(f"unknown check {op}")


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_case(case: dict[str, Any]) -> None:
    outputs = run(case)
    for expect in case["expect"]:
        check(outputs, expect)


def test_every_renderer_name_has_fixtures() -> None:
    assert set(BUILDERS) == set(SWITCH), "pollama's renderer names are Ollama's switch"
    counts = Counter(name for _, case in CASES for name in names_covered(case))
    missing = sorted(name for name in SWITCH if counts[name] == 0)
    assert not missing, f"renderers without fixtures: {missing}"
