"""`pollama run` in a real pseudo-terminal, typed into as a person would (pexpect)."""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pexpect
import pytest

from tests.cli.conftest import cli_env
from tests.conftest import REPO, Server

PROMPT = "Send a message"
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


def _default_interrupt() -> None:
    """A terminal's program hears Ctrl-C even when the test suite was started in the background: bash gives a
    background job's processes SIGINT ignored, and a child keeps an ignored signal ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    def __init__(self, server: Server, home: Path, *args: str) -> None:
        self.log = home / "pty.log"
        self.child = pexpect.spawn(sys.executable, ["-m", "server.cli", "run", *args], cwd=str(REPO),
                                   # pexpect answers no cursor-position requests, which a real terminal does
                                   env=cli_env(server, home, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1"),
                                   encoding="utf-8",
                                   timeout=300, dimensions=(40, 100), preexec_fn=_default_interrupt)
        self.child.logfile_read = self.log.open("a")

    def expect(self, pattern: str) -> str:
        self.child.expect(pattern)
        return ANSI.sub("", self.child.before or "")

    def prompt(self) -> str:
        """Wait for the empty prompt; what was shown before it, without terminal escapes."""
        return self.expect(PROMPT)

    def say(self, line: str) -> str:
        self.child.sendline(line)
        return self.prompt()

    def close(self) -> int:
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def terminal(shared_server: Server, home: Path, short_model: str) -> Iterator[Terminal]:
    term = Terminal(shared_server, home, short_model)
    term.prompt()
    yield term
    if term.child.isalive():
        term.child.terminate(force=True)


def test_a_streamed_answer_a_multiline_message_and_bye(terminal: Terminal, home: Path) -> None:
    answer = terminal.say("Name a color.")
    assert answer.strip()  # streamed onto the terminal, then the prompt again
    terminal.child.sendline('"""Name a')
    terminal.expect("Press Enter to send")  # the alternate prompt of a multi-line message
    terminal.child.sendline('color."""')
    assert terminal.prompt().strip()
    terminal.child.sendline("/bye")
    assert terminal.close() == 0
    history = (home / ".ollama" / "history").read_text().splitlines()
    assert history == ["Name a color.", '"""Name a', 'color."""', "/bye"]


def test_set_parameter_takes_effect_and_verbose_shows_the_rates(terminal: Terminal) -> None:
    assert "Set parameter 'num_predict' to '3'" in terminal.say("/set parameter num_predict 3")
    assert "Set 'verbose' mode." in terminal.say("/set verbose")
    shown = terminal.say("Write a poem about the sea.")
    assert re.search(r"eval count: +3 token\(s\)", shown), shown
    assert re.search(r"prompt eval rate: +\d+\.\d\d tokens/s", shown) and re.search(r"\neval rate: +\d+\.\d\d", shown)
    assert "Couldn't set parameter: \"unknown parameter 'nope'\"" in terminal.say("/set parameter nope 1")
    terminal.child.sendeof()  # Ctrl-D on an empty line leaves
    assert terminal.close() == 0


def test_save_then_load_keeps_the_conversation(terminal: Terminal, shared_server: Server, home: Path) -> None:
    terminal.say("My name is Ada.")
    assert "Created new model 'h14-session'" in terminal.say("/save h14-session")
    assert "Loading model 'h14-session'" in terminal.say("/load h14-session")
    assert "Created new model 'h14-session2'" in terminal.say("/save h14-session2")
    terminal.child.sendline("/bye")
    terminal.close()
    shown = httpx.post(f"{shared_server.url}/api/show", json={"model": "h14-session2"}, timeout=60).json()
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
    assert shown["messages"][0]["content"] == "My name is Ada."
    # Running the saved session shows the conversation first.
    again = Terminal(shared_server, home, "h14-session2")
    replayed = again.prompt()
    assert ">>> My name is Ada." in replayed and shown["messages"][1]["content"].strip()[:20] in replayed
    again.child.sendline("/bye")
    again.close()
    for name in ("h14-session", "h14-session2"):
        httpx.request("DELETE", f"{shared_server.url}/api/delete", json={"model": name}, timeout=60)


def test_ctrl_c_stops_an_answer_and_returns_to_the_prompt(terminal: Terminal, shared_server: Server) -> None:
    terminal.say("/set parameter num_predict 2000")
    # No three words in a row in the message: the terminal may show it again as the line is accepted, and
    # three words must be the answer's (Ctrl-C before the answer starts reaches the line editor instead).
    terminal.child.sendline("Essay, history: Rome, long.")
    terminal.child.expect(r"long\.[^\n]*\n")  # the message is sent
    terminal.child.expect(r"[A-Za-z]+ [A-Za-z]+ [A-Za-z]+")  # the answer has begun
    terminal.child.sendintr()
    terminal.prompt()
    terminal.child.sendintr()  # Ctrl-C on an empty line says how to leave, and stays
    terminal.expect("Use Ctrl \\+ d or /bye to exit.")
    terminal.prompt()
    terminal.say("/set parameter num_predict 2")
    assert terminal.say("Hi").strip()  # the chat goes on
    terminal.say("/save h14-stopped")
    terminal.child.sendline("/bye")
    assert terminal.close() == 0
    # The stopped answer was dropped from the conversation, as Ollama drops it; the next one was kept.
    shown = httpx.post(f"{shared_server.url}/api/show", json={"model": "h14-stopped"}, timeout=60).json()
    assert [m["role"] for m in shown["messages"]] == ["user", "user", "assistant"]
    httpx.request("DELETE", f"{shared_server.url}/api/delete", json={"model": "h14-stopped"}, timeout=60)


def test_help_and_show(terminal: Terminal) -> None:
    terminal.child.sendline("/?")
    assert "/set            Set session variables" in terminal.prompt()
    assert "Set system message." in terminal.say("/set system You are terse.")
    assert "You are terse." in terminal.say("/show system")
    assert "temperature" in terminal.say("/show parameters")
    info = terminal.say("/show info")
    assert "  Model" in info and "architecture" in info
    assert "Unknown command '/nope'. Type /? for help" in terminal.say("/nope")
    assert "Cleared session context" in terminal.say("/clear")
    terminal.child.sendline("/bye")
    assert terminal.close() == 0
