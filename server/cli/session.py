"""A `pollama run` session: its options, the files a message names, and one answer at a time.

Ctrl-C stops a generation: the request is closed, which stops it on the server.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.cli.answer import AnswerView, summary
from server.cli.client import Client, CLIError
from server.cli.format import go_duration
from server.cli.progress import Progress, Spinner
from server.envconfig import DurationError, parse_go_duration

THINK_LEVELS = ("high", "medium", "low", "max")


@dataclass
class RunOptions:
    model: str
    parent_model: str = ""
    loaded_messages: list[dict[str, Any]] = field(default_factory=list)
    prompt: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    word_wrap: bool = True
    format: str = ""
    system: str = ""
    images: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    multimodal: bool = False
    keep_alive: str | int | None = None
    think: bool | str | None = None
    hide_thinking: bool = False
    verbose: bool = False

    def copy(self) -> RunOptions:
        return copy.deepcopy(self)

    def apply_show(self, info: dict[str, Any]) -> None:
        self.parent_model = (info.get("details") or {}).get("parent_model", "")
        self.loaded_messages = list(info.get("messages") or [])


def parse_think(value: str) -> bool | str:
    if value in ("", "true"):
        return True
    if value == "false":
        return False
    if value in THINK_LEVELS:
        return value
    raise CLIError(f'invalid value for --think: "{value}" (must be true, false, high, medium, low, or max)')


def infer_think(capabilities: list[str], opts: RunOptions, explicit: bool) -> bool | str | None:
    """A think value the user chose stays; otherwise thinking is on for a model that can think, else unset."""
    if explicit:
        return opts.think
    return True if "thinking" in capabilities else None


def keep_alive_value(text: str) -> str | int:
    """The --keepalive flag as Ollama sends it: Go's duration text, or -1 for a negative one (forever)."""
    try:
        seconds = parse_go_duration(text)
    except DurationError as e:
        raise CLIError(str(e)) from None
    return -1 if seconds < 0 else go_duration(round(seconds * 1e9))


def format_value(text: str) -> Any:
    if text == "json":
        return "json"
    try:
        return json.loads(text)
    except ValueError:
        raise CLIError(f"json: error calling MarshalJSON for type json.RawMessage: invalid format {text!r}") from None


# --- images and audio named in a message --------------------------------------------------------------

_FILE_PATH = re.compile(r"(?:[a-zA-Z]:)?(?:\./|/|\\)[\S\\ ]+?\.(?i:jpg|jpeg|png|webp|wav)\b")
_UNESCAPES = [("\\ ", " "), ("\\(", "("), ("\\)", ")"), ("\\[", "["), ("\\]", "]"), ("\\{", "{"), ("\\}", "}"),
              ("\\$", "$"), ("\\&", "&"), ("\\;", ";"), ("\\'", "'"), ("\\\\", "\\"), ("\\*", "*"), ("\\?", "?"),
              ("\\~", "~")]
MAX_FILE_SIZE = 100 * 1024 * 1024


def file_names(text: str) -> list[str]:
    return _FILE_PATH.findall(text)


