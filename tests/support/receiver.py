"""A real webhook endpoint for adapter tests: it keeps every POST a gateway (or the sandbox
dialect standing in for one) delivers, so a test can wait for the webhooks it expects."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response

from tests.support.servers import serve_in_thread
from zapsync.domain.gateway import WebhookEvent
from zapsync.providers.base import Gateway


@dataclass
class Delivery:
    path: str  # as requested, with its leading slash
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.body)
        return doc

    @property
    def event(self) -> str:
        """The event name of an enveloped body (Evolution, WAHA)."""
        return str(self.doc["event"])


@dataclass
class Receiver:
    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    # Deliveries arrive on the server's thread while the test reads them on its own.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def of(self, event: str) -> list[Delivery]:
        return [d for d in self.received() if d.event == event]

    async def wait_for(self, event: str, count: int = 1, within: float = 5.0) -> list[Delivery]:
        """At least `count` deliveries of the enveloped `event`."""
        for _ in range(int(within / 0.02)):
            if len(self.of(event)) >= count:
                return self.of(event)
            await asyncio.sleep(0.02)
        got = [d.event for d in self.received()]
        raise AssertionError(f"{count} {event} webhook(s) expected, got {got}")

    async def wait_for_event(
        self, gateway: Gateway, match: Callable[[WebhookEvent], bool], within: float = 5.0
    ) -> tuple[Delivery, Any]:
        """The first delivery whose event, as `gateway` parses it, satisfies `match`."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            deliveries = self.received()
            for delivery in deliveries:
                for event in gateway.parse_webhook(delivery.body):
                    if match(event):
                        return delivery, event
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no matching webhook among {len(deliveries)} deliveries")
            await asyncio.sleep(0.02)

    async def settle(self, quiet: float = 0.3) -> int:
        """Wait until nothing new arrived for `quiet` seconds; the number of deliveries."""
        seen = -1
        while seen != len(self.received()):
            seen = len(self.received())
            await asyncio.sleep(quiet)
        return seen


@contextmanager
def receiving(path: str = "") -> Iterator[Receiver]:
    """A Receiver on a real loopback port; its `url` is the server's base URL plus `path`.
    It takes a POST on any path, so a gateway may add its own suffix or query."""
    app = FastAPI()
    receiver = Receiver("")

    @app.post("/{rest:path}")
    async def receive(rest: str, request: Request) -> Response:
        delivery = Delivery(
            request.url.path,
            dict(request.query_params),
            dict(request.headers),
            await request.body(),
        )
        with receiver.lock:
            receiver.deliveries.append(delivery)
        return Response(status_code=200)

    with serve_in_thread(app) as url:
        receiver.url = url + path
        yield receiver
