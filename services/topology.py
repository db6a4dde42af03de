"""Who publishes and who consumes which events: the one declaration the services subscribe
from and the AsyncAPI document is generated from (DESIGN.md's domain table).

Each consuming service is one consumer group named after the service.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TOPOLOGY", "ServiceEvents", "consumer_patterns", "published_by"]


@dataclass(frozen=True, slots=True)
class ServiceEvents:
    service: str
    publishes: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    """Topic patterns of the service's consumer group (``*`` one word, ``#`` any)."""


TOPOLOGY: tuple[ServiceEvents, ...] = (
    ServiceEvents(
        "inventory",
        publishes=(
            "shop.inventory.v1.StockReserved",
            "shop.inventory.v1.StockReleased",
            "shop.inventory.v1.StockLow",
        ),
    ),
    ServiceEvents(
        "orders",
        publishes=(
            "shop.orders.v1.OrderPlaced",
            "shop.orders.v1.OrderConfirmed",
            "shop.orders.v1.OrderCancelled",
        ),
        consumes=("shop.payments.v1.PaymentAuthorized", "shop.payments.v1.PaymentDeclined"),
    ),
    ServiceEvents(
        "payments",
        publishes=(
            "shop.payments.v1.PaymentAuthorized",
            "shop.payments.v1.PaymentDeclined",
            "shop.payments.v1.PaymentRefunded",
        ),
        consumes=("shop.orders.v1.OrderPlaced", "shop.orders.v1.OrderCancelled"),
    ),
    ServiceEvents(
        "notifications",
        consumes=("shop.orders.v1.OrderConfirmed", "shop.orders.v1.OrderCancelled"),
    ),
    ServiceEvents("audit", consumes=("shop.#",)),
)


def consumer_patterns(service: str) -> tuple[str, ...]:
    """Topic patterns of ``service``'s consumer group."""
    for entry in TOPOLOGY:
        if entry.service == service:
            return entry.consumes
    raise KeyError(service)


def published_by(service: str) -> tuple[str, ...]:
    for entry in TOPOLOGY:
        if entry.service == service:
            return entry.publishes
    raise KeyError(service)
