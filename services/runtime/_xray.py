"""The AWS X-Ray form of an OpenTelemetry trace id, for log lines CloudWatch can link to X-Ray."""

from __future__ import annotations

__all__ = ["xray_trace_id"]


def xray_trace_id(trace_id: int) -> str:
    """``1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy``: the first 8 hex digits (the epoch seconds when
    the X-Ray id generator made the id), then the other 24."""
    digits = f"{trace_id:032x}"
    return f"1-{digits[:8]}-{digits[8:]}"
