"""What every use case and job receives: settings, database, cipher, bus and gateways."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from zapsync.bus.memory import EventBus
from zapsync.metrics.instruments import Metrics
from zapsync.providers.registry import GatewayFactory
from zapsync.runtime.background import BackgroundTasks
from zapsync.sandbox.world import World
from zapsync.security.crypto import Cipher
from zapsync.security.urls import url_policy
from zapsync.settings import Settings
from zapsync.store.db import Database


@dataclass
class AppContext:
    settings: Settings
    db: Database
    cipher: Cipher
    bus: EventBus
    gateways: GatewayFactory
    world: World = field(default_factory=World)
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    metrics: Metrics = field(default_factory=Metrics)
    # Scaled out (ZAPSYNC_JOBS=procrastinate): queues a session's import for a worker instead
    # of running it here; False when one is queued already. Set by the runtime.
    defer_import: Callable[[int, str], Coroutine[Any, Any, bool]] | None = None

    @classmethod
    def create(cls, settings: Settings, world: World | None = None) -> AppContext:
        world = world or World()
        bus = EventBus()
        return cls(
            settings=settings,
            db=Database(settings.database_url, publisher=bus.publish),
            cipher=Cipher(settings.resolved_secret_key(), settings.resolved_old_secret_keys()),
            bus=bus,
            gateways=GatewayFactory(
                world,
                settings.gateway_timeout,
                max_connections=max(100, settings.status_sync_concurrency * 2),
                policy=url_policy(settings),
            ),
            world=world,
        )

    async def aclose(self) -> None:
        await self.tasks.close()  # first: bus deliveries drained below may try to start work
        await self.bus.drain()
        await self.gateways.aclose()
        await self.db.dispose()
