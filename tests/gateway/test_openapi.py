"""The OpenAPI 3.1 document generated from the descriptors, and the offline docs page."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx
from openapi_spec_validator import validate

from gateway import GatewaySettings, build_app

if TYPE_CHECKING:
    from tests.gateway.conftest import GatewayFactory


async def test_document_validates_and_describes_routes(client: httpx.AsyncClient) -> None:
    """/openapi.json is valid OpenAPI 3.1 with every binding, parameters and schemas."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    paths = doc["paths"]
    assert set(paths) >= {
        "/v1/shelves/{shelf}/things",
        "/v1/{name}",
        "/v1/things/{name}",
        "/v1/things/{thing_id}",
        "/v1/shelves/{shelf}:count",
        "/v1/shelves/{shelf}/things:watch",
        "/v1/fail/{code}",
    }
    name = paths["/v1/{name}"]["get"]["parameters"][0]
    assert "'shelves/*/things/*'" in name["description"]
    assert paths["/v1/things/{name}"]["get"]["operationId"] == "ThingService_GetThing_1"
    query = {p["name"]: p for p in paths["/v1/shelves/{shelf}/things"]["get"]["parameters"]}
    assert set(query) == {
        "shelf",
        "page_size",
        "tags",
        "filter.color",
        "filter.min_weight",
        "since",
        "include_fragile",
    }
    assert query["tags"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert query["since"]["schema"]["format"] == "date-time"
    thing = doc["components"]["schemas"]["gwtest.v1.Thing"]["properties"]
    assert thing["weightGrams"]["type"] == "string"
    assert thing["color"]["enum"] == ["COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_BLUE"]
    assert thing["labels"]["additionalProperties"] == {"type": "string"}
    update = paths["/v1/things/{thing_id}"]["patch"]
    assert update["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/gwtest.v1.Thing"
    }
    count = paths["/v1/shelves/{shelf}:count"]["get"]["responses"]["200"]
    assert count["content"]["application/json"]["schema"]["format"] == "int64"
    watch = paths["/v1/shelves/{shelf}/things:watch"]["get"]["responses"]["200"]["content"]
    assert set(watch) == {"application/x-ndjson", "text/event-stream"}
    error = paths["/v1/fail/{code}"]["delete"]["responses"]["default"]
    assert error["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Status"}
    assert "comments" not in doc  # sanity: only OpenAPI keys
    assert paths["/v1/fail/{code}"]["delete"]["description"].startswith("No body;")


async def test_security_schemes_when_auth_required(start_gateway: GatewayFactory) -> None:
    """With auth on, the document declares API key and bearer schemes; health stays open."""
    key = "0" * 64
    settings = {"auth_required": True, "api_keys": (), "jwt_secret": key}
    async with start_gateway(**settings) as base, httpx.AsyncClient(base_url=base) as http:
        doc = (await http.get("/openapi.json")).json()
    validate(doc)
    assert set(doc["components"]["securitySchemes"]) == {"apiKey", "bearer"}
    assert doc["security"] == [{"apiKey": []}, {"bearer": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []


async def test_docs_page_is_self_contained(client: httpx.AsyncClient) -> None:
    """/docs is an HTML page that loads nothing from other hosts."""
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
    assert "http://" not in response.text
    assert "https://" not in response.text


def test_shop_descriptors_give_a_valid_document() -> None:
    """The packaged shop descriptor set yields a valid document (no hand-written routes)."""
    app = build_app(GatewaySettings(), None, {"shop": "127.0.0.1:1"})
    doc = json.loads(app.gateway.openapi)
    validate(doc)
    assert "/v1/orders/{order_id}:watch" in doc["paths"]
