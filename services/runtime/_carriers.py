"""Propagator carriers for the lower-case key maps gRPC metadata and ASGI headers are.

Propagators ask for and set mixed-case names (the X-Ray propagator's ``X-Amzn-Trace-Id``);
gRPC metadata and ASGI header names are lower case, and gRPC refuses upper-case keys."""

from __future__ import annotations

from opentelemetry.propagators.textmap import Getter, Setter

__all__ = ["LOWER_CASE_GETTER", "LOWER_CASE_SETTER"]


class _LowerCaseGetter(Getter[dict[str, str]]):
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key.lower())
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


class _LowerCaseSetter(Setter[dict[str, str]]):
    def set(self, carrier: dict[str, str], key: str, value: str) -> None:
        carrier[key.lower()] = value


LOWER_CASE_GETTER = _LowerCaseGetter()
LOWER_CASE_SETTER = _LowerCaseSetter()
