"""The ASGI app of `zapsync sandbox serve --dialect D`: one dialect, the control API, and the
fault injection that applies to the dialect's routes only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from zapsync.sandbox.control import build_control_router
from zapsync.sandbox.dialects import build_dialect
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import Fault, World


def build_sandbox_app(
    dialect: str, world: World | None = None, sender: WebhookSender | None = None
) -> FastAPI:
    world = world or World()
    sender = sender or WebhookSender()
    front = build_dialect(dialect, world, sender)
    world.subscribe(front.on_event)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await sender.aclose()

    app = FastAPI(title=f"zapsync sandbox ({dialect})", lifespan=lifespan)
    app.state.world = world
    app.state.sender = sender

    @app.middleware("http")
    async def inject_faults(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        world.requests += 1
        if world.latency_ms:
            await asyncio.sleep(world.latency_ms / 1000)
        if world.fault is Fault.TIMEOUT:
            await asyncio.sleep(world.hang_seconds)
        if world.fault is Fault.ERROR:
            return JSONResponse({"error": "Internal Server Error"}, status_code=500)
        if world.fault is Fault.MALFORMED:
            return Response(
                "<html>502 Bad Gateway</html>", status_code=200, media_type="application/json"
            )
        return await call_next(request)

    app.include_router(build_control_router(world))
    app.include_router(front.router)
    return app
