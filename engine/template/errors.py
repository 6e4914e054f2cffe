"""Errors raised while parsing or executing a template, worded like Go's text/template."""


class TemplateError(Exception):
    """A template failed to parse, or (as ExecError) to execute. str(e) reads like Go's error text."""


class ExecError(TemplateError):
    """Execution failed, e.g.
    `template: :1:3: executing "" at <.X.Y>: can't evaluate field Y in type string`."""


class FuncError(Exception):
    """Raised by a template function; the executor rewraps it as `error calling <name>: <message>`."""
