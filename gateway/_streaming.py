"""Server-streaming RPCs over HTTP: Server-Sent Events or newline-delimited JSON.

``Accept: text/event-stream`` gets SSE (one ``data:`` event per message, a final
``event: error`` carrying a google.rpc.Status if the stream fails); anything else gets NDJSON in
grpc-gateway's shape, one ``{"result": ...}`` line per message or a final ``{"error": ...}``.
The first message is awaited before the response starts, so an RPC that fails at once (e.g.
NOT_FOUND) is an ordinary HTTP error response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from gateway._errors import from_rpc_error, status_json
from gateway._transcode import encode

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from google.protobuf.message import Message

__all__ = ["NDJSON", "SSE", "choose_media_type", "stream_body"]

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"


def choose_media_type(accept: str) -> str:
    """SSE when the client asks for it, else NDJSON."""
    return SSE if SSE in accept.lower() else NDJSON


def _frame(media_type: str, data: Any, *, error: bool) -> bytes:
    if media_type == SSE:
        return (b"event: error\n" if error else b"") + b"data: " + encode(data) + b"\n\n"
    return encode({"error" if error else "result": data}) + b"\n"


async def stream_body(
    first: Message,
    rest: AsyncIterator[Message],
    media_type: str,
    render: Callable[[Message], Any],
) -> AsyncIterator[bytes]:
    """The HTTP body: ``first`` then every further message, then an error frame if any."""
    yield _frame(media_type, render(first), error=False)
    try:
        async for message in rest:
            yield _frame(media_type, render(message), error=False)
    except grpc.aio.AioRpcError as exc:
        yield _frame(media_type, status_json(from_rpc_error(exc).status), error=True)
