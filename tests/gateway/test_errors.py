"""Errors: grpc-gateway's status table, rich details reaching REST clients, 400/413 for mistakes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import httpx
import pytest

from gateway import HTTP_STATUS

if TYPE_CHECKING:
    from tests.gateway.conftest import GatewayFactory

CASES = [
    (grpc.StatusCode.INVALID_ARGUMENT, 400),
    (grpc.StatusCode.NOT_FOUND, 404),
    (grpc.StatusCode.ALREADY_EXISTS, 409),
    (grpc.StatusCode.ABORTED, 409),
    (grpc.StatusCode.PERMISSION_DENIED, 403),
    (grpc.StatusCode.UNAUTHENTICATED, 401),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    (grpc.StatusCode.FAILED_PRECONDITION, 400),
    (grpc.StatusCode.OUT_OF_RANGE, 400),
    (grpc.StatusCode.UNIMPLEMENTED, 501),
    (grpc.StatusCode.INTERNAL, 500),
    (grpc.StatusCode.UNAVAILABLE, 503),
    (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    (grpc.StatusCode.CANCELLED, 499),
    (grpc.StatusCode.UNKNOWN, 500),
    (grpc.StatusCode.DATA_LOSS, 500),
]


def test_table_matches_grpc_gateway() -> None:
    """Every gRPC code maps to grpc-gateway's HTTP status."""
    assert {code: HTTP_STATUS[code] for code, _ in CASES} == dict(CASES)


@pytest.mark.parametrize(("code", "http"), CASES, ids=[c.name for c, _ in CASES])
async def test_upstream_status_reaches_client(
    client: httpx.AsyncClient, code: grpc.StatusCode, http: int
) -> None:
    """An upstream error becomes its HTTP status with the google.rpc.Status body and details."""
    response = await client.delete(f"/v1/fail/{code.value[0]}", params={"field": "thing.name"})
    assert response.status_code == http
    body = response.json()
    assert body["code"] == code.value[0]
    assert body["message"] == f"failed with {code.value[0]}"
    assert body["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "thing.name", "description": "must not be empty"}],
        }
    ]


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    """Malformed JSON is 400 INVALID_ARGUMENT naming the position."""
    response = await client.post("/v1/shelves/s/things", content=b'{"thing": ')
    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert "malformed JSON body" in response.json()["message"]


async def test_body_not_an_object(client: httpx.AsyncClient) -> None:
    """A body "*" route needs a JSON object."""
    response = await client.post("/v1/shelves/s/things", json=[1, 2])
    assert response.status_code == 400
    assert "JSON object" in response.json()["message"]


async def test_unknown_body_field(client: httpx.AsyncClient) -> None:
    """An unknown field is 400 with a field violation naming it."""
    response = await client.post("/v1/shelves/s/things", json={"thing": {"colour": "red"}})
    assert response.status_code == 400
    body = response.json()
    assert "colour" in body["message"]
    violations = body["details"][0]["fieldViolations"]
    assert violations[0]["field"] == "thing"
    assert "colour" in violations[0]["description"]


async def test_wrong_type(client: httpx.AsyncClient) -> None:
    """A value of the wrong type is 400 naming the field."""
    response = await client.post("/v1/shelves/s/things", json={"thing": {"weightGrams": "heavy"}})
    assert response.status_code == 400
    assert "weightGrams" in response.json()["message"] or "weight" in response.json()["message"]
    response = await client.post("/v1/shelves/s/things", json={"thing": {"color": "COLOR_PINK"}})
    assert response.status_code == 400
    assert "color" in response.json()["message"].lower()


async def test_bad_query_parameters(client: httpx.AsyncClient) -> None:
    """Unknown, non-scalar, mistyped or repeated-singular query parameters are 400s naming them."""
    for params, name in [
        ({"nope": "1"}, "nope"),
        ({"filter": "x"}, "filter"),
        ({"pageSize": "many"}, "page"),
        ({"include_fragile": "yes"}, "include_fragile"),
        ([("pageSize", "1"), ("pageSize", "2")], "pageSize"),
    ]:
        response = await client.get("/v1/shelves/s/things", params=params)
        assert response.status_code == 400, (params, response.text)
        assert name.lower() in response.text.lower()


async def test_query_on_body_star_route_is_400(client: httpx.AsyncClient) -> None:
    """With body "*" every field is in the body, so query parameters are rejected."""
    response = await client.post("/v1/shelves/s/things", params={"requestId": "x"}, json={})
    assert response.status_code == 400


async def test_body_on_bodyless_route_is_400(client: httpx.AsyncClient) -> None:
    """A route without a body binding rejects a request body."""
    response = await client.request("DELETE", "/v1/fail/0", content=b'{"code": 1}')
    assert response.status_code == 400
    assert "takes no request body" in response.json()["message"]


async def test_bad_path_value_is_400(client: httpx.AsyncClient) -> None:
    """A path variable that does not parse as its field type is 400, not 500."""
    response = await client.delete("/v1/fail/abc")
    assert response.status_code == 400
    assert response.json()["details"][0]["fieldViolations"][0]["field"] == "code"


async def test_oversize_body_is_413(start_gateway: GatewayFactory) -> None:
    """Bodies over the limit get 413, whether Content-Length says so or the stream shows it."""
    async with start_gateway(max_body_bytes=1000) as base, httpx.AsyncClient(base_url=base) as http:
        big = {"requestId": "x" * 2000}
        response = await http.post("/v1/shelves/s/things", json=big)
        assert response.status_code == 413
        assert "exceeds 1000 bytes" in response.json()["message"]

        async def chunks():  # no Content-Length: chunked transfer encoding
            for _ in range(20):
                yield b" " * 100

        response = await http.post("/v1/shelves/s/things", content=chunks())
        assert response.status_code == 413
        ok = await http.post("/v1/shelves/s/things", json={"requestId": "small"})
        assert ok.status_code == 200
