"""The built-in sandbox gateway: pair by QR from the API, status follows in-process events."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from tests.conftest import Tenant
from zapsync.cli.worker import SANDBOX_OUT_OF_REACH
from zapsync.runtime.context import AppContext


async def settle(app: FastAPI) -> None:
    await app.state.sandbox_pump.drain()
    ctx: AppContext = app.state.ctx
    await ctx.bus.drain()


async def test_sandbox_session_pairs_after_a_scan_and_heals_a_silent_drop(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "demo", "provider": "sandbox", "config": {}},
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert created.json()["status"] == "qr_pending"
    assert created.json()["qr"]["code"]

    scan = await client.post(f"/api/v1/sandbox/sessions/{sid}/scan", headers=tenant.headers)
    assert scan.status_code == 200, scan.text
    await settle(app)
    session = (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()
    assert session["status"] == "connected"
    assert session["phone"] == "5511900000001"

    await client.post(f"/api/v1/sandbox/sessions/{sid}/drop", headers=tenant.headers)
    await settle(app)
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()[
        "status"
    ] == "connected", "a silent drop sends no event"
    report = (
        await client.post(f"/api/v1/sessions/{sid}/status-sync", headers=tenant.headers)
    ).json()
    assert report["changed"] == [{"session_id": sid, "from": "connected", "to": "disconnected"}]
    await settle(app)
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()[
        "status"
    ] == "connected"


async def test_healing_gives_up_to_failed_after_the_configured_tries(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    events: list[dict[str, object]] = []

    async def listen(event: object) -> None:
        data = getattr(event, "data", {})
        if getattr(event, "name", "") == "session_status":
            events.append(data)

    ctx.bus.subscribe(listen)
    sid = (
        await client.post(
            "/api/v1/sessions",
            headers=tenant.headers,
            json={"name": "demo", "provider": "sandbox", "config": {}},
        )
    ).json()["id"]
    await client.post(f"/api/v1/sandbox/sessions/{sid}/scan", headers=tenant.headers)
    await settle(app)
    inst = ctx.world.get(f"zapsync-{sid}")
    assert inst is not None
    # the phone's pairing is gone: every restart comes back needing a new QR
    ctx.world.drop(inst)
    inst.logged_out = True
    inst.phone = None
    statuses = []
    for _ in range(ctx.settings.heal_max_attempts + 2):
        report = (
            await client.post(f"/api/v1/sessions/{sid}/status-sync", headers=tenant.headers)
        ).json()
        await settle(app)
        statuses.append(report)
        ctx.world.drop(inst)
        await asyncio.sleep(0)
    session = (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()
    assert session["status"] == "failed"
    assert "scan a new QR code" in session["status_reason"]
    assert any(e.get("action_required") for e in events)


async def test_a_worker_that_cannot_reach_the_sandbox_says_so_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Scaled out, a `zapsync worker` holds no built-in sandbox world: what it does for such
    a session fails with the reason, and never takes the session for logged out or gone."""
    created = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "demo", "provider": "sandbox", "config": {}},
    )
    sid = created.json()["id"]
    await client.post(f"/api/v1/sandbox/sessions/{sid}/scan", headers=tenant.headers)
    await settle(app)
    ctx: AppContext = app.state.ctx
    ctx.world.out_of_reach = SANDBOX_OUT_OF_REACH  # as `zapsync worker` sets it
    synced = await client.post(f"/api/v1/sessions/{sid}/status-sync", headers=tenant.headers)
    assert synced.status_code == 200, synced.text
    assert synced.json()["changed"] == []
    assert synced.json()["errors"] == [{"session_id": sid, "error": SANDBOX_OUT_OF_REACH}]
    session = (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()
    assert session["status"] == "connected"
