"""Outbox gauges: a polled backlog probe shows on /metrics as backlog and oldest-row age."""

from __future__ import annotations

import httpx

from services.runtime.telemetry import setup_telemetry


async def test_outbox_backlog_and_age_are_scraped_from_the_cached_probe():
    """After a refresh the gauges carry the probe's count and age, labelled by outbox."""
    values = [(7, 12.5)]

    async def backlog() -> tuple[int, float | None]:
        return values[-1]

    telemetry = setup_telemetry("orders", environ={}, metrics_port=0, set_global=False)
    try:
        telemetry.watch_outbox(backlog)
        await telemetry.refresh_outboxes()
        url = f"http://127.0.0.1:{telemetry.metrics_port}/metrics"
        async with httpx.AsyncClient() as http:
            first = (await http.get(url)).text
            values.append((0, None))
            await telemetry.refresh_outboxes()
            second = (await http.get(url)).text
    finally:
        await telemetry.shutdown()
    assert 'shopmq_outbox_backlog{outbox="outbox"} 7.0' in first
    assert 'shopmq_outbox_oldest_age_seconds{outbox="outbox"} 12.5' in first
    assert 'shopmq_outbox_backlog{outbox="outbox"} 0.0' in second
    assert 'shopmq_outbox_oldest_age_seconds{outbox="outbox"} 0.0' in second
