"""The ASGI app of `zapsync sandbox serve --dialect D`: one dialect, the control API, and the
fault injection that applies to the dialect's routes only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapsync.api.docs import install_docs
from zapsync.sandbox.control import build_control_router
from zapsync.sandbox.dialects import build_dialect
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import Fault, World


class FaultInjection:
    """Latency (before or after the handler), hangs, 5xx and malformed bodies on the dialect's
    routes (not /_sandbox).

    A plain ASGI middleware: Starlette's `@app.middleware("http")` costs about as much per
    request as the dialect handler itself, which the status-sync benchmark would measure."""

    def __init__(self, app: ASGIApp, world: World) -> None:
        self.app = app
        self.world = world

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        world = self.world
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        world.requests += 1
        if world.latency_ms:
            await asyncio.sleep(world.latency_ms / 1000)
        if world.fault is Fault.TIMEOUT:
            await asyncio.sleep(world.hang_seconds)
        if world.fault is Fault.ERROR:
            response: Response = JSONResponse({"error": "Internal Server Error"}, status_code=500)
            await response(scope, receive, send)
            return
        if world.fault is Fault.MALFORMED:
            response = Response(
                "<html>502 Bad Gateway</html>", status_code=200, media_type="application/json"
            )
            await response(scope, receive, send)
            return
        if world.answer_latency_ms:
            await self.app(scope, receive, _answered_late(send, world.answer_latency_ms))
            return
        await self.app(scope, receive, send)


def _answered_late(send: Send, latency_ms: int) -> Send:
    async def late(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(latency_ms / 1000)
        await send(message)

    return late


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

    app = FastAPI(
        title=f"zapsync sandbox ({dialect})", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    install_docs(app)  # offline, as zapsync's own
    app.state.world = world
    app.state.sender = sender
    app.state.dialect = front.state  # what the dialect's routes share
    app.add_middleware(FaultInjection, world=world)
    app.include_router(build_control_router(world))
    app.include_router(front.router)
    return app
