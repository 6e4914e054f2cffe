"""The CLI's pure parts: Ollama's human formats, the table layout, pflag's reading of flags, progress lines."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime, timedelta

import pytest

from server.cli.answer import BOLD, DEFAULT, GREY, AnswerView, WrapState, display
from server.cli.client import CLIError
from server.cli.flags import Flag, UsageError, flag_usages, parse
from server.cli.format import go_duration, human_bytes, human_number, human_time, parse_time
from server.cli.models import processor
from server.cli.progress import Bar, Progress, Spinner
from server.cli.session import extract_files
from server.cli.table import render, wrap

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (1, "1 B"), (999, "999 B"), (1000, "1 KB"), (1500, "1.5 KB"), (999999, "999 KB"),
    (1000000, "1 MB"), (1500000, "1.5 MB"), (999999999, "999 MB"), (1000000000, "1 GB"), (1500000000, "1.5 GB"),
    (999999999999, "999 GB"), (1000000000000, "1 TB"), (1500000000000, "1.5 TB"), (1999999999999, "2.0 TB"),
    (1234, "1.2 KB"), (1234567, "1.2 MB"), (1234567890, "1.2 GB"),
])
def test_human_bytes(size: int, text: str) -> None:  # cases from Ollama's format/bytes_test.go
    assert human_bytes(size) == text


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(hours=48), "2 days from now"), (-timedelta(hours=48), "2 days ago"),
    (timedelta(milliseconds=800), "Less than a second from now"), (timedelta(days=365 * 200), "Forever"),
    (-timedelta(minutes=2, seconds=5), "2 minutes ago"), (timedelta(minutes=4, seconds=59), "4 minutes from now"),
    (-timedelta(seconds=1), "1 second ago"), (-timedelta(seconds=75), "About a minute ago"),
    (-timedelta(minutes=61), "About an hour ago"), (-timedelta(days=20), "2 weeks ago"),
    (-timedelta(days=90), "3 months ago"), (-timedelta(days=800), "2 years ago"),
])
def test_human_time(delta: timedelta, text: str) -> None:
    assert human_time(NOW + delta, "", NOW) == text


def test_times_from_the_api() -> None:
    assert human_time(parse_time("0001-01-01T00:00:00Z"), "Never") == "Never"
    moment = parse_time("2026-06-01T05:00:00.123456789-07:00")
    assert moment == datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (5, "5ns"), (1500, "1.5µs"), (1234567, "1.234567ms"), (1_500_000_000, "1.5s"),
    (123_456_789_012, "2m3.456789012s"), (3_723_000_000_001, "1h2m3.000000001s"), (-2_000_000_000, "-2s"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_human_number() -> None:
    assert [human_number(n) for n in (134_515_008, 8_000_000_000, 7_600_000_000, 567_000, 12)] == \
        ["134.52M", "8B", "7.6B", "567K", "12"]


@pytest.mark.parametrize(("size", "vram", "text"), [
    (100, 0, "100% CPU"), (100, 100, "100% GPU"), (100, 52, "48%/52% CPU/GPU"), (100, 150, "Unknown"),
])
def test_processor(size: int, vram: int, text: str) -> None:
    assert processor(size, vram) == text


def test_table_layout() -> None:
    """tablewriter as Ollama sets it up: each cell padded and followed by 4 spaces; the header's last by 1."""
    text = render([["smollm2:135m", "765525e6017a", "98 MB", "2 minutes ago"],
                   ["a:latest", "0123456789ab", "1.5 GB", "Less than a second ago"]],
                  ["NAME", "ID", "SIZE", "MODIFIED"])
    assert text.splitlines() == [
        "NAME            ID              SIZE      MODIFIED" + " " * 14 + " ",
        "smollm2:135m    765525e6017a    98 MB     2 minutes ago             ",
        "a:latest        0123456789ab    1.5 GB    Less than a second ago    ",
    ]
    assert render([], ["NAME", "ID"]) == "NAME    ID \n"


def test_table_wraps_long_cells() -> None:
    assert wrap("the quick brown fox jumps over the lazy dog", 10) == ["the quick", "brown fox", "jumps over",
                                                                     "the lazy", "dog"]
    text = render([["", "key", "a b c d e f g h i j k l m n o p q r s t u v w x y z"]])
    assert text.splitlines() == ["    key    a b c d e f g h i j k l m n o    ",
                                 "  " + "    " + "   " + "    " + "p q r s t u v w x y z" + " " * 8 + "    "]


