"""Server-streaming RPCs as NDJSON and Server-Sent Events, chosen by Accept."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


async def test_ndjson_by_default(client: httpx.AsyncClient) -> None:
    """Without an SSE Accept the stream is NDJSON lines of {"result": message}."""
    async with client.stream("GET", "/v1/shelves/s/things:watch", params={"count": 3}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
    assert [line["result"]["id"] for line in lines] == ["0", "1", "2"]
    assert lines[1]["result"]["weightGrams"] == "1"
    assert lines[1]["result"]["color"] == "COLOR_BLUE"


async def test_sse_when_asked(client: httpx.AsyncClient) -> None:
    """Accept: text/event-stream gets one data: event per message."""
    response = await client.get(
        "/v1/shelves/s/things:watch",
        params={"count": 2},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in response.text.split("\n\n") if e]
    assert [json.loads(e.removeprefix("data: "))["id"] for e in events] == ["0", "1"]


async def test_error_mid_stream(client: httpx.AsyncClient) -> None:
    """A stream failing after messages ends with an error frame carrying the Status."""
    response = await client.get("/v1/shelves/s/things:watch", params={"count": 1, "failCode": 14})
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[0]["result"]["id"] == "0"
    assert lines[1]["error"]["code"] == 14
    assert lines[1]["error"]["message"] == "stream broke"
    response = await client.get(
        "/v1/shelves/s/things:watch",
        params={"count": 1, "failCode": 14},
        headers={"Accept": "text/event-stream"},
    )
    assert "event: error\ndata: " in response.text


async def test_error_before_first_message_is_http_error(client: httpx.AsyncClient) -> None:
    """A stream failing at once is an ordinary HTTP error response."""
    response = await client.get("/v1/shelves/missing/things:watch", params={"count": 1})
    assert response.status_code == 404
    assert response.json()["message"] == "no such shelf"


async def test_empty_stream(client: httpx.AsyncClient) -> None:
    """A stream with no messages is a 200 with an empty body."""
    response = await client.get("/v1/shelves/s/things:watch", params={"count": 0})
    assert response.status_code == 200
    assert response.content == b""
