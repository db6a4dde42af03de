"""Inventory's pure rules: lock order, violations and low-stock crossings."""

from __future__ import annotations

from services.inventory.domain import Line, crossed_low, shortage, sorted_lines, unknown_product


def test_lines_are_locked_in_sku_order():
    """Lines are sorted by SKU so concurrent reservations lock rows in one order."""
    assert [line.sku for line in sorted_lines([Line("b", 1), Line("a", 2)])] == ["a", "b"]


def test_violations_name_the_product():
    """Shortages and unknown SKUs are STOCK violations on products/<sku>."""
    short = shortage(Line("X", 3), 1)
    assert (short.type, short.subject) == ("STOCK", "products/X")
    assert "available 1" in short.description
    assert unknown_product("Y").subject == "products/Y"


def test_low_stock_is_reported_once_per_crossing():
    """StockLow fires when available falls to the threshold, not again below it."""
    assert crossed_low(6, 5, 5)
    assert not crossed_low(5, 4, 5)
    assert not crossed_low(10, 7, 5)
