"""Prompt templates: a Go text/template engine with Ollama's data shapes and functions, Ollama's
named-template detection, and Hugging Face (Jinja) chat-template rendering."""

from engine.template.errors import ExecError, TemplateError
from engine.template.jinja import render_jinja
from engine.template.named import NamedTemplate, named_template
from engine.template.ollama import DEFAULT_TEMPLATE, Template, Values

__all__ = [
    "DEFAULT_TEMPLATE",
    "ExecError",
    "NamedTemplate",
    "Template",
    "TemplateError",
    "Values",
    "named_template",
    "render_jinja",
]
