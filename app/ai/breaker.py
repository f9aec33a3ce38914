"""A circuit breaker per stage: after `failures` transient errors in a row the stage is not called for
`reset_seconds`; then one trial job decides whether it closes again."""
from __future__ import annotations

import time


class Breaker:
    def __init__(self, failures: int, reset_seconds: float, clock=time.monotonic):
        self.failures, self.reset_seconds, self.clock = failures, reset_seconds, clock
        self.errors = 0
        self.opened_at: float | None = None
        self.trial = False  # a half-open trial job is in flight

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.reset_seconds else "open"

    def allowance(self, free: int) -> int:
        """How many jobs of this stage may be taken now."""
        s = self.state
        if s == "closed":
            return free
        if s == "half_open" and not self.trial:
            return min(1, free)
        return 0

    def taken(self, n: int) -> None:
        if n and self.state == "half_open":
            self.trial = True

    def success(self) -> None:
        self.errors, self.opened_at, self.trial = 0, None, False

    def failure(self) -> None:
        self.errors += 1
        if self.opened_at is not None or self.errors >= self.failures:
            self.opened_at, self.trial = self.clock(), False