def test_pflag_rules() -> None:
    flags = [Flag("think", "Enable thinking", str, no_opt_default="true"), Flag("truncate", "Truncate"),
             Flag("dimensions", "", int), Flag("file", "", str, short="f"), Flag("verbose", "", short="v")]
    parsed = parse(flags, ["m", "--think", "a prompt", "--truncate=false", "--dimensions", "3", "-fModelfile", "-v"])
    assert parsed.args == ["m", "a prompt"]
    assert (parsed["think"], parsed["truncate"], parsed["dimensions"], parsed["file"], parsed["verbose"]) == \
        ("true", False, 3, "Modelfile", True)
    assert parsed.changed == {"think", "truncate", "dimensions", "file", "verbose"}
    assert parse(flags, ["--think=high", "--", "--verbose"]).args == ["--verbose"]
    for argv, message in ((["--nope"], "unknown flag: --nope"), (["-x"], "unknown shorthand flag: 'x' in -x"),
                          (["--file"], "flag needs an argument: --file"),
                          (["--truncate=maybe"], 'invalid argument "maybe" for "--truncate" flag: '
                                                 'strconv.ParseBool: parsing "maybe": invalid syntax')):
        with pytest.raises(UsageError) as e:
            parse(flags, argv)
        assert str(e.value) == message
    assert flag_usages(flags[:2], "run").splitlines() == [
        '      --think string[="true"]   Enable thinking', "      --truncate                Truncate"]


def test_bar_text() -> None:
    bar = Bar("pulling 2af3b81862c6:", 98_000_000, 0)
    bar.set(44_000_000)
    line = bar.render(100)
    assert line.startswith("pulling 2af3b81862c6:  45% ▕") and line.endswith("▏  44 MB/ 98 MB" + " " * 18)
    assert len(line) == 99  # Go measures the bar's edges in bytes: one column short of the width
    bar.set(98_000_000)
    assert bar.render(80).startswith("pulling 2af3b81862c6: 100% ▕█")
    assert bar.plain() == f"pulling 2af3b81862c6: 100% ▕{'█' * 25}▏ 98 MB/98 MB"


def test_plain_progress_lines() -> None:
    """Off a terminal: each status once (and again if it changes), each bar once it is complete."""
    out = io.StringIO()
    progress = Progress(out)
    progress.add(Spinner("pulling manifest"))
    bar = Bar("pulling abc:", 10, 0)
    progress.add(bar)
    bar.set(5)
    progress.update()
    bar.set(10)
    progress.update()
    progress.add(Spinner("success"))
    progress.stop()
    assert out.getvalue().splitlines() == ["pulling manifest", f"pulling abc: 100% ▕{'█' * 25}▏ 10 B/10 B", "success"]


def test_image_paths_in_a_message_are_attached(tmp_path, capsys) -> None:
    """Paths to images in a message (plain, quoted or with escaped spaces) are read, encoded and removed."""
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    (tmp_path / "my cat.png").write_bytes(png)
    (tmp_path / "dog.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 32)
    (tmp_path / "notes.png").write_text("not an image")
    escaped = str(tmp_path / "my cat.png").replace(" ", "\\ ")
    text, images = extract_files(f"What is in {escaped} and '{tmp_path / 'dog.jpg'}'? Not /nowhere/x.png")
    assert text == "What is in  and ? Not /nowhere/x.png"
    assert [base64.b64decode(i)[:4] for i in images] == [png[:4], b"\xff\xd8\xff\xe0"]
    assert capsys.readouterr().err.splitlines() == [f"Added image '{tmp_path / 'my cat.png'}'",
                                                    f"Added image '{tmp_path / 'dog.jpg'}'"]
    with pytest.raises(CLIError, match="invalid file type: text/plain; charset=utf-8"):
        extract_files(f"see {tmp_path / 'notes.png'}")


def test_thinking_is_shown_and_can_be_hidden(capsys) -> None:
    view = AnswerView(word_wrap=False, hide_thinking=False, plain=True)
    view.show("Let me see.", "", None, True)
    view.show("", "Blue.", None, True)
    assert capsys.readouterr().out == "Thinking...\nLet me see.\n...done thinking.\n\nBlue."
    view = AnswerView(word_wrap=False, hide_thinking=False, plain=False)
    view.show("Hm.\n", "", None, True)
    view.show("", "Ok", None, True)
    assert capsys.readouterr().out == (f"{GREY}{BOLD}Thinking...\n{DEFAULT}{GREY}Hm.\n"
                                       f"{GREY}{BOLD}...done thinking.\n\n{DEFAULT}Ok")
    hidden = AnswerView(word_wrap=False, hide_thinking=True, plain=True)
    hidden.show("secret", "", None, True)
    hidden.show("", "Blue.", [{"function": {"name": "f", "arguments": {"b": 1, "a": "<x>"}}}], True)
    assert capsys.readouterr().out == ("  Model called a non-existent function 'f()' with arguments: "
                                       '{"a":"\\u003cx\\u003e","b":1}Blue.')
    assert hidden.thinking == "" and hidden.content == "Blue."


def test_word_wrap_moves_the_last_word_to_a_new_line() -> None:
    """At 80 columns a line is broken before column 75: the partial word is erased and rewritten below."""
    out = io.StringIO()
    state = WrapState()
    words = " ".join(f"word{i:02d}" for i in range(12))  # 12 words of 6 letters: 83 columns
    display(words, True, state, out)
    first, second = out.getvalue().split("\x1b[K\n")
    assert first == " ".join(f"word{i:02d}" for i in range(10)) + " word1\x1b[5D"
    assert second == "word10 word11"
    plain = io.StringIO()
    display(words, False, WrapState(), plain)
    assert plain.getvalue() == words
