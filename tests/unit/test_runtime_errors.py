"""Domain errors carry their gRPC code and google.rpc details; protovalidate violations become
field violations with readable paths."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2

from services.runtime import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
    ServiceError,
    Unavailable,
    validate,
)
from services.runtime.validation import violations
from shop.common.v1 import common_pb2
from shop.orders.v1 import orders_pb2


def test_errors_derive_from_the_root_and_a_builtin():
    """Every error is a ServiceError and also the builtin a generic handler would catch."""
    assert issubclass(NotFound, ServiceError)
    assert issubclass(NotFound, LookupError)
    assert issubclass(InvalidArgument, ValueError)
    assert issubclass(Unavailable, ConnectionError)


def test_not_found_status_has_resource_info():
    """NotFound packs a ResourceInfo and a default message naming the resource."""
    status = NotFound("order", "orders/42").to_status()
    assert status.code == code_pb2.NOT_FOUND
    assert status.message == "order 'orders/42' not found"
    info = error_details_pb2.ResourceInfo()
    assert status.details[0].Unpack(info)
    assert info.resource_name == "orders/42"


def test_already_exists_status():
    """AlreadyExists maps to ALREADY_EXISTS with a ResourceInfo."""
    error = AlreadyExists("product", "products/SKU-1")
    assert error.code is grpc.StatusCode.ALREADY_EXISTS
    assert error.to_status().code == code_pb2.ALREADY_EXISTS


def test_invalid_argument_status_lists_field_violations():
    """InvalidArgument packs one BadRequest.FieldViolation per bad field."""
    error = InvalidArgument([FieldViolation("lines[0].quantity", "must be >= 1", "int32.gte")])
    status = error.to_status()
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == "invalid request: lines[0].quantity"
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.reason) for v in bad.field_violations] == [
        ("lines[0].quantity", "int32.gte")
    ]


def test_failed_precondition_status_lists_violations():
    """FailedPrecondition packs a PreconditionFailure with every violation."""
    error = FailedPrecondition([PreconditionViolation("STOCK", "products/A", "2 left")])
    failure = error_details_pb2.PreconditionFailure()
    assert error.to_status().details[0].Unpack(failure)
    assert failure.violations[0].subject == "products/A"


def test_validation_paths_name_repeated_elements():
    """Violations inside repeated fields name the element index: lines[1].quantity."""
    request = orders_pb2.CreateOrderRequest(
        idempotency_key="k",
        customer_id="c",
        lines=[
            common_pb2.ItemQuantity(sku="A", quantity=1),
            common_pb2.ItemQuantity(sku="B", quantity=0),
        ],
    )
    found = violations(request)
    assert [(v.field, v.reason) for v in found] == [("lines[1].quantity", "int32.gte_lte")]
    assert found[0].description


def test_validate_raises_invalid_argument_or_returns():
    """validate() returns for a valid message and raises InvalidArgument otherwise."""
    validate(orders_pb2.GetOrderRequest(order_id="5f0c6f3e-2f64-4a55-9d3a-6f1f1c3c2b10"))
    with pytest.raises(InvalidArgument) as caught:
        validate(orders_pb2.GetOrderRequest(order_id="x"))
    assert caught.value.violations[0].field == "order_id"
