"""STOMP 1.2 framing: escaping, binary bodies, partial reads, heart-beats."""

from __future__ import annotations

import pytest

from broker.errors import BrokerConnectionError
from broker.transports._stomp_frames import Frame, FrameParser, encode_frame


def test_binary_body_with_nul_survives_byte_by_byte_feeding():
    """A body containing NUL is framed by content-length and parses from one-byte reads."""
    raw = encode_frame("SEND", {"destination": "/queue/a"}, b"a\x00b\x00")
    parser = FrameParser()
    frames = []
    for i in range(len(raw)):
        frames += parser.feed(raw[i : i + 1])
    assert frames == [
        Frame("SEND", {"destination": "/queue/a", "content-length": "4"}, b"a\x00b\x00")
    ]


def test_header_escaping_round_trips():
    """Colons, newlines, carriage returns and backslashes in names and values are escaped."""
    headers = {"a:b": "x\ny\rz\\w:v"}
    raw = encode_frame("MESSAGE", headers, b"")
    assert b"a\\cb:x\\ny\\rz\\\\w\\cv" in raw
    (frame,) = FrameParser().feed(raw)
    assert frame.headers["a:b"] == "x\ny\rz\\w:v"


def test_connect_frames_are_not_escaped():
    """STOMP 1.2 leaves CONNECT/CONNECTED headers unescaped."""
    raw = encode_frame("CONNECT", {"passcode": "a:b"})
    assert b"passcode:a:b" in raw


def test_heartbeats_between_frames_are_reported_as_none():
    """LF and CRLF between frames are heart-beats, not frames."""
    parser = FrameParser()
    got = parser.feed(b"\n\r\nRECEIPT\r\nreceipt-id:7\r\n\r\n\x00\n")
    assert got == [None, None, Frame("RECEIPT", {"receipt-id": "7"}, b""), None]


def test_first_repeated_header_wins():
    """STOMP 1.2: when a header repeats, the first value counts."""
    (frame,) = FrameParser().feed(b"MESSAGE\nk:1\nk:2\n\nbody\x00")
    assert frame.headers == {"k": "1"}
    assert frame.body == b"body"


def test_invalid_escape_is_a_protocol_error():
    """An undefined escape sequence fails the connection rather than being guessed."""
    with pytest.raises(BrokerConnectionError, match="invalid escape"):
        FrameParser().feed(b"MESSAGE\nk:\\t\n\n\x00")


def test_body_not_terminated_by_nul_is_a_protocol_error():
    """content-length must be followed by the NUL terminator."""
    with pytest.raises(BrokerConnectionError, match="NUL"):
        FrameParser().feed(b"MESSAGE\ncontent-length:2\n\nabX")


def test_lf_and_crlf_frames_mixed_in_one_read():
    """An LF-terminated frame followed by a CRLF one (and the reverse) in one buffer both parse,
    with bodies holding blank lines not mistaken for the end of a header."""
    lf = b"MESSAGE\ncontent-length:4\n\n\n\n\r\n\x00"
    crlf = b"RECEIPT\r\nreceipt-id:9\r\n\r\n\x00"
    expected_lf = Frame("MESSAGE", {"content-length": "4"}, b"\n\n\r\n")
    expected_crlf = Frame("RECEIPT", {"receipt-id": "9"}, b"")
    assert FrameParser().feed(lf + crlf) == [expected_lf, expected_crlf]
    assert FrameParser().feed(crlf + lf) == [expected_crlf, expected_lf]


def test_many_frames_in_one_read_all_parse():
    """A large read holding thousands of frames yields every one of them, in order."""
    frames = [
        encode_frame("MESSAGE", {"message-id": f"ID:x:{i}"}, bytes([i % 256]) * 3)
        for i in range(5000)
    ]
    parsed = FrameParser().feed(b"".join(frames))
    assert [f.headers["message-id"] for f in parsed] == [f"ID:x:{i}" for i in range(5000)]


def test_trailing_backslash_is_a_protocol_error():
    """A header value ending in a lone backslash is an invalid escape."""
    with pytest.raises(BrokerConnectionError, match="invalid escape"):
        FrameParser().feed(b"MESSAGE\nk:abc\\\n\n\x00")


def test_caller_content_length_is_replaced_by_the_real_one():
    """A content-length among the given headers is ignored: the frame states its body's size."""
    raw = encode_frame("SEND", {"content-length": "1", "destination": "/queue/a"}, b"abc")
    assert raw.count(b"content-length") == 1
    (frame,) = FrameParser().feed(raw)
    assert frame.body == b"abc"
