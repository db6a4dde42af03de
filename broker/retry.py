"""How often and how soon a failed delivery is tried again before it is dead-lettered."""

from __future__ import annotations

import random
from dataclasses import dataclass

from broker.errors import ConfigurationError

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Exponential backoff with a cap and optional jitter.

    ``max_attempts`` counts every delivery, the first included: with the default of 5 a message
    whose handler always fails is handled five times, then dead-lettered with the last error.
    """

    max_attempts: int = 5
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.0
    """Fraction of each delay drawn at random (0.1 = up to 10 % shorter), to spread retries."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("RetryPolicy.max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ConfigurationError("RetryPolicy delays must be >= 0 and multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError("RetryPolicy.jitter must be between 0 and 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed delivery number ``attempt`` (1-based)."""
        base = min(self.initial_delay * self.multiplier ** (attempt - 1), self.max_delay)
        if self.jitter:
            base -= base * self.jitter * random.random()  # noqa: S311 - not cryptographic
        return base

    def exhausted(self, attempt: int) -> bool:
        """True when delivery number ``attempt`` was the last one allowed."""
        return attempt >= self.max_attempts

    def delays(self) -> list[float]:
        """Every delay this policy can ask for, without jitter (transports pre-declare these)."""
        return [
            min(self.initial_delay * self.multiplier ** (n - 1), self.max_delay)
            for n in range(1, self.max_attempts)
        ]
