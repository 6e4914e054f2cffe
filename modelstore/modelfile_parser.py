"""Modelfile parsing and the create request built from it (Go `parser/parser.go`).

`parse_modelfile` is a port of Ollama's rune-by-rune state machine, so the same text gives the same
commands and the same errors. `Modelfile.create_request` hashes local files the way the `ollama`
CLI does before it uploads them; typing PARAMETER values needs the option table, which lives in
the engine, so the caller passes a `format_params` function.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import pwd
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

COMMANDS = ("from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter",
            "message", "requires")
MESSAGE_ROLES = ("system", "user", "assistant")
DEPRECATED_PARAMETERS = ("penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock",
                         "mirostat", "mirostat_tau", "mirostat_eta")

ERR_MISSING_FROM = "no FROM line"
ERR_INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"'
ERR_INVALID_COMMAND = ('command must be one of "from", "license", "template", "system", "adapter", "draft", '
                       '"renderer", "parser", "parameter", "message", or "requires"')
ERR_UNEXPECTED_EOF = "unexpected EOF"
ERR_MODEL_NOT_FOUND = "no Modelfile or safetensors files found"

_NIL, _NAME, _VALUE, _PARAMETER, _MESSAGE, _COMMENT = range(6)


class ModelfileError(ValueError):
    """A Modelfile that Ollama would refuse, with Ollama's message."""


@dataclass(frozen=True)
class Command:
    name: str  # "model" for FROM, a parameter's own name for PARAMETER, else the lower-case command
    args: str

    def __str__(self) -> str:
        if self.name == "model":
            return f"FROM {self.args}"
        if self.name in ("license", "template", "system", "adapter", "renderer", "parser", "requires", "draft"):
            return f"{self.name.upper()} {quote(self.args)}"
        if self.name == "message":
            role, _, message = self.args.partition(": ")
            return f"MESSAGE {role} {quote(message)}"
        return f"PARAMETER {self.name} {quote(self.args)}"


def quote(value: str) -> str:
    """Go `parser.quote`: quote only values with a newline or a leading/trailing space."""
    if "\n" in value or value.startswith(" ") or value.endswith(" "):
        return f'"""{value}"""' if '"' in value else f'"{value}"'
    return value


def _unquote(value: str) -> tuple[str, bool]:
    if value.startswith('"""'):
        if len(value) >= 6 and value.endswith('"""'):
            return value[3:-3], True
        return "", False
    if value.startswith('"'):
        if len(value) >= 2 and value.endswith('"'):
            return value[1:-1], True
        return "", False
    return value, True


def _is_alpha(ch: str) -> bool:
    return "a" <= ch <= "z" or "A" <= ch <= "Z"


def _is_space(ch: str) -> bool:
    return ch in (" ", "\t")


def _is_newline(ch: str) -> bool:
    return ch in ("\r", "\n")


def _next_state(ch: str, state: int) -> tuple[int, str, str | None]:
    """Go `parseRuneForState`: the next state, the rune to keep ("" for none) and an error."""
    if state == _NIL:
        if ch == "#":
            return _COMMENT, "", None
        if _is_space(ch) or _is_newline(ch):
            return _NIL, "", None
        return _NAME, ch, None
    if state == _NAME:
        if _is_alpha(ch):
            return _NAME, ch, None
        if _is_space(ch):
            return _VALUE, "", None
        return _NIL, "", ERR_INVALID_COMMAND
    if state == _VALUE:
        if _is_newline(ch) or _is_space(ch):
            return _NIL, ch, None
        return _VALUE, ch, None
    if state == _PARAMETER:
        if _is_alpha(ch) or ch.isdigit() and ch.isascii() or ch == "_":
            return _PARAMETER, ch, None
        if _is_space(ch):
            return _VALUE, "", None
        return _NIL, "", ERR_UNEXPECTED_EOF
    if state == _MESSAGE:
        if _is_alpha(ch):
            return _MESSAGE, ch, None
        if _is_space(ch):
            return _VALUE, "", None
        return _NIL, "", ERR_UNEXPECTED_EOF
    # comment
    return (_NIL if _is_newline(ch) else _COMMENT), "", None


