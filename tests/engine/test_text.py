"""TextStream on its own: UTF-8 boundaries and stop strings, without a model."""

from __future__ import annotations

from engine.runner.text import TextStream


def feed(stream: TextStream, pieces: list[bytes]) -> list[str]:
    return [stream.push(piece) for piece in pieces]


def test_without_stops_text_passes_straight_through() -> None:
    assert feed(TextStream([]), [b"Hello", b" world"]) == ["Hello", " world"]


def test_a_character_split_across_tokens_is_emitted_whole() -> None:
    dragon = "🐉".encode()
    stream = TextStream([])
    assert feed(stream, [b"a" + dragon[:1], dragon[1:3], dragon[3:] + b"b"]) == ["a", "", "🐉b"]


def test_an_incomplete_character_at_the_end_is_dropped() -> None:
    stream = TextStream([])
    assert stream.push(b"x" + "é".encode()[:1]) == "x"
    assert stream.flush() == ""


def test_a_possible_stop_prefix_is_held_then_released() -> None:
    stream = TextStream(["STOP"])
    assert feed(stream, [b"go ", b"ST", b"OR", b"E"]) == ["go ", "", "STOR", "E"]
    assert not stream.stopped


def test_a_stop_split_across_tokens_cuts_the_text() -> None:
    stream = TextStream(["\n\nUser:"])
    assert feed(stream, [b"Fine.", b"\n", b"\nUs", b"er: hi"]) == ["Fine.", "", "", ""]
    assert stream.stopped
    assert stream.tokens_after_stop == 3  # "\n", "\nUs", "er: hi" lie wholly after the cut
    assert stream.flush() == ""


def test_stops_are_checked_in_the_order_given() -> None:
    stream = TextStream(["cat", "a"])
    assert stream.push(b"the cat") == "the "  # "cat" is first in the list, although "a" would cut earlier
    assert stream.stopped


def test_held_text_is_flushed_when_the_stream_ends() -> None:
    stream = TextStream(["STOP"])
    assert feed(stream, [b"ok S", b"T"]) == ["ok ", ""]
    assert stream.flush() == "ST"
