"""The interactive chat of `pollama run`: Ollama's prompt, slash commands and multi-line input.

Line editing, history, bracketed paste and Ctrl+G (compose in an editor) come from prompt_toolkit. Ctrl-C
on an empty line says how to leave and clears a half-typed one; Ctrl-D on an empty line leaves; Ctrl-C
during an answer stops it and returns to the prompt (server/cli/session.py).
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from modelstore import gojson
from modelstore.names import parse_name
from server.cli.answer import DEFAULT, GREY
from server.cli.client import Client, CLIError
from server.cli.flags import Parsed
from server.cli.history import OllamaHistory
from server.cli.models import list_models, unload
from server.cli.params import format_params
from server.cli.session import RunOptions, chat, extract_files, file_names, infer_think
from server.cli.show import show_info
from server.envconfig import editor, no_history

USAGE = """Available Commands:
  /set            Set session variables
  /show           Show model information
  /load <model>   Load a session or model
  /save <model>   Save your current session
  /clear          Clear session context
  /bye            Exit
  /?, /help       Help for a command
  /? shortcuts    Help for keyboard shortcuts

Use \"\"\" to begin a multi-line message.
"""
MULTIMODAL_USAGE = "Use /path/to/file to include .jpg, .png, .webp images, or .wav audio files.\n"

USAGE_SET = """Available Commands:
  /set parameter ...     Set a parameter
  /set system <string>   Set system message
  /set history           Enable history
  /set nohistory         Disable history
  /set wordwrap          Enable wordwrap
  /set nowordwrap        Disable wordwrap
  /set format json       Enable JSON mode
  /set noformat          Disable formatting
  /set verbose           Show LLM stats
  /set quiet             Disable LLM stats
  /set think             Enable thinking
  /set nothink           Disable thinking

"""

USAGE_SHORTCUTS = """Available keyboard shortcuts:
  Ctrl + a            Move to the beginning of the line (Home)
  Ctrl + e            Move to the end of the line (End)
   Alt + b            Move back (left) one word
   Alt + f            Move forward (right) one word
  Ctrl + k            Delete the sentence after the cursor
  Ctrl + u            Delete the sentence before the cursor
  Ctrl + w            Delete the word before the cursor

  Ctrl + l            Clear the screen
  Ctrl + g            Open default editor to compose a prompt
  Ctrl + c            Stop the model from responding
  Ctrl + d            Exit ollama (/bye)

"""

USAGE_SHOW = """Available Commands:
  /show info         Show details for this model
  /show license      Show model license
  /show modelfile    Show Modelfile for this model
  /show parameters   Show parameters for this model
  /show system       Show system message
  /show template     Show prompt template

"""

USAGE_PARAMETERS = """Available Parameters:
  /set parameter seed <int>             Random number seed
  /set parameter num_predict <int>      Max number of tokens to predict
  /set parameter top_k <int>            Pick from top k num of tokens
  /set parameter top_p <float>          Pick token based on sum of probabilities
  /set parameter min_p <float>          Pick token based on top token probability * min_p
  /set parameter num_ctx <int>          Set the context size
  /set parameter temperature <float>    Set creativity level
  /set parameter repeat_penalty <float> How strongly to penalize repetitions
  /set parameter repeat_last_n <int>    Set how far back to look for repetitions
  /set parameter num_gpu <int>          The number of layers to send to the GPU
  /set parameter stop <string> <string> ...   Set the stop parameters

"""


class Multiline(Enum):
    NONE = 0
    PROMPT = 1
    SYSTEM = 2


class Interrupted(Exception):
    """Ctrl-C at the prompt; `text` is what was typed."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _err(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _key_bindings() -> KeyBindings:
    keys = KeyBindings()

    @keys.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        event.app.exit(exception=Interrupted(event.current_buffer.text))

    @keys.add("c-g")
    def _edit(event: KeyPressEvent) -> None:
        event.current_buffer.open_in_editor(validate_and_handle=False)

    return keys


def create_request(name: str, opts: RunOptions) -> dict[str, Any]:
    """What `/save NAME` posts to /api/create: the session as a model derived from the one running."""
    parent = opts.parent_model if opts.parent_model and parse_name(opts.parent_model).is_valid() else ""
    request: dict[str, Any] = {"model": name, "from": parent or opts.model}
    if opts.system:
        request["system"] = opts.system
    if opts.options:
        request["parameters"] = opts.options
    messages = [*opts.loaded_messages, *opts.messages]
    if messages:
        request["messages"] = messages
    return request


