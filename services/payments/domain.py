"""The simulated payment processor: deterministic rules, documented in docs/services.md.

In order, the first rule that applies decides:

1. the order was cancelled before its payment was processed -> declined, "order cancelled";
2. ``payment_method_id`` is ``pm_decline`` -> declined, "card declined";
3. ``payment_method_id`` is ``pm_insufficient_funds`` -> declined, "insufficient funds";
4. the amount exceeds ``PAYMENTS_AMOUNT_LIMIT_MINOR`` (default 1 000 000 minor units) ->
   declined, "amount over limit";
5. otherwise -> authorized.

For tests, ``PAYMENTS_LATENCY_MS`` delays every decision, and ``PAYMENTS_TRANSIENT_FAILURES=N``
makes the first N attempts for each order fail as if the processor were unreachable (the
broker's retry policy delivers the event again).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.runtime import Env

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DECLINE_METHOD",
    "INSUFFICIENT_FUNDS_METHOD",
    "Decision",
    "ProcessorRules",
    "ProcessorUnavailableError",
    "decide",
    "payment_id_for",
]

DECLINE_METHOD = "pm_decline"
INSUFFICIENT_FUNDS_METHOD = "pm_insufficient_funds"
_PAYMENT_IDS = uuid.UUID("6f1d0c1e-2b7a-4a43-9a55-0d3c6f0b9a01")


class ProcessorUnavailableError(ConnectionError):
    """The (simulated) processor could not be reached; the event is retried."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ProcessorRules:
    amount_limit_minor: int = 1_000_000
    latency: float = 0.0
    """Seconds every decision takes."""
    transient_failures: int = 0
    """Attempts per order that fail before the processor answers."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProcessorRules:
        env = Env(environ)
        return cls(
            amount_limit_minor=env.integer(
                "PAYMENTS_AMOUNT_LIMIT_MINOR", 1_000_000, low=0, high=2**62
            ),
            latency=env.integer("PAYMENTS_LATENCY_MS", 0, low=0, high=60_000) / 1000,
            transient_failures=env.integer("PAYMENTS_TRANSIENT_FAILURES", 0, low=0, high=100),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    authorized: bool
    reason: str = ""


def decide(
    rules: ProcessorRules, *, payment_method_id: str, amount_minor: int, cancelled: bool
) -> Decision:
    """The processor's answer for one payment (see the module docstring for the rules)."""
    if cancelled:
        return Decision(authorized=False, reason="order cancelled")
    if payment_method_id == DECLINE_METHOD:
        return Decision(authorized=False, reason="card declined")
    if payment_method_id == INSUFFICIENT_FUNDS_METHOD:
        return Decision(authorized=False, reason="insufficient funds")
    if amount_minor > rules.amount_limit_minor:
        return Decision(authorized=False, reason="amount over limit")
    return Decision(authorized=True)


def payment_id_for(order_id: str) -> str:
    """The payment id of an order's payment: derived, so every replay names the same one."""
    return str(uuid.uuid5(_PAYMENT_IDS, order_id))
