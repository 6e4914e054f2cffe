"""Rendering a GGUF's Hugging Face (Jinja) chat template, set up the way transformers'
apply_chat_template does: sandboxed, trim_blocks/lstrip_blocks, loop controls, raise_exception,
strftime_now and a tojson filter that keeps non-ASCII characters."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.template.errors import TemplateError


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    # Jinja's own tojson escapes HTML characters; chat templates expect plain json.dumps.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


@functools.lru_cache(maxsize=32)
def _compile(chat_template: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(chat_template)


def render_jinja(chat_template: str, messages: list[dict], *, tools: list[dict] | None = None,
                 add_generation_prompt: bool = True, bos_token: str = "", eos_token: str = "",
                 **extra: Any) -> str:
    """Render a Jinja chat template; raises TemplateError when it fails to compile or render
    (including sandbox violations and the template's own raise_exception)."""
    try:
        return _compile(chat_template).render(messages=messages, tools=tools,
                                              add_generation_prompt=add_generation_prompt,
                                              bos_token=bos_token, eos_token=eos_token, **extra)
    except jinja2.exceptions.TemplateError as e:
        raise TemplateError(f"chat template: {e}") from e
