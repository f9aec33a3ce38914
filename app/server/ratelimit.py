"""Rate limits, counted in PostgreSQL (auth.rate_bucket): one token bucket per person, key, address or account,
shared by every app process, so a limit holds behind a load balancer. Configured as "<requests>/<seconds>", e.g.
DL_RATE_LOGIN=20/60 and DL_RATE_RPC=1200/60; "off" disables one. 429 with Retry-After when a bucket runs dry.

An RPC's token is taken by the request's first statement (auth.begin_request), in its transaction; a request that
then fails rolls that back, so the app takes the token again in its own statement (count_failure): failing
requests count too."""
from __future__ import annotations

import math

from psycopg_pool import AsyncConnectionPool

from .errors import ApiError


class RateLimit:
    def __init__(self, spec: str, what: str, name: str):
        self.what, self.name = what, name  # name: the buckets' namespace (rpc:user:7 is not login:ip:...)
        self.enabled = spec != "off"
        count, _, seconds = spec.partition("/") if self.enabled else ("1", "", "1")
        self.capacity = float(count)
        self.per_second = self.capacity / float(seconds or 1)

    def budget(self) -> tuple[float | None, float | None]:
        """(capacity, refill per second) for SQL, or (None, None) when off."""
        return (self.capacity, self.per_second) if self.enabled else (None, None)

    def bucket(self, key: str) -> str:
        return f"{self.name}:{key}"

    def refuse(self, wait: float) -> ApiError:
        seconds = max(1, math.ceil(wait))
        return ApiError(429, "PT429", f"too many {self.what}; try again in {seconds} s",
                        headers={"Retry-After": str(seconds)})

    async def take(self, pool: AsyncConnectionPool, *buckets: str) -> float:
        """Takes a token from each bucket in its own statement; the seconds to wait (0: taken)."""
        if not self.enabled:
            return 0.0
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT auth.rate_take(%s, %s, %s)",
                                     ([self.bucket(b) for b in buckets], self.capacity, self.per_second))
            wait = (await cur.fetchone())[0]
            await conn.commit()
        return wait

    async def hit(self, pool: AsyncConnectionPool, *buckets: str) -> None:
        """take(), and 429 when a bucket was empty."""
        wait = await self.take(pool, *buckets)
        if wait > 0:
            raise self.refuse(wait)
