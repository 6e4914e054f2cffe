"""The daemon-runner frames: what goes in comes out, whichever encoding a message gets."""

from __future__ import annotations

import pytest

from engine.protocol import FRAME_HEADER, Done, Failure, Reply, Token, decode_body, encode_frame


@pytest.mark.parametrize("message", [
    Reply(7, Token(" the")),
    Reply(2**63, Token("")),
    Reply(1, Token("é 漢字 🙂")),
    Reply(1, Token("\ud83d")),  # half of a surrogate pair: the text stream never makes one, but it must not break
    Reply(3, Token("a", [{"token": "a", "logprob": -0.5, "bytes": [97]}])),
    Reply(4, Done("stop", 10, 2, 5, 7, cached_tokens=3)),
    Reply(5, Failure("no KV cache space left for this sequence", 500)),
    Reply(6, [1, 2, 3]),
    Failure("T is not a token frame"),
], ids=repr)
def test_a_frame_decodes_to_the_message_it_encodes(message: object) -> None:
    frame = encode_frame(message)
    (length,) = FRAME_HEADER.unpack_from(frame)
    assert length == len(frame) - FRAME_HEADER.size
    assert decode_body(frame[FRAME_HEADER.size:]) == message


def test_a_plain_token_frame_is_not_a_pickle() -> None:
    """The frame of nearly every token is the short one (pickling it cost each side 6 µs per token)."""
    assert encode_frame(Reply(7, Token(" the"))) == FRAME_HEADER.pack(13) + b"T" + (7).to_bytes(8, "big") + b" the"
