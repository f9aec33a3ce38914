"""Token buckets per key (client IP, email, user): 429 with Retry-After when one runs dry.

In-process: with several app processes each keeps its own buckets (the limit is per process). Configured as
"<requests>/<seconds>", e.g. DL_RATE_LOGIN=10/60 and DL_RATE_RPC=1200/60; "off" disables one.
"""
from __future__ import annotations

import math
import time

from .errors import ApiError


class RateLimiter:
    def __init__(self, spec: str, what: str):
        self.what = what
        self.enabled = spec != "off"
        count, _, seconds = spec.partition("/") if self.enabled else ("1", "", "1")
        self.capacity = float(count)
        self.refill = self.capacity / float(seconds or 1)  # tokens per second
        self.buckets: dict[str, tuple[float, float]] = {}

    def hit(self, *keys: str) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if len(self.buckets) > 100_000:  # forget idle keys rather than grow without bound
            self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < self.capacity / self.refill}
        for key in keys:
            tokens, last = self.buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill)
            if tokens < 1:
                wait = math.ceil((1 - tokens) / self.refill)
                self.buckets[key] = (tokens, now)
                raise ApiError(429, "PT429", f"too many {self.what}; try again in {wait} s",
                               headers={"Retry-After": str(wait)})
            self.buckets[key] = (tokens - 1, now)
