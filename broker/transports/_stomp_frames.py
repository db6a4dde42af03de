"""STOMP 1.2 frames: encoding with header escaping and content-length, and an incremental
parser that accepts heart-beat EOLs between frames and binary bodies containing NUL."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from broker.errors import BrokerConnectionError

__all__ = ["Frame", "FrameParser", "encode_frame"]

_ESCAPE = str.maketrans({"\\": "\\\\", "\r": "\\r", "\n": "\\n", ":": "\\c"})
_UNESCAPE = {"\\\\": "\\", "\\r": "\r", "\\n": "\n", "\\c": ":"}
_ESCAPED = re.compile(r"\\.?", re.DOTALL)
_NO_ESCAPE = {"CONNECT", "CONNECTED"}  # STOMP 1.2: these frames' headers are not escaped
MAX_FRAME = 64 * 1024 * 1024
_LF, _CR = 0x0A, 0x0D


@dataclass(slots=True)
class Frame:
    command: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def encode_frame(command: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """One frame; a body always carries content-length so NUL bytes inside it are safe."""
    escape = command not in _NO_ESCAPE
    lines = [command]
    for key, value in headers.items():
        if key == "content-length":
            continue  # computed below; a second, wrong one would come first and win
        if escape:
            lines.append(f"{key.translate(_ESCAPE)}:{value.translate(_ESCAPE)}")
        else:
            lines.append(f"{key}:{value}")
    if body or command == "SEND":
        lines.append(f"content-length:{len(body)}")
    head = "\n".join(lines).encode("utf-8")
    return b"".join((head, b"\n\n", body, b"\x00"))


def _unescape_one(match: re.Match[str]) -> str:
    value = _UNESCAPE.get(match.group())
    if value is None:
        raise BrokerConnectionError(f"STOMP: invalid escape {match.group()!r} in header")
    return value


def _unescape(text: str) -> str:
    # Message ids carry ':' (sent as \c), so most MESSAGE frames take the regex path.
    return _ESCAPED.sub(_unescape_one, text) if "\\" in text else text


class FrameParser:
    """Feed bytes as they arrive; collect complete frames (``None`` stands for a heart-beat)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame | None]:
        self._buffer += data
        frames: list[Frame | None] = []
        while True:
            frame = self._next()
            if frame is _INCOMPLETE:
                return frames
            frames.append(frame)  # type: ignore[arg-type]  # Frame or None, checked above

    def _next(self) -> object:
        """The next frame, ``None`` for a heart-beat, or ``_INCOMPLETE``."""
        buffer = self._buffer
        if not buffer:
            return _INCOMPLETE
        if buffer[0] in (_LF, _CR):
            return self._heartbeat()
        head = self._head()
        if head is None:
            return _INCOMPLETE
        command, headers, body_start = head
        body = self._body(headers.get("content-length"), body_start)
        if body is None:
            return _INCOMPLETE
        return Frame(command, headers, body)

    def _heartbeat(self) -> object:
        if self._buffer[:2] == b"\r\n":
            del self._buffer[:2]
        elif self._buffer[0] == _CR:  # a lone CR: wait for its LF
            return _INCOMPLETE
        else:
            del self._buffer[:1]
        return None

    def _head(self) -> tuple[str, dict[str, str], int] | None:
        buffer = self._buffer
        # The CRLF form is only looked for before the first LF-LF: an unbounded second search
        # would rescan the whole read buffer for every frame (quadratic in frames per read).
        lf = buffer.find(b"\n\n")
        crlf = buffer.find(b"\r\n\r\n", 0, len(buffer) if lf == -1 else lf + 2)
        if crlf != -1 and (lf == -1 or crlf < lf):
            head_end, sep = crlf, 4
        elif lf != -1:
            head_end, sep = lf, 2
        else:
            if len(buffer) > MAX_FRAME:
                raise BrokerConnectionError("STOMP: frame header too large")
            return None
        text = buffer[:head_end].decode("utf-8")
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        command = lines[0]
        escape = command not in _NO_ESCAPE and "\\" in text
        headers: dict[str, str] = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            if escape:
                key, value = _unescape(key), _unescape(value)
            headers.setdefault(key, value)  # STOMP 1.2: the first occurrence wins
        return command, headers, head_end + sep

    def _body(self, length: str | None, start: int) -> bytes | None:
        buffer = self._buffer
        if length is None:
            nul = buffer.find(b"\x00", start)
            if nul == -1:
                return None
            body = bytes(buffer[start:nul])
            del buffer[: nul + 1]
            return body
        size = int(length)
        if size > MAX_FRAME:
            raise BrokerConnectionError(f"STOMP: frame of {size} bytes is too large")
        if len(buffer) < start + size + 1:
            return None
        if buffer[start + size] != 0:
            raise BrokerConnectionError("STOMP: frame body not terminated by NUL")
        body = bytes(buffer[start : start + size])
        del buffer[: start + size + 1]
        return body


_INCOMPLETE = object()
