"""The brokers the conformance suite runs against: one :class:`Target` per transport.

Each transport contributes ``tests/conformance/target_<name>.py`` with a module-level
``TARGET``; every test in this folder runs once per target.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

TRANSPORTS = ("amqp091", "stomp", "amqp10")
HERE = Path(__file__).parent


class PrivateBroker(Protocol):
    """A broker instance owned by one test, which it may stop and start."""

    url: str

    async def stop(self) -> None: ...

    async def start(self) -> None: ...


@dataclass(frozen=True)
class Target:
    id: str
    url: str
    """The shared broker every ordinary test uses (unique names keep tests apart)."""
    private: Callable[[Path], AbstractAsyncContextManager[PrivateBroker]]
    """Starts a private instance in a temporary directory, for restart tests."""
    unroutable_detected: bool
    """The protocol tells a publisher that no queue was bound (AMQP mandatory flag)."""


def available() -> list[str]:
    """Transports whose target module exists (test_targets.py fails unless all do)."""
    return [name for name in TRANSPORTS if (HERE / f"target_{name}.py").exists()]


def load_targets() -> list[Target]:
    return [
        importlib.import_module(f"tests.conformance.target_{name}").TARGET for name in available()
    ]
