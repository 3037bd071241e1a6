"""Run an ASGI app on a real loopback port for tests that must go over HTTP."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import uvicorn

from zapsync.api.app import create_app
from zapsync.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread with its own event loop; yields the base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    # A loaded machine can take seconds to run an app's start-up: wait for it, never yield a
    # URL nobody listens on yet.
    for _ in range(3000):
        if server.started:
            break
        if not thread.is_alive():
            raise RuntimeError("test server failed to start")
        threading.Event().wait(0.01)
    else:
        server.should_exit = True
        raise RuntimeError("test server did not start within 30 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        # Its shutdown finished (the outbox lets a pass end, up to its grace) before the next
        # server of the same database starts; then what a cancelled task left open is freed,
        # or an SQLite connection of it could keep the write lock.
        thread.join(timeout=60)
        gc.collect()
        if thread.is_alive():
            raise RuntimeError("test server did not stop within 60 s")


@asynccontextmanager
async def serving(config: uvicorn.Config) -> AsyncIterator[str]:
    """Run a uvicorn server built from `config` in a thread; yields its base URL. Waits without
    blocking the test's own loop, whose app may hold the database meanwhile."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = asyncio.get_running_loop().time() + 30
    while not server.started:
        if not thread.is_alive() or asyncio.get_running_loop().time() > deadline:
            raise RuntimeError("test server failed to start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)


@asynccontextmanager
async def serving_app(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """`serve_in_thread` for a test whose own loop runs an app on the same database: waits for
    the start-up without blocking that loop (its open transaction would hold the lock the
    served app's start-up needs)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port or free_port(), log_level="warning", lifespan="on"
    )
    async with serving(config) as url:
        yield url


@contextmanager
def serving_zapsync(settings: Settings, **overrides: Any) -> Iterator[str]:
    """zapsync on a free port, telling gateways to post their webhooks to it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    served = settings.model_copy(update={"public_url": url, **overrides})
    with serve_in_thread(create_app(served), port):
        yield url