def decode_modelfile(data: bytes) -> str:
    """Go's `unicode.BOMOverride(UTF8 decoder)`: a UTF-8 or UTF-16 BOM picks the encoding; invalid
    UTF-8 becomes U+FFFD."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith(codecs.BOM_UTF16_LE):
        return data[2:].decode("utf-16-le", errors="replace")
    if data.startswith(codecs.BOM_UTF16_BE):
        return data[2:].decode("utf-16-be", errors="replace")
    return data.decode("utf-8", errors="replace")


def parse_modelfile(source: str | bytes) -> Modelfile:
    """Parse a Modelfile; raises ModelfileError with Ollama's message (`(line N): …` where it has one)."""
    text = decode_modelfile(source) if isinstance(source, bytes) else source
    commands: list[Command] = []
    state, line = _NIL, 1
    buffer: list[str] = []
    name = role = ""
    for ch in text:
        if _is_newline(ch):
            line += 1
        following, kept, error = _next_state(ch, state)
        if error == ERR_UNEXPECTED_EOF:
            raise ModelfileError(f"{ERR_UNEXPECTED_EOF}: {''.join(buffer)}")
        if error is not None:
            raise ModelfileError(f"(line {line}): {error}")
        if following != state:
            word = "".join(buffer)
            if state == _NAME:
                if word.lower() not in COMMANDS:
                    raise ModelfileError(f"(line {line}): {ERR_INVALID_COMMAND}")
                lowered = word.lower()
                if lowered == "from":
                    name = "model"
                elif lowered == "parameter":
                    following = _PARAMETER
                else:
                    if lowered == "message":
                        following = _MESSAGE
                    name = lowered
            elif state == _PARAMETER:
                name = word
            elif state == _MESSAGE:
                if word not in MESSAGE_ROLES:
                    raise ModelfileError(f"(line {line}): {ERR_INVALID_ROLE}")
                role = word
            elif state == _VALUE:
                value, ok = _unquote(word.strip())
                if not ok or _is_space(kept):
                    # An open quote (or a space inside a value): the value goes on.
                    buffer.append(kept)
                    continue
                if role:
                    value, role = f"{role}: {value}", ""
                commands.append(Command(name, value))
            buffer = []
            state = following
        if kept and kept.isprintable():
            buffer.append(kept)
    if state == _VALUE:
        value, ok = _unquote("".join(buffer).strip())
        if not ok:
            raise ModelfileError(ERR_UNEXPECTED_EOF)
        if role:
            value = f"{role}: {value}"
        commands.append(Command(name, value))
    elif state not in (_NIL, _COMMENT):
        raise ModelfileError(ERR_UNEXPECTED_EOF)
    if not any(command.name == "model" for command in commands):
        raise ModelfileError(ERR_MISSING_FROM)
    return Modelfile(commands)


# --- the create request --------------------------------------------------------------------------

FormatParams = Callable[[dict[str, list[str]]], dict[str, Any]]
HashProgress = Callable[[Path, int], Callable[[int], None] | None]


@dataclass
class CreatePlan:
    """What `ollama create` sends: the request body, plus the local file behind each digest."""

    request: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # local path -> digest (FROM files)
    adapters: dict[str, str] = field(default_factory=dict)
    draft_files: dict[str, str] = field(default_factory=dict)


_SEMVER = re.compile(
    r"v(0|[1-9]\d*)(\.(0|[1-9]\d*))?(\.(0|[1-9]\d*))?"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
)


def _valid_semver(version: str) -> bool:
    """golang.org/x/mod/semver.IsValid: `vMAJOR[.MINOR[.PATCH]]`, prerelease and build only with all three."""
    match = _SEMVER.fullmatch(version)
    if match is None:
        return False
    if (match.group(6) or match.group(8)) and not match.group(4):
        return False
    prerelease = match.group(6)
    if prerelease:
        for ident in prerelease[1:].split("."):
            if ident.isdigit() and len(ident) > 1 and ident.startswith("0"):
                return False
    return True


