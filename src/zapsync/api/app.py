"""The FastAPI app factory. Engine, settings and clients are built here (not at import) so
tests can hand in their own settings."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from zapsync import __version__
from zapsync.api.body_limit import BodyLimitMiddleware, BodyRule, megabytes
from zapsync.api.docs import install_docs
from zapsync.api.openapi import install_openapi
from zapsync.api.problems import install_problem_handlers
from zapsync.api.realtime import Realtime
from zapsync.api.request_id import RequestIdMiddleware
from zapsync.api.routes import (
    auth,
    chatwoot_webhooks,
    contacts,
    conversations,
    health,
    inbound_media,
    integrations,
    jobs,
    me,
    media,
    metrics,
    sandbox,
    sessions,
    status_sync,
    sync,
    webhooks,
)
from zapsync.api.urls import webhook_urls
from zapsync.api.web_page import install_web_page
from zapsync.api.webhook_limits import WebhookLimits
from zapsync.logs import configure_logging
from zapsync.runtime.context import AppContext
from zapsync.runtime.wiring import Runtime
from zapsync.sandbox.world import World
from zapsync.services.credential_rotation import rotate_stored_credentials
from zapsync.services.demo import Demo, load_demo
from zapsync.services.demo_chatwoot import (
    DEMO_CHATWOOT_PORT_OFFSET,
    DemoChatwoot,
    load_demo_chatwoot,
)
from zapsync.services.ingest.refusals import RefusalCounter
from zapsync.services.ingest.secrets import seal_legacy_secrets
from zapsync.services.ingest.webhooks import KnownSessions
from zapsync.services.logins import LoginLimits
from zapsync.services.media import max_bytes
from zapsync.settings import Settings, load_settings

log = structlog.get_logger(__name__)

WEBHOOK_SETTING = "ZAPSYNC_WEBHOOK_MAX_BODY_MB"


def announce_demo(settings: Settings, demo: Demo, chatwoot_url: str) -> None:
    # Printed, not logged: the demo token is the user's own local credential.
    password = (
        f"password: {demo.password}  (in {demo.password_file})"
        if demo.password
        else "with the password you set (zapsync admin set-password)"
    )
    print(
        f"\n  zapsync demo is up on {settings.public_url}\n"
        f"  log in at   {settings.public_url}/  e-mail: {demo.email}  {password}\n"
        f"  API docs:   {settings.public_url}/docs\n"
        f"  demo token: {demo.token}  (also in {demo.token_file})\n"
        f"  pair the demo phone: curl -X POST -H 'Authorization: Bearer {demo.token}' "
        f"{settings.public_url}/api/v1/sandbox/sessions/{demo.session_id}/scan\n"
        f"  its Chatwoot (sandbox, bridged to the demo phone): "
        f"{chatwoot_url}/_sandbox/chatwoot/state\n",
        flush=True,
    )


def body_rules(settings: Settings) -> list[BodyRule]:
    webhook_bytes = int(settings.webhook_max_body_mb * 1024 * 1024)
    upload_bytes = max_bytes(settings) + conversations.MULTIPART_OVERHEAD
    return [
        BodyRule("POST", re.compile(webhooks.PATH), webhook_bytes, megabytes(WEBHOOK_SETTING)),
        BodyRule(
            "POST",
            re.compile(chatwoot_webhooks.PATH),
            webhook_bytes,
            megabytes(WEBHOOK_SETTING),
        ),
        BodyRule("POST", re.compile(conversations.SEND_PATH), upload_bytes, upload_too_large),
    ]


def upload_too_large(limit: int) -> str:
    return f"the upload is larger than the {limit / 1024 / 1024:g} MB limit (ZAPSYNC_MAX_UPLOAD_MB)"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_format, settings.log_level, settings.debug_logger_names)
    world = World()  # the in-process sandbox gateway's simulated WhatsApp
    realtime = Realtime(settings)
    # The demo's Chatwoot, on the port after zapsync's (services/demo_chatwoot.py).
    demo_chatwoot = (
        DemoChatwoot(
            settings.host, settings.demo_chatwoot_port or settings.port + DEMO_CHATWOOT_PORT_OFFSET
        )
        if settings.demo
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = AppContext.create(settings, world)
        app.state.ctx = ctx
        await seal_legacy_secrets(ctx)  # plaintext webhook secrets from before 0003
        await rotate_stored_credentials(ctx.db, ctx.cipher)  # before anything decrypts
        runtime = Runtime(ctx, scheduler=settings.scheduler_enabled)
        realtime.attach(ctx)
        app.state.realtime = realtime
        app.state.webhooks = runtime.webhooks
        app.state.webhook_sessions = KnownSessions(ctx)
        app.state.webhook_limits = WebhookLimits(
            settings.webhook_rate_limit, settings.webhook_refusal_limit
        )
        app.state.webhook_refusals = RefusalCounter()
        app.state.login_limits = LoginLimits(settings.login_failure_limit)
        app.state.sandbox_pump = runtime.sandbox_pump
        app.state.outbox = runtime.outbox
        app.state.forwards = runtime.forwards
        app.state.scheduler = runtime.scheduler
        await runtime.start()
        if settings.demo:
            demo = await load_demo(ctx, webhook_urls(settings))
            chatwoot_url = ""
            if demo_chatwoot is not None:
                await demo_chatwoot.start()
                await load_demo_chatwoot(ctx, demo_chatwoot, demo.organization_id, demo.session_id)
                chatwoot_url = demo_chatwoot.url
            announce_demo(settings, demo, chatwoot_url)
        log.info("zapsync started", version=__version__, database=ctx.db.engine.dialect.name)
        # What startup built (modules, routes, schemas: ~200,000 objects) lives as long as the
        # app: out of the collector's sight, a full collection stops the event loop for a few
        # ms, not the 120-240 ms it took with them, which every webhook in flight waited out
        # (issue 12, SQLite at 5 M with 8 agents browsing). Given back at shutdown.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await runtime.stop()
            await realtime.close()
            await ctx.aclose()
            if demo_chatwoot is not None:
                await demo_chatwoot.stop()

    app = FastAPI(
        title="zapsync",
        version=__version__,
        description="Keeps WhatsApp connections, conversations and contacts true in one database.",
        lifespan=lifespan,
        docs_url=None,  # served from the bundled Swagger UI below, not a CDN
        redoc_url=None,
        # One schema per model: an answer may leave out a field that has a default (a
        # conversation without a contact), which a serialization schema would call required.
        separate_input_output_schemas=False,
    )
    app.add_middleware(BodyLimitMiddleware, rules=body_rules(settings))
    app.add_middleware(RequestIdMiddleware)
    install_problem_handlers(app)
    install_openapi(app)
    install_docs(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(auth.router)
    app.include_router(me.router)
    app.include_router(sessions.router)
    app.include_router(status_sync.router)
    app.include_router(webhooks.router)
    app.include_router(jobs.router)
    app.include_router(jobs.cron_router)
    app.include_router(sandbox.router)
    app.include_router(conversations.router)
    app.include_router(contacts.router)
    app.include_router(media.router)
    app.include_router(inbound_media.router)
    app.include_router(integrations.router)
    app.include_router(chatwoot_webhooks.router)
    app.include_router(sync.router)
    app.mount("/socket.io", realtime.asgi_app())
    install_web_page(app)
    return app
