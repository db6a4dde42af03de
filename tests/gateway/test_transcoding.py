"""Transcoding over real HTTP: every google.api.http binding shape and the proto3 JSON mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from tests.gateway._support import ThingServer


async def test_body_star_with_path_variable(client: httpx.AsyncClient) -> None:
    """body "*" fills the request, the path variable fills its field, JSON comes back canonical."""
    response = await client.post(
        "/v1/shelves/s1/things",
        json={
            "thing": {
                "id": "t9",
                "displayName": "Lamp",
                "weight_grams": "9007199254740993",
                "color": "COLOR_BLUE",
                "tags": ["a", "b"],
                "dimensions": {"width": 3},
            },
            "requestId": "r-1",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "shelves/s1/things/t9"
    assert body["displayName"] == "Lamp"
    assert body["weightGrams"] == "9007199254740993"  # int64 as a string, no precision lost
    assert body["color"] == "COLOR_BLUE"
    assert body["createTime"] == "2023-11-14T22:13:20.000005Z"
    assert body["dimensions"] == {"width": 3, "height": 0}
    assert body["labels"] == {"request_id": "r-1"}
    assert body["fragile"] is False  # fields without presence are always present


async def test_path_template_with_slashes(client: httpx.AsyncClient) -> None:
    """{name=shelves/*/things/*} binds the multi-segment match to one field."""
    response = await client.get("/v1/shelves/s1/things/t2")
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "shelves/s1/things/t2"
    assert response.json()["id"] == "t2"
    encoded = await client.get("/v1/shelves%2Fs1%2Fthings%2Ft2")  # as OpenAPI clients send it
    assert encoded.json()["name"] == "shelves/s1/things/t2"


async def test_additional_binding(client: httpx.AsyncClient) -> None:
    """An additional_bindings rule reaches the same RPC under its own template."""
    response = await client.get("/v1/things/t3")
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "t3"


async def test_query_parameters(client: httpx.AsyncClient) -> None:
    """Query parameters fill scalars, repeated, nested fields, enums, bools and Timestamps."""
    response = await client.get(
        "/v1/shelves/s2/things",
        params=[
            ("pageSize", "7"),
            ("tags", "x"),
            ("tags", "y"),
            ("filter.color", "COLOR_RED"),
            ("filter.min_weight", "12345678901"),
            ("since", "2024-01-02T03:04:05Z"),
            ("include_fragile", "true"),
        ],
    )
    assert response.status_code == 200, response.text
    thing = response.json()["things"][0]
    assert thing["id"] == "s2"
    assert thing["displayName"] == "7"
    assert thing["tags"] == ["x", "y"]
    assert thing["color"] == "COLOR_RED"
    assert thing["weightGrams"] == "12345678901"
    assert thing["createTime"] == "2024-01-02T03:04:05Z"
    assert thing["fragile"] is True


async def test_body_field_and_nested_path_variable(client: httpx.AsyncClient) -> None:
    """body "thing" fills one field; {thing.id} sets a nested field; other fields from query."""
    response = await client.patch(
        "/v1/things/t5", params={"etag": "e1"}, json={"displayName": "New", "id": "ignored"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "t5"  # the path wins over the body
    assert response.json()["displayName"] == "New|e1"


async def test_response_body_and_custom_verb(client: httpx.AsyncClient) -> None:
    """response_body returns one field (an int64, so a JSON string); :count is a custom verb."""
    response = await client.get("/v1/shelves/s3:count")
    assert response.status_code == 200, response.text
    assert response.json() == "12345678901234"


async def test_unannotated_rpc_has_no_route(client: httpx.AsyncClient) -> None:
    """An RPC without google.api.http is not reachable; unknown paths are 404 Status bodies."""
    response = await client.get("/gwtest.v1.ThingService/Hidden")
    assert response.status_code == 404
    assert response.json()["code"] == 5


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    """A known path with an unbound method answers 405 with Allow."""
    response = await client.put("/v1/shelves/s1/things", json={})
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}


async def test_no_body_route_ignores_empty_body(
    upstream: ThingServer, client: httpx.AsyncClient
) -> None:
    """A GET with no body reaches the RPC with default fields."""
    response = await client.get("/v1/shelves/s9/things")
    assert response.status_code == 200
    assert response.json()["things"][0]["tags"] == []
    assert upstream.list_calls == 1
