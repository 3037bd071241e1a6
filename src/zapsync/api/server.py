"""How `zapsync serve` runs the app under uvicorn: the one place its server options live, so a
test can start the server exactly as `serve` does."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from zapsync.settings import Settings


def server_config(
    application: FastAPI, settings: Settings, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """uvicorn's config for `application`.

    The keep-alive timeout outlasts the gateways' own: Node's HTTP agent (Evolution, WAHA)
    reuses an idle connection for up to 5 s, uvicorn's default; a server that closes at the
    same moment races the gateway's next delivery, which then fails with "socket hang up"."""
    return uvicorn.Config(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_level="warning",
        access_log=False,
        log_config=None,  # uvicorn's lines go through zapsync's masked handler (logs.py)
        timeout_keep_alive=settings.keepalive_timeout,
    )
