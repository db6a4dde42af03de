"""The service contracts keep the conventions the gateway and clients rely on."""

from __future__ import annotations

from pathlib import Path

import protovalidate
import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, timestamp_pb2

from shop.audit.v1 import audit_pb2
from shop.common.v1 import common_pb2
from shop.inventory.v1 import inventory_pb2
from shop.orders.v1 import orders_pb2

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "shop.orders.v1.OrderService",
    "shop.inventory.v1.InventoryService",
    "shop.payments.v1.PaymentService",
    "shop.notifications.v1.NotificationService",
    "shop.audit.v1.AuditService",
    "shop.audit.v1.DeadLetterService",
}
ORDER_ID = "5f0c6f3e-2f64-4a55-9d3a-6f1f1c3c2b10"


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString((ROOT / "shop/descriptors.binpb").read_bytes())
    return fds


def _messages() -> dict[str, descriptor_pb2.DescriptorProto]:
    return {
        f"{f.package}.{m.name}": m
        for f in _descriptor_set().file
        if f.package.startswith("shop.")
        for m in f.message_type
    }


def _methods() -> list[tuple[str, descriptor_pb2.MethodDescriptorProto]]:
    return [
        (f"{f.package}.{s.name}", m)
        for f in _descriptor_set().file
        for s in f.service
        for m in s.method
    ]


def _field_names(type_name: str) -> set[str]:
    return {field.name for field in _messages()[type_name.lstrip(".")].field}


def _violations(message: object) -> dict[str, str]:
    found = protovalidate.collect_violations(message)  # type: ignore[arg-type]
    return {
        ".".join(e.field_name for e in v.proto.field.elements) if v.proto.field else "": (
            v.proto.rule_id
        )
        for v in found
    }


def test_descriptor_set_holds_the_five_services():
    """shop/descriptors.binpb declares the five domain services and the operators' DLQ one."""
    declared = {f"{f.package}.{s.name}" for f in _descriptor_set().file for s in f.service}
    assert declared == SERVICES


def test_descriptor_set_keeps_comments_for_openapi():
    """Source comments travel in the descriptor set (the gateway's OpenAPI descriptions)."""
    orders = next(f for f in _descriptor_set().file if f.package == "shop.orders.v1")
    comments = [loc.leading_comments for loc in orders.source_code_info.location]
    assert any("idempotency_key" in c for c in comments)


@pytest.mark.parametrize(("service", "method"), _methods(), ids=lambda x: getattr(x, "name", x))
def test_every_rpc_has_an_http_rule(service: str, method: descriptor_pb2.MethodDescriptorProto):
    """Every RPC is annotated with google.api.http on a /v1/ path (the gateway's routes)."""
    rule: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    assert verb in {"get", "post"}, f"{service}.{method.name} has no http rule"
    assert getattr(rule, verb).startswith("/v1/")
    if verb == "post":
        assert rule.body == "*"


@pytest.mark.parametrize(
    "method",
    [m for _, m in _methods() if m.name.startswith(("List", "Query"))],
    ids=lambda m: m.name,
)
def test_every_list_is_paginated(method: descriptor_pb2.MethodDescriptorProto):
    """List/Query requests take page_size and page_token; responses return next_page_token."""
    assert {"page_size", "page_token"} <= _field_names(method.input_type)
    assert "next_page_token" in _field_names(method.output_type)


@pytest.mark.parametrize(
    "method",
    [m for _, m in _methods() if m.name.startswith("Create")],
    ids=lambda m: m.name,
)
def test_every_create_takes_an_idempotency_key(method: descriptor_pb2.MethodDescriptorProto):
    """Create requests carry an idempotency_key so clients can retry safely."""
    assert "idempotency_key" in _field_names(method.input_type)


def test_times_are_timestamps():
    """Every *_time field, and every field named time, is a google.protobuf.Timestamp."""
    for name, message in _messages().items():
        for field in message.field:
            if field.name == "time" or field.name.endswith("_time"):
                assert field.type_name == ".google.protobuf.Timestamp", f"{name}.{field.name}"


def test_watch_order_streams_from_the_server():
    """WatchOrder is server-streaming only."""
    watch = next(m for _, m in _methods() if m.name == "WatchOrder")
    assert watch.server_streaming
    assert not watch.client_streaming


def test_valid_create_order_has_no_violations():
    """A well-formed CreateOrderRequest passes the contract's rules."""
    request = orders_pb2.CreateOrderRequest(
        idempotency_key="k-1",
        customer_id="c-1",
        lines=[common_pb2.ItemQuantity(sku="SKU-1", quantity=2)],
    )
    assert _violations(request) == {}


def test_create_order_rules_name_each_bad_field():
    """Empty key, no lines and a bad SKU/quantity each give a violation on their field path."""
    assert _violations(orders_pb2.CreateOrderRequest(customer_id="c")) == {
        "idempotency_key": "string.min_len",
        "lines": "repeated.min_items",
    }
    bad_line = orders_pb2.CreateOrderRequest(
        idempotency_key="k",
        customer_id="c",
        lines=[common_pb2.ItemQuantity(sku="bad sku", quantity=0)],
    )
    assert _violations(bad_line) == {
        "lines.sku": "string.pattern",
        "lines.quantity": "int32.gte_lte",
    }


def test_duplicate_skus_are_rejected_by_a_message_rule():
    """The same SKU twice in one order breaks the message-level CEL rule."""
    line = common_pb2.ItemQuantity(sku="A", quantity=1)
    request = inventory_pb2.ReserveStockRequest(order_id=ORDER_ID, lines=[line, line])
    assert _violations(request) == {"": "lines.unique_sku"}


def test_ids_must_be_uuids():
    """Order ids are validated as UUIDs."""
    assert _violations(orders_pb2.GetOrderRequest(order_id="42")) == {"order_id": "string.uuid"}
    assert _violations(orders_pb2.GetOrderRequest(order_id=ORDER_ID)) == {}


def test_audit_time_range_must_be_ordered():
    """QueryAudit rejects an end_time that is not after start_time."""
    request = audit_pb2.QueryAuditRequest(
        start_time=timestamp_pb2.Timestamp(seconds=20),
        end_time=timestamp_pb2.Timestamp(seconds=10),
    )
    assert _violations(request) == {"": "time_range.ordered"}