class Repl:
    def __init__(self, client: Client, opts: RunOptions, think_explicit: bool) -> None:
        self.client, self.opts, self.think_explicit = client, opts, think_explicit
        self.history = OllamaHistory(enabled=not no_history())
        self.alt = False
        self.buffer = ""
        self.multiline = Multiline.NONE
        if os.environ.get("OLLAMA_EDITOR"):
            os.environ["VISUAL"] = editor()  # prompt_toolkit's Ctrl+G editor
        self.session: PromptSession[str] = PromptSession(history=self.history, key_bindings=_key_bindings(),
                                                         enable_open_in_editor=False)

    def read(self) -> str:
        placeholder = "Press Enter to send" if self.alt else "Send a message (/? for help)"
        return self.session.prompt("... " if self.alt else ">>> ",
                                   placeholder=ANSI(GREY + placeholder + DEFAULT))

    def loop(self) -> None:
        while True:
            try:
                line = self.read()
            except EOFError:
                print()
                return
            except Interrupted as e:
                if not e.text:
                    print("\nUse Ctrl + d or /bye to exit.")
                self.alt, self.buffer, self.multiline = False, "", Multiline.NONE
                continue
            except KeyboardInterrupt:
                continue
            if self.handle(line) == "exit":
                return

    def handle(self, line: str) -> str | None:
        opts = self.opts
        if self.multiline is not Multiline.NONE:
            ended = line.endswith('"""')
            self.buffer += line.removesuffix('"""') if ended else line + "\n"
            if not ended:
                self.alt = True
                return None
            if self.multiline is Multiline.SYSTEM:
                opts.system = self.buffer
                opts.messages.append({"role": "system", "content": opts.system})
                print("Set system message.")
                self.buffer = ""
            self.multiline, self.alt = Multiline.NONE, False
        elif line.startswith('"""'):
            rest = line.removeprefix('"""')
            ended = rest.endswith('"""')
            self.buffer += rest.removesuffix('"""') if ended else rest + "\n"
            if not ended:
                self.multiline, self.alt = Multiline.PROMPT, True
        elif line.startswith("/list"):
            list_models(self.client, Parsed(line.split()[1:], {}))
        elif line.startswith("/load"):
            self.load_command(line.split())
            return None
        elif line.startswith("/save"):
            self.save_command(line.split())
            return None
        elif line.startswith("/clear"):
            opts.messages = [{"role": "system", "content": opts.system}] if opts.system else []
            print("Cleared session context")
            return None
        elif line.startswith("/set"):
            if self.set_command(line.split()) == "continue":
                return None
        elif line.startswith("/show"):
            self.show_command(line.split())
        elif line.startswith(("/help", "/?")):
            args = line.split()
            if len(args) > 1:
                if args[1] in ("set", "/set"):
                    _err(USAGE_SET)
                elif args[1] in ("show", "/show"):
                    _err(USAGE_SHOW)
                elif args[1] in ("shortcut", "shortcuts"):
                    _err(USAGE_SHORTCUTS)
            else:
                _err(USAGE + (MULTIMODAL_USAGE if opts.multimodal else "") + "\n")
        elif line.startswith(("/exit", "/bye")):
            return "exit"
        elif line.startswith("/"):
            first = line.split()[0]
            if not (opts.multimodal and any(f.startswith(first) for f in file_names(line))):
                print(f"Unknown command '{first}'. Type /? for help")
                return None
            self.buffer += line
        else:
            self.buffer += line

        if self.buffer and self.multiline is Multiline.NONE:
            self.send()
        return None

    def send(self) -> None:
        opts = self.opts
        message: dict[str, Any] = {"role": "user", "content": self.buffer}
        if opts.multimodal:
            message["content"], images = extract_files(self.buffer)
            if images:
                message["images"] = images
        opts.messages.append(message)
        self.buffer = ""
        try:
            assistant = chat(self.client, opts)
        except CLIError as e:
            if "does not support thinking" in str(e) or "invalid think value" in str(e):
                print(f"error: {e}")
                return
            raise
        if assistant is not None:
            opts.messages.append(assistant)

    def load_command(self, args: list[str]) -> None:
        if len(args) != 2:
            print("Usage:\n  /load <modelname>")
            return
        saved = self.opts.copy()
        opts = self.opts
        opts.model, opts.messages, opts.loaded_messages = args[1], [], []
        print(f"Loading model '{opts.model}'")
        try:
            info = self.client.request("POST", "/api/show", {"model": opts.model})
            opts.apply_show(info)
            opts.think = infer_think([str(c) for c in info.get("capabilities") or []], opts, self.think_explicit)
            unload(self.client, opts.model, opts.keep_alive, opts.think)
        except CLIError as e:
            if "not found" in str(e):
                print(f"Couldn't find model '{opts.model}'")
                self.opts = saved
                return
            if "does not support thinking" in str(e):
                print(f"error: {e}")
                return
            raise

    def save_command(self, args: list[str]) -> None:
        if len(args) != 2:
            print("Usage:\n  /save <modelname>")
            return
        try:
            for _ in self.client.stream("/api/create", create_request(args[1], self.opts)):
                pass
        except CLIError as e:
            if "invalid model name" in str(e):
                print(f"error: The model name '{args[1]}' is invalid")
                return
            raise
        print(f"Created new model '{args[1]}'")

    def set_command(self, args: list[str]) -> str | None:
        opts = self.opts
        if len(args) < 2:
            _err(USAGE_SET)
            return None
        what = args[1]
        if what == "history":
            self.history.enabled = True
        elif what == "nohistory":
            self.history.enabled = False
        elif what in ("wordwrap", "nowordwrap"):
            opts.word_wrap = what == "wordwrap"
            print(f"Set '{what}' mode.")
        elif what in ("verbose", "quiet"):
            opts.verbose = what == "verbose"
            print(f"Set '{what}' mode.")
        elif what in ("think", "nothink"):
            level = args[2] if what == "think" and len(args) > 2 else ""
            opts.think = (level or True) if what == "think" else False
            self.think_explicit = True
            self._warn_without_thinking()
            print(f"Set 'think' mode to '{level}'." if level else f"Set '{what}' mode.")
        elif what == "format":
            if len(args) < 3 or args[2] != "json":
                print("Invalid or missing format. For 'json' mode use '/set format json'")
            else:
                opts.format = args[2]
                print(f"Set format to '{args[2]}' mode.")
        elif what == "noformat":
            opts.format = ""
            print("Disabled format.")
        elif what == "parameter":
            if len(args) < 4:
                _err(USAGE_PARAMETERS)
                return "continue"
            values = args[3:]
            try:
                typed = format_params({args[2]: values})
            except CLIError as e:
                print(f"Couldn't set parameter: {gojson.go_quote(str(e))}")
                return "continue"
            print(f"Set parameter '{args[2]}' to '{', '.join(values)}'")
            opts.options[args[2]] = typed[args[2]]
        elif what == "system":
            return self._set_system(args)
        else:
            print(f"Unknown command '/set {what}'. Type /? for help")
        return None

    def _set_system(self, args: list[str]) -> str:
        opts = self.opts
        if len(args) < 3:
            _err(USAGE_SET)
            return "continue"
        text = " ".join(args[2:])
        if text.startswith('"""'):
            text = text.removeprefix('"""')
            if text.endswith('"""'):
                text = text.removesuffix('"""')
            else:
                self.multiline, self.alt = Multiline.SYSTEM, True
                self.buffer += text
                return "continue"
        self.buffer += text
        opts.system = self.buffer
        message = {"role": "system", "content": self.buffer}
        if opts.messages and opts.messages[-1].get("role") == "system":
            opts.messages[-1] = message
        else:
            opts.messages.append(message)
        print("Set system message.")
        self.buffer = ""
        return "continue"

    def _warn_without_thinking(self) -> None:
        try:
            info = self.client.request("POST", "/api/show", {"model": self.opts.model})
        except CLIError:
            return
        if "thinking" not in (info.get("capabilities") or []):
            _err(f'warning: model "{self.opts.model}" does not support thinking output\n')

    def show_command(self, args: list[str]) -> None:
        opts = self.opts
        if len(args) < 2:
            _err(USAGE_SHOW)
            return
        request: dict[str, Any] = {"name": opts.model}
        if opts.system:
            request["system"] = opts.system
        if opts.options:
            request["options"] = opts.options
        try:
            resp = self.client.request("POST", "/api/show", request)
        except CLIError:
            print("error: couldn't get model")
            raise
        what = args[1]
        if what == "info":
            show_info(resp, False, sys.stderr)
        elif what == "license":
            print(resp.get("license") or "No license was specified for this model.")
        elif what == "modelfile":
            print(resp.get("modelfile", ""))
        elif what == "parameters":
            print("Model defined parameters:")
            if not resp.get("parameters"):
                print("  No additional parameters were specified for this model.")
            else:
                for line in resp["parameters"].split("\n"):
                    print(f"  {line}")
            print()
            if opts.options:
                print("User defined parameters:")
                for key, value in opts.options.items():
                    print(f"  {key:<30} {_go_value(value)}")
                print()
        elif what == "system":
            if opts.system or resp.get("system"):
                print((opts.system or resp["system"]) + "\n")
            else:
                print("No system message was specified for this model.")
        elif what == "template":
            print(resp.get("template") or "No prompt template was specified for this model.")
        else:
            print(f"Unknown command '/show {what}'. Type /? for help")


def _go_value(value: Any) -> str:
    """Go's %v of an option value: lists as `[a b]`, float32 in its short form."""
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    if isinstance(value, gojson.Float32):
        return gojson.float32_repr(value)
    return gojson.go_value(value)


def interact(client: Client, opts: RunOptions, think_explicit: bool) -> None:
    sys.stdout.write("\x1b[?2004h")  # bracketed paste, as Ollama turns it on
    try:
        Repl(client, opts, think_explicit).loop()
    finally:
        sys.stdout.write("\x1b[?2004l")
        sys.stdout.flush()
