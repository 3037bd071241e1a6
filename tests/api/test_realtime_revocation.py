"""A socket's access ends with its token: revoking it (through the API in the serving process,
or with the CLI, another process) or removing its user closes the socket, and no event of
the organization reaches it afterwards."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import socketio

from tests.api.test_realtime import (
    Received,
    customer_writes,
    first,
    is_new,
    paired_session,
    server,
    socket,
)
from tests.conftest import Tenant
from zapsync.bus.events import Event
from zapsync.runtime.context import AppContext
from zapsync.services import accounts
from zapsync.settings import Settings


@pytest.fixture
async def another_token(ctx: AppContext, tenant: Tenant) -> Tenant:
    """A second token of the same admin: its socket must stay open when the first closes."""
    async with ctx.db.session() as db:
        user = await db.get_one(accounts.User, tenant.user_id)
        token, plain = await accounts.create_token(db, user, "second")
        await db.commit()
        return Tenant(tenant.organization_id, user.id, plain, token.id)


async def closed(client: socketio.AsyncClient, timeout: float) -> float:
    """Seconds until the server closed `client`, failing after `timeout`."""
    started = time.monotonic()
    while client.connected:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"the socket is still open after {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def nothing_more_after_close(
    http: httpx.AsyncClient, tenant: Tenant, sid: int, revoked: Received, kept: Received
) -> None:
    """A customer writes after the close: the open socket hears it, the closed one never."""
    before = len(revoked)
    await customer_writes(http, tenant, sid, "depois do fim")
    await first(kept, is_new("depois do fim"))
    assert revoked[before:] == []
    assert not any(is_new("depois do fim")(e, d) for e, d in revoked)


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "ZAPSYNC_SECRET_KEY": "test-secret-key",
        "ZAPSYNC_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "zapsync.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


@pytest.fixture
async def slow_recheck(settings: Settings) -> AsyncIterator[str]:
    """A server whose periodic re-check would come too late: only the bus event can act."""
    async with server(settings.model_copy(update={"socket_recheck_seconds": 3600.0})) as url:
        yield url


@pytest.fixture
async def quick_recheck(settings: Settings) -> AsyncIterator[str]:
    async with server(settings.model_copy(update={"socket_recheck_seconds": 0.2})) as url:
        yield url


async def test_revoking_through_the_api_closes_its_sockets_at_once(
    slow_recheck: str, tenant: Tenant, another_token: Tenant
) -> None:
    async with httpx.AsyncClient(base_url=slow_recheck) as http:
        sid = await paired_session(http, tenant)
        async with (
            socket(slow_recheck, auth={"token": tenant.token}) as (doomed, revoked),
            socket(slow_recheck, auth={"token": another_token.token}) as (kept_open, kept),
        ):
            resp = await http.delete(
                f"/api/v1/tokens/{tenant.token_id}", headers=another_token.headers
            )
            assert resp.status_code == 204, resp.text
            assert await closed(doomed, timeout=2.0) < 2.0
            assert any(e == "access_revoked" for e, _ in revoked)
            assert kept_open.connected
            await nothing_more_after_close(http, another_token, sid, revoked, kept)
            again = await http.delete(
                f"/api/v1/tokens/{tenant.token_id}", headers=another_token.headers
            )
            assert again.status_code == 404


async def test_an_agent_revokes_only_their_own_tokens(
    slow_recheck: str, tenant: Tenant, agent: Tenant
) -> None:
    async with httpx.AsyncClient(base_url=slow_recheck) as http:
        theirs = await http.delete(f"/api/v1/tokens/{tenant.token_id}", headers=agent.headers)
        assert theirs.status_code == 404
        assert (await http.get("/api/v1/me", headers=tenant.headers)).status_code == 200
        own = await http.delete(f"/api/v1/tokens/{agent.token_id}", headers=agent.headers)
        assert own.status_code == 204
        assert (await http.get("/api/v1/me", headers=agent.headers)).status_code == 401


async def test_revoking_with_the_cli_closes_its_sockets_within_the_recheck(
    quick_recheck: str, settings: Settings, tenant: Tenant, another_token: Tenant
) -> None:
    async with httpx.AsyncClient(base_url=quick_recheck) as http:
        sid = await paired_session(http, tenant)
        async with (
            socket(quick_recheck, auth={"token": tenant.token}) as (doomed, revoked),
            socket(quick_recheck, auth={"token": another_token.token}) as (kept_open, kept),
        ):
            await asyncio.to_thread(cli, settings, "admin", "revoke-token", str(tenant.token_id))
            assert await closed(doomed, timeout=3.0) < 3.0
            assert kept_open.connected
            await nothing_more_after_close(http, another_token, sid, revoked, kept)


async def test_removing_a_user_closes_their_sockets(
    quick_recheck: str, settings: Settings, tenant: Tenant, agent: Tenant
) -> None:
    async with httpx.AsyncClient(base_url=quick_recheck) as http:
        sid = await paired_session(http, tenant)
        async with (
            socket(quick_recheck, auth={"token": agent.token}) as (doomed, revoked),
            socket(quick_recheck, auth={"token": tenant.token}) as (kept_open, kept),
        ):
            await asyncio.to_thread(
                cli, settings, "admin", "remove-user", "--email", "agent@acme.test"
            )
            assert await closed(doomed, timeout=3.0) < 3.0
            assert kept_open.connected
            await nothing_more_after_close(http, tenant, sid, revoked, kept)
        assert (await http.get("/api/v1/me", headers=agent.headers)).status_code == 401


async def test_revoking_and_removing_publish_access_revoked(
    ctx: AppContext, tenant: Tenant, agent: Tenant
) -> None:
    """What carries a revocation to every replica's sockets once the bus is shared."""
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    ctx.bus.subscribe(collect, names={"access_revoked"})
    async with ctx.db.session() as db:
        await accounts.revoke_token(db, tenant.token_id, bus=ctx.bus)
        user = await db.get_one(accounts.User, agent.user_id)
        await accounts.remove_user(db, user, bus=ctx.bus)
        assert seen == [], "nothing before the commit"
        await db.commit()
    await ctx.bus.drain()
    assert [(e.organization_id, e.data) for e in seen] == [
        (tenant.organization_id, {"token_ids": [tenant.token_id]}),
        (tenant.organization_id, {"token_ids": [agent.token_id], "user_id": agent.user_id}),
    ]
