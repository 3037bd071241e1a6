"""Posts a dialect's webhooks to the registered URL the way real gateways do: at least once,
retrying timeouts, connection errors and 5xx with backoff, never retrying a 4xx answer."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

log = structlog.get_logger(__name__)

_NOT_RETRIED = {400, 401, 403, 404, 422}


@dataclass
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]
    attempts: int = 0
    last_status: int | None = None
    answered_at: float | None = None  # time.monotonic() of the last answer
    sent_at: float | None = None  # time.monotonic() of the first attempt


@dataclass
class WebhookSender:
    """Background webhook poster. `deliveries` records every attempt's outcome for tests.

    Evolution retries a failed delivery ten times with exponential backoff; the sandbox does
    too (with shorter, capped delays), so a loaded zapsync that answers one 5xx or times out
    once does not lose the event for good, as it would not against the real gateway.
    """

    attempts: int = 10
    base_delay: float = 0.2
    max_delay: float = 5.0
    timeout: float = 10.0
    deliveries: list[Delivery] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _client: httpx.AsyncClient | None = None

    def post(self, url: str, payload: Any, headers: dict[str, str] | None = None) -> Delivery:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return self.post_raw(url, body, headers)

    def post_raw(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> Delivery:
        delivery = Delivery(url, body, {"content-type": "application/json", **(headers or {})})
        self.deliveries.append(delivery)
        try:
            task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        except RuntimeError:  # no loop: called from a sync test helper
            return delivery
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def _deliver(self, d: Delivery) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        d.sent_at = time.monotonic()
        for attempt in range(1, self.attempts + 1):
            d.attempts = attempt
            try:
                resp = await self._client.post(d.url, content=d.body, headers=d.headers)
                d.last_status = resp.status_code
                d.answered_at = time.monotonic()
                if resp.status_code < 300 or resp.status_code in _NOT_RETRIED:
                    return
            except httpx.HTTPError as exc:
                log.info("sandbox webhook attempt failed", url=d.url, error=str(exc))
            await asyncio.sleep(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        log.warning("sandbox webhook gave up", url=d.url, attempts=d.attempts)

    async def drain(self) -> None:
        """Wait until every queued delivery finished (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
