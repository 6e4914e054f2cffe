"""Prompt assembly: which template renders a model's prompts, and fitting chat history into num_ctx."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from engine.template import DEFAULT_TEMPLATE, Template, Values, render_jinja

Tokenize = Callable[[str], Awaitable[list[int]]]


@dataclass
class PromptTemplate:
    """A model's Go TEMPLATE, or failing that its GGUF Jinja chat template, or `{{ .Prompt }}`."""

    go: Template | None = None
    jinja: str | None = None
    bos_token: str = ""
    eos_token: str = ""

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
               think: bool | None = None, think_level: str = "") -> str:
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
) -> str:
    """Ollama's chatPrompt: drop the oldest non-system messages until the prompt fits in num_ctx.
    System messages are always kept (moved to the front) and so is the last message."""

    def render(start: int) -> str:
        kept_system = [m for m in messages[:start] if m.get("role") == "system"]
        return template.render(kept_system + messages[start:], tools, think, think_level)

    if not truncate or not messages:
        return render(0)
    last = len(messages) - 1
    for start in range(last + 1):
        prompt = render(start)
        if start == last or len(await tokenize(prompt)) <= num_ctx:
            return prompt
    return render(last)
