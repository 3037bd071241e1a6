"""Rate limits with the `limits` library, reusable by any route (webhooks now, login later).

The counters live in this process's memory; `storage()` is the one place that says so, so a
deployment with several replicas can point every limiter at Redis
(`storage_from_string("async+redis://…")`) without touching a route.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string


def storage() -> Storage:
    backend = storage_from_string("async+memory://")
    assert isinstance(backend, Storage)
    return backend


class RateLimited(Exception):
    """Over the limit; `retry_after` is the whole seconds until the next hit is allowed."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = retry_after


class RateLimit:
    """One named limit (`"10/second;100/minute"`) counted per key (a session, an address)."""

    def __init__(self, name: str, rates: str, backend: Storage | None = None) -> None:
        self.name = name
        self.rates: list[RateLimitItem] = parse_many(rates)
        self._limiter = MovingWindowRateLimiter(backend or storage())

    async def hit(self, key: str) -> None:
        """Count one hit for `key`; raises RateLimited (without counting) when over."""
        for rate in self.rates:
            if not await self._limiter.test(rate, self.name, key):
                raise RateLimited(await self._retry_after(rate, key))
        for rate in self.rates:
            await self._limiter.hit(rate, self.name, key)

    async def check(self, key: str) -> None:
        """Raise RateLimited when `key` is over the limit, without counting a hit."""
        for rate in self.rates:
            if not await self._limiter.test(rate, self.name, key):
                raise RateLimited(await self._retry_after(rate, key))

    async def _retry_after(self, rate: RateLimitItem, key: str) -> int:
        stats = await self._limiter.get_window_stats(rate, self.name, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