def _unescape(path: str) -> str:
    out, i = [], 0
    while i < len(path):
        for escaped, plain in _UNESCAPES:
            if path.startswith(escaped, i):
                out.append(plain)
                i += len(escaped)
                break
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def _content_type(head: bytes) -> str:
    """The types Ollama accepts, sniffed as Go's http.DetectContentType does."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:14] == b"WEBPVP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wave"
    try:
        head.decode("utf-8")
        return "text/plain; charset=utf-8"
    except UnicodeDecodeError:
        return "application/octet-stream"


def _file_data(path: str) -> bytes:
    with open(path, "rb") as f:
        kind = _content_type(f.read(512))
        if kind not in ("image/jpeg", "image/png", "image/webp", "audio/wave"):
            raise CLIError(f"invalid file type: {kind}")
        if Path(path).stat().st_size > MAX_FILE_SIZE:
            raise CLIError("file size exceeds maximum limit (100MB)")
        f.seek(0)
        return f.read()


def extract_files(text: str) -> tuple[str, list[str]]:
    """Take the image/audio paths out of a message: (the text left, the files base64-encoded)."""
    images = []
    for found in file_names(text):
        path = _unescape(found)
        try:
            data = _file_data(path)
        except FileNotFoundError:
            continue
        except (OSError, CLIError) as e:
            print(f"Couldn't process file: {str(e)!r}", file=sys.stderr)
            raise
        kind = "audio" if path.lower().endswith(".wav") else "image"
        print(f"Added {kind} '{path}'", file=sys.stderr)
        text = text.replace(f"'{path}'", "").replace(f"'{found}'", "").replace(found, "")
        images.append(base64.b64encode(data).decode())
    return text.strip(), images


# --- one answer ---------------------------------------------------------------------------------------


def _stream_answer(client: Client, path: str, body: dict[str, Any], opts: RunOptions,
                   plain: bool) -> tuple[AnswerView, dict[str, Any] | None, bool]:
    """Stream one answer with a spinner until it starts; (view, last chunk, finished without Ctrl-C)."""
    progress = Progress()
    progress.add(Spinner(""))
    view = AnswerView(opts.word_wrap, opts.hide_thinking, plain)
    latest = None
    stream = client.stream(path, body)
    try:
        for chunk in stream:
            latest = chunk
            message = chunk.get("message") or {}
            content = message.get("content", "") if path == "/api/chat" else chunk.get("response", "")
            thinking = message.get("thinking", "") if path == "/api/chat" else chunk.get("thinking", "")
            tool_calls = message.get("tool_calls") if path == "/api/chat" else chunk.get("tool_calls")
            if content or not opts.hide_thinking:
                progress.stop_and_clear()
            view.show(thinking or "", content or "", tool_calls, tool_calls_first=path == "/api/chat")
    except KeyboardInterrupt:
        stream.close()  # closes the request: the server stops generating
        return view, latest, False
    finally:
        progress.stop_and_clear()
    return view, latest, True


def generate(client: Client, opts: RunOptions) -> None:
    """`run MODEL PROMPT` and piped input: /api/generate, printed as it streams."""
    if opts.multimodal:
        opts.prompt, opts.images = extract_files(opts.prompt)
    body: dict[str, Any] = {"model": opts.model, "prompt": opts.prompt, "context": []}
    if opts.images:
        body["images"] = opts.images
    if opts.format:
        body["format"] = format_value(opts.format)
    if opts.system:
        body["system"] = opts.system
    if opts.options:
        body["options"] = opts.options
    if opts.keep_alive is not None:
        body["keep_alive"] = opts.keep_alive
    if opts.think is not None:
        body["think"] = opts.think
    _, latest, finished = _stream_answer(client, "/api/generate", body, opts, plain=not sys.stdout.isatty())
    if not finished:
        return
    if opts.prompt:
        sys.stdout.write("\n\n")
        sys.stdout.flush()
    if latest and latest.get("done") and opts.verbose:
        summary(latest)


def chat(client: Client, opts: RunOptions) -> dict[str, Any] | None:
    """One turn of the interactive chat; the assistant's message, or None when Ctrl-C stopped it."""
    body: dict[str, Any] = {"model": opts.model, "messages": opts.messages}
    if opts.format:
        body["format"] = format_value(opts.format)
    if opts.options:
        body["options"] = opts.options
    if opts.think is not None:
        body["think"] = opts.think
    if opts.keep_alive is not None:
        body["keep_alive"] = opts.keep_alive
    view, latest, finished = _stream_answer(client, "/api/chat", body, opts, plain=False)
    if not finished:
        if view.shown_anything:
            sys.stdout.write("\n")
        return None
    if opts.messages:
        sys.stdout.write("\n\n")
        sys.stdout.flush()
    if opts.verbose and latest:
        summary(latest)
    role = ((latest or {}).get("message") or {}).get("role") or "assistant"
    return {"role": role, "thinking": view.thinking, "content": view.content}
