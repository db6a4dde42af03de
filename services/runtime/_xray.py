"""The AWS X-Ray form of an OpenTelemetry trace id, for log lines CloudWatch can link to X-Ray."""

from __future__ import annotations

__all__ = ["xray_from_hex", "xray_trace_id"]


def xray_trace_id(trace_id: int) -> str:
    """``1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy``: the first 8 hex digits (the epoch seconds when
    the X-Ray id generator made the id), then the other 24."""
    return xray_from_hex(f"{trace_id:032x}")


def xray_from_hex(digits: str) -> str:
    """:func:`xray_trace_id` from the trace id's 32 hex digits, for callers that already
    formatted them (log lines carry both forms)."""
    return f"1-{digits[:8]}-{digits[8:]}"
