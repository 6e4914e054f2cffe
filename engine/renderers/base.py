"""What every renderer shares: the interface, and Ollama's `[img-N]` tagging of images in content."""

from __future__ import annotations

from typing import Protocol

from engine.renderers.api import Message, Tool
from engine.thinkvalue import Think


class RenderError(ValueError):
    """A renderer refused the conversation (Ollama returns these as the request's error)."""


class Renderer(Protocol):
    """A model's prompt format written as code (Ollama's renderers.Renderer)."""

    leading_bos: str  # the BOS text the rendered prompt starts with, if the renderer writes one

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str: ...


def tag_images(content: str, count: int, offset: int) -> tuple[str, int]:
    """Content with `[img-N]` tags for `count` images numbered from `offset`: each `[img]` placeholder takes
    the next tag in turn, the rest go in front (separated by a space from text that does not start with
    whitespace). Content that already has numbered tags is left alone. Returns (content, next offset)."""
    if count == 0:
        return content, offset
    if "[img-" in content:
        return content, offset + count
    prefix = ""
    for i in range(count):
        tag = f"[img-{offset + i}]"
        if "[img]" in content:
            content = content.replace("[img]", tag, 1)
        else:
            prefix += tag
    if prefix and content and not is_space(content[0]) and content[0] != "\ufffd":
        prefix += " "
    return prefix + content, offset + count


def image_content(message: Message, offset: int, img_tags: bool, placeholder: str = "") -> tuple[str, int]:
    """A message's content with its images: as `[img-N]` tags (tag_images), or else as the model's own
    placeholder in front, once per image. Returns (content, next offset)."""
    count = len(message.images)
    if img_tags:
        return tag_images(message.content, count, offset)
    return placeholder * count + message.content, offset + count


# unicode.IsSpace: Python's white space less the ASCII separators \x1c-\x1f, which Go does not count
GO_SPACE = "".join(chr(c) for c in range(0x3000 + 1) if chr(c).isspace() and not 0x1C <= c <= 0x1F)


def trim_space(s: str) -> str:
    """strings.TrimSpace."""
    return s.strip(GO_SPACE)


def is_space(c: str) -> bool:
    return c in GO_SPACE
