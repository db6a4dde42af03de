"""Inventory rules, free of I/O: what a reservation needs and when stock counts as low."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.runtime import PreconditionViolation

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "STOCK",
    "Line",
    "crossed_low",
    "product_subject",
    "shortage",
    "sorted_lines",
    "unknown_product",
]

STOCK = "STOCK"
"""Precondition-violation type for a SKU that cannot be reserved."""


@dataclass(frozen=True, slots=True)
class Line:
    """One SKU and a quantity (of a reservation request or a reservation)."""

    sku: str
    quantity: int


def product_subject(sku: str) -> str:
    """The resource name used in error details: ``products/<sku>``."""
    return f"products/{sku}"


def sorted_lines(lines: Iterable[Line]) -> list[Line]:
    """Lines in SKU order: every transaction locks product rows in the same order, so two
    reservations sharing products cannot deadlock on PostgreSQL."""
    return sorted(lines, key=lambda line: line.sku)


def shortage(line: Line, available: int) -> PreconditionViolation:
    """The violation reported for a line asking more than is available."""
    return PreconditionViolation(
        type=STOCK,
        subject=product_subject(line.sku),
        description=f"requested {line.quantity}, available {available}",
    )


def unknown_product(sku: str) -> PreconditionViolation:
    """The violation reported for a line naming a SKU that does not exist."""
    return PreconditionViolation(
        type=STOCK, subject=product_subject(sku), description="no such product"
    )


def crossed_low(before: int, after: int, threshold: int) -> bool:
    """Whether available stock just fell to or below ``threshold`` (StockLow is published once
    per crossing, not on every reservation below it)."""
    return after <= threshold < before
