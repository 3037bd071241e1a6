"""Gateways reuse idle keep-alive connections for their next webhook (Node's agent keeps them
5 s); `zapsync serve` must keep them open longer, or deliveries fail with "socket hang up"."""

from __future__ import annotations

import asyncio

from tests.conftest import Tenant
from tests.support.contracts import sample_bytes
from tests.support.servers import free_port, serving
from tests.support.sessions import insert_session
from zapsync.api.app import create_app
from zapsync.api.server import server_config
from zapsync.runtime.context import AppContext
from zapsync.settings import Settings

BODY = sample_bytes("evolution/webhook.connection-update.open.json")
IDLE_SECONDS = 6  # one more than the gateways' keep-alive and uvicorn's default


async def deliver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sid: int) -> int:
    """One webhook on an open connection, as a gateway's keep-alive agent sends it; the status."""
    head = (
        f"POST /api/v1/webhooks/evolution/{sid} HTTP/1.1\r\n"
        "Host: zapsync\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
        f"X-Zapsync-Token: hook-secret\r\nContent-Length: {len(BODY)}\r\n\r\n"
    )
    writer.write(head.encode() + BODY)
    await writer.drain()
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = raw.decode().split("\r\n")
    length = next(int(v) for k, _, v in (h.partition(": ") for h in lines) if k == "content-length")
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def test_a_delivery_on_a_connection_idle_for_six_seconds_is_taken(
    settings: Settings, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution")
    port = free_port()
    config = server_config(create_app(settings), settings, host="127.0.0.1", port=port)
    async with serving(config):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            assert await deliver(reader, writer, sid) == 200
            await asyncio.sleep(IDLE_SECONDS)  # the idle time is what is under test
            assert await deliver(reader, writer, sid) == 200
        finally:
            writer.close()


def test_serve_keeps_idle_connections_longer_than_the_gateways(settings: Settings) -> None:
    assert settings.keepalive_timeout > IDLE_SECONDS
    config = server_config(create_app(settings), settings)
    assert config.timeout_keep_alive == settings.keepalive_timeout
