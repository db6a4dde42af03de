"""The simulated processor's documented rules, in order."""

from __future__ import annotations

from services.payments.domain import ProcessorRules, decide, payment_id_for

RULES = ProcessorRules(amount_limit_minor=10_000)


def _decide(method="pm_card", amount=100, cancelled=False):
    return decide(RULES, payment_method_id=method, amount_minor=amount, cancelled=cancelled)


def test_rules_decide_deterministically():
    """Cancelled orders, decline tokens and amounts over the limit decline; others authorize."""
    assert _decide().authorized
    assert _decide(cancelled=True).reason == "order cancelled"
    assert _decide(method="pm_decline").reason == "card declined"
    assert _decide(method="pm_insufficient_funds").reason == "insufficient funds"
    assert _decide(amount=10_001).reason == "amount over limit"
    assert _decide(amount=10_000).authorized


def test_rules_come_from_the_environment():
    """Limit, latency and transient failures are read from PAYMENTS_* variables."""
    rules = ProcessorRules.from_env(
        {
            "PAYMENTS_AMOUNT_LIMIT_MINOR": "5",
            "PAYMENTS_LATENCY_MS": "250",
            "PAYMENTS_TRANSIENT_FAILURES": "2",
        }
    )
    assert (rules.amount_limit_minor, rules.latency, rules.transient_failures) == (5, 0.25, 2)


def test_payment_id_is_derived_from_the_order():
    """Every replay of an order's payment names the same payment id."""
    assert payment_id_for("o-1") == payment_id_for("o-1") != payment_id_for("o-2")