def expand_path(path: str, relative_dir: str | os.PathLike[str]) -> Path:
    """Go `expandPath`: absolute as is, `~`/`~user` expanded, anything else joined to the Modelfile's directory."""
    if path.startswith(("/", "\\")):
        return Path(os.path.abspath(path))
    if path.startswith("~"):
        if path == "~" or path.startswith("~/"):
            home = os.path.expanduser("~")
            rest = path[1:]
        else:
            user, _, rest = path[1:].partition("/")
            try:
                home = pwd.getpwnam(user).pw_dir
            except KeyError:
                raise ModelfileError(f"failed to find user '{user}': user: unknown user {user}") from None
            rest = "/" + rest if rest else ""
        return Path(os.path.abspath(os.path.join(home, rest.lstrip("/"))))
    return Path(os.path.abspath(os.path.join(relative_dir, path)))


def _sniff(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(512)


def _looks_binary(head: bytes) -> bool:
    """http.DetectContentType's answer for model files is application/octet-stream (or zip) exactly when the
    first bytes hold a control byte text never has."""
    return any(b <= 0x08 or b == 0x0B or 0x0E <= b <= 0x1A or 0x1C <= b <= 0x1F for b in head)


def _glob(directory: Path, pattern: str, binary: bool | None) -> list[Path]:
    """Go filepath.Glob (sorted) with the content check of `filesForModel`."""
    matches = sorted(p for p in directory.glob(pattern) if p.is_file())
    for match in matches:
        if binary is not None and _looks_binary(_sniff(match)) != binary:
            kind = "application/octet-stream" if _looks_binary(_sniff(match)) else "text/plain"
            raise ModelfileError(f"invalid content type: expected {kind} for {match}")
    return matches


def files_for_model(directory: Path) -> list[Path]:
    """Go `filesForModel`: the weights (the first kind found), then config JSON, chat template, tokenizer."""
    files: list[Path] = []
    weights = _glob(directory, "model*.safetensors", None)
    if weights:
        files += weights + _glob(directory, "*/model*.safetensors", None)
    else:
        for pattern, binary in (("consolidated*.safetensors", None), ("pytorch_model*.bin", True),
                                ("consolidated*.pth", True), ("*.gguf", True), ("*.bin", True)):
            try:
                found = _glob(directory, pattern, binary)
            except ModelfileError:
                found = []
            if found:
                files += found
                break
        else:
            raise FileNotFoundError(ERR_MODEL_NOT_FOUND)
    files += _glob(directory, "*.json", False)
    files += _glob(directory, "*/*.json", False)
    files += _glob(directory, "chat_template.jinja", False)
    tokenizer = [p for p in [directory / "tokenizer.model"] if p.is_file()]
    files += tokenizer or sorted(p for p in directory.glob("*/tokenizer.model") if p.is_file())
    return files


def digest_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return "sha256:" + digest.hexdigest()


def file_digest_map(path: Path, hash_progress: HashProgress | None = None) -> dict[str, str]:
    """Go `fileDigestMap`: local path -> digest for a file, or for the model files of a directory.

    Raises FileNotFoundError when `path` does not exist."""
    if path.is_dir():
        files = []
        for file in files_for_model(path):
            real = Path(os.path.realpath(file))
            relative = os.path.relpath(real, path)
            if relative == ".." or relative.startswith("../") or os.path.isabs(relative):
                if ".cache" in relative:
                    raise ModelfileError(f"insecure path: {relative}\n\n"
                                         "Use --local-dir <dir> when downloading model to disable caching")
                raise ModelfileError(f"insecure path: {relative}")
            files.append(real)
    else:
        os.stat(path)  # FileNotFoundError for a missing path
        files = [path]
    digests = {}
    for file in files:
        real = Path(os.path.realpath(file))
        callback = hash_progress(file, real.stat().st_size) if hash_progress is not None else None
        digests[str(file)] = digest_file(real, callback)
    return digests


def _same_path(a: Path, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


@dataclass
class Modelfile:
    commands: list[Command]

    def __str__(self) -> str:
        return "".join(f"{command}\n" for command in self.commands)

    def create_plan(self, relative_dir: str | os.PathLike[str], format_params: FormatParams,
                    hash_progress: HashProgress | None = None,
                    warn: Callable[[str], None] = print) -> CreatePlan:
        """Go `Modelfile.CreateRequest`: FROM paths that exist are hashed into `files` (else `from`),
        ADAPTER/DRAFT files hashed, PARAMETERs typed, LICENSE and MESSAGE collected."""
        request: dict[str, Any] = {}
        plan = CreatePlan(request)
        messages: list[dict[str, str]] = []
        licenses: list[str] = []
        params: dict[str, Any] = {}
        model_paths: list[Path] = []
        draft_paths: list[Path] = []
        for command in self.commands:
            name, args = command.name, command.args
            if name in ("model", "draft", "adapter"):
                path = expand_path(args, relative_dir)
                try:
                    digests = file_digest_map(path, hash_progress)
                except FileNotFoundError as e:
                    if name == "model":
                        request["from"] = args
                        continue
                    raise ModelfileError(f"stat {path}: no such file or directory") from e
                if name == "model":
                    if any(_same_path(path, str(other)) for other in draft_paths):
                        raise ModelfileError(f"DRAFT must not reference the same local path as FROM: {path}")
                    model_paths.append(path)
                    plan.files.update(digests)
                elif name == "draft":
                    if any(_same_path(path, str(other)) for other in model_paths):
                        raise ModelfileError(f"DRAFT must not reference the same local path as FROM: {path}")
                    draft_paths.append(path)
                    plan.draft_files.update(digests)
                else:
                    plan.adapters = digests
            elif name in ("template", "system", "renderer", "parser"):
                request[name] = args
            elif name == "license":
                licenses.append(args)
            elif name == "requires":
                version = args if args.startswith("v") else "v" + args
                if not _valid_semver(version):
                    raise ModelfileError("requires must be a valid semver (e.g. 0.14.0)")
                request["requires"] = version[1:]
            elif name == "message":
                role, _, content = args.partition(": ")
                messages.append({"role": role, "content": content})
            elif name in DEPRECATED_PARAMETERS:
                warn(f"warning: parameter {name} is deprecated")
            else:
                for key, value in format_params({name: [args]}).items():
                    if isinstance(params.get(key), list):
                        params[key] = params[key] + list(value)
                    else:
                        params[key] = value
        if params:
            request["parameters"] = params
        if messages:
            request["messages"] = messages
        if licenses:
            request["license"] = licenses
        return plan


def upload_names(files: dict[str, str]) -> dict[str, str]:
    """Go `createRequestFileNames`: each local path's key in the request, relative to the files'
    common directory (the base name for a single file), with `/` separators."""
    names = {}
    root = _common_root(list(files)) if len(files) >= 2 else None
    for file in files:
        name = os.path.basename(file)
        if root is not None:
            relative = os.path.relpath(os.path.abspath(file), root)
            if relative not in (".", "..") and not relative.startswith("../"):
                name = relative
        names[file] = os.path.normpath(name).replace(os.sep, "/")
    return names


def _common_root(files: list[str]) -> str | None:
    root = ""
    for file in files:
        directory = os.path.dirname(os.path.abspath(file))
        if not root:
            root = directory
            continue
        while True:
            relative = os.path.relpath(directory, root)
            if relative == "." or (relative != ".." and not relative.startswith("../")):
                break
            parent = os.path.dirname(root)
            if parent == root:
                return None
            root = parent
    return root or None


def read_modelfile(f: BinaryIO) -> Modelfile:
    return parse_modelfile(f.read())
