"""Prompt assembly: which template renders a model's prompts, and fitting chat history into num_ctx."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from engine.renderers import Renderer, messages_from_json, renderer_for, tools_from_json
from engine.template import DEFAULT_TEMPLATE, Template, Values, render_jinja

Tokenize = Callable[[str], Awaitable[list[int]]]


@dataclass
class PromptTemplate:
    """A model's built-in renderer (its config's `renderer`), else its Go TEMPLATE, else its GGUF Jinja chat
    template, else `{{ .Prompt }}`. A renderer model keeps its Go template for suffix (insert) prompts."""

    go: Template | None = None
    jinja: str | None = None
    bos_token: str = ""
    eos_token: str = ""
    renderer: Renderer | None = None

    @classmethod
    def for_renderer(cls, name: str, go_template: str | None) -> PromptTemplate:
        """Raises UnknownRendererError for a name Ollama does not know."""
        return cls(go=Template.parse(go_template if go_template is not None else DEFAULT_TEMPLATE),
                   renderer=renderer_for(name))

    @property
    def leading_bos(self) -> str:
        return self.renderer.leading_bos if self.renderer is not None else ""

    @classmethod
    def for_model(
        cls, go_template: str | None, jinja: str | None, bos_token: str = "", eos_token: str = ""
    ) -> PromptTemplate:
        if go_template is not None:
            return cls(go=Template.parse(go_template))
        if jinja:
            return cls(jinja=jinja, bos_token=bos_token, eos_token=eos_token)
        return cls(go=Template.parse(DEFAULT_TEMPLATE))

    def uses(self, name: str) -> bool:
        if self.go is not None:
            return self.go.uses(name)
        return False

    def render(self, messages: list[dict[str, Any]], tools: list[dict] | None = None,
               think: bool | None = None, think_level: str = "", think_value: bool | str | None = None) -> str:
        """`think_value` is the request's think as sent (a renderer tells `true` from `"medium"`)."""
        if self.renderer is not None:
            return self.renderer.render(messages_from_json(messages), tools_from_json(tools), think_value)
        if self.go is not None:
            return self.go.execute(Values(messages=messages, tools=tools or [], think=think, think_level=think_level))
        extra: dict[str, Any] = {}
        if think is not None:
            extra["enable_thinking"] = think
        return render_jinja(self.jinja or "", messages, tools=tools or None, add_generation_prompt=True,
                            bos_token=self.bos_token, eos_token=self.eos_token, **extra)

    def render_suffix(self, prompt: str, suffix: str) -> str:
        assert self.go is not None
        return self.go.execute(Values(prompt=prompt, suffix=suffix))


IMAGE_TOKENS = 768  # what a CLIP image is assumed to cost when fitting history into the context


@dataclass
class ChatPrompt:
    text: str
    images: list[bytes]  # in the order of their `[img-N]` markers in the text


def tag_images(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Ollama's imageTaggedMessages: image k (counted over these messages) becomes the marker `[img-k]`,
    replacing the first `[img]` of its message's content or else put in front of it."""
    tagged: list[dict[str, Any]] = []
    images: list[bytes] = []
    for message in messages:
        message_images = message.get("images") or []
        if not message_images:
            tagged.append(message)
            continue
        prefix = ""
        content = message.get("content") or ""
        for image in message_images:
            marker = f"[img-{len(images)}]"
            images.append(image)
            if "[img]" in content:
                content = content.replace("[img]", marker, 1)
            else:
                prefix += marker
        tagged.append({**message, "content": prefix + content})
    return tagged, images


async def chat_prompt(
    template: PromptTemplate,
    messages: list[dict[str, Any]],
    *,
    tokenize: Tokenize,
    num_ctx: int,
    truncate: bool = True,
    tools: list[dict] | None = None,
    think: bool | None = None,
    think_level: str = "",
    think_value: bool | str | None = None,
    count_images: bool = False,
) -> ChatPrompt:
    """Ollama's chatPrompt: drop the oldest non-system messages until the prompt fits in num_ctx.
    System messages are always kept (moved to the front) and so is the last message. With
    `count_images` (the model has a projector) each image counts as IMAGE_TOKENS tokens. Images of
    the kept messages are then marked `[img-N]` in their content and returned in order.

    Dropping messages only shortens the prompt, so the first message kept is found by a search from the
    end (doubling steps, then halving): O(log k) renders of at most 2k messages when k fit, where Ollama
    renders once per message dropped (quadratic: minutes for a few thousand messages)."""

    def kept_system(start: int) -> list[dict[str, Any]]:
        return [m for m in messages[:start] if m.get("role") == "system"]

    async def fits(start: int) -> bool:
        prompt = template.render(kept_system(start) + messages[start:], tools, think, think_level, think_value)
        cost = len(await tokenize(prompt))
        if count_images:
            cost += IMAGE_TOKENS * sum(len(m.get("images") or []) for m in messages[start:])
        return cost <= num_ctx

    start = 0
    if truncate and len(messages) > 1 and not await fits(0):
        start = await _first_fitting(len(messages) - 1, fits)
    if template.renderer is not None:
        kept = messages[start:]
        images = [image for m in kept for image in m.get("images") or []]
        return ChatPrompt(template.render(kept_system(start) + kept, tools, think, think_level, think_value), images)
    tagged, images = tag_images(messages[start:])
    return ChatPrompt(template.render(kept_system(start) + tagged, tools, think, think_level, think_value), images)


async def _first_fitting(last: int, fits: Callable[[int], Awaitable[bool]]) -> int:
    """The smallest start in (0, last] for which `fits` holds, `fits` being monotone (false at 0), or
    `last` when none does (the last message is kept whatever it costs)."""
    fitting, step = last, 1
    while fitting - step > 0 and await fits(fitting - step):
        fitting -= step
        step *= 2
    failing = max(fitting - step, 0)  # fits(failing) is false (checked, or it is 0)
    while fitting - failing > 1:
        middle = (fitting + failing) // 2
        if await fits(middle):
            fitting = middle
        else:
            failing = middle
    return fitting
