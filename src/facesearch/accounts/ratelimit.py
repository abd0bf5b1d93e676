"""Per-caller rate limits: a token bucket per key or user, with an injectable clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBuckets:
    """``rate_per_minute`` sustained, ``burst`` at once; one bucket per caller."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, caller: str) -> float:
        """Spend one token. Returns 0 when allowed, else the seconds until one is free."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(caller, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[caller] = (tokens - 1.0, now)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def refund(self, caller: str) -> None:
        """Give back the token of a call that should not count (a successful sign-in)."""
        with self._lock:
            if caller in self._buckets:
                tokens, at = self._buckets[caller]
                self._buckets[caller] = (min(self.burst, tokens + 1.0), at)
