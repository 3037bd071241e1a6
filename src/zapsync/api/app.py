"""The FastAPI app factory. Engine, settings and clients are built here (not at import) so
tests can hand in their own settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from zapsync import __version__
from zapsync.api.problems import install_problem_handlers
from zapsync.api.request_id import RequestIdMiddleware
from zapsync.api.routes import health, me
from zapsync.logs import configure_logging
from zapsync.services.context import AppContext
from zapsync.services.demo import Demo, load_demo
from zapsync.settings import Settings, load_settings


def announce_demo(settings: Settings, demo: Demo) -> None:
    # Printed, not logged: the demo token is the user's own local credential.
    print(
        f"\n  zapsync demo is up on {settings.public_url}\n"
        f"  API docs:   {settings.public_url}/docs\n"
        f"  demo token: {demo.token}  (also in {demo.token_file})\n",
        flush=True,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_format, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = AppContext.create(settings)
        app.state.ctx = ctx
        if settings.demo:
            demo = await load_demo(ctx)
            announce_demo(settings, demo)
        try:
            yield
        finally:
            await ctx.aclose()

    app = FastAPI(
        title="zapsync",
        version=__version__,
        description="Keeps WhatsApp connections, conversations and contacts true in one database.",
        lifespan=lifespan,
    )
    app.add_middleware(RequestIdMiddleware)
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(me.router)
    return app
