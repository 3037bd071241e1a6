"""A session's status history as the Conexões screen reads it, and status webhooks that
arrive out of order (gateways post them concurrently)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import Tenant, problem_of
from tests.support.contracts import sample
from tests.support.sessions import insert_session
from zapsync.runtime.context import AppContext
from zapsync.services.maintenance import STATUS_HISTORY_DAYS
from zapsync.store.models import SessionStatusEvent
from zapsync.store.sessions import delete_status_events_before
from zapsync.store.types import utcnow

SECRET = {"X-Zapsync-Token": "hook-secret"}


async def settle(app: FastAPI) -> None:
    await app.state.sandbox_pump.drain()
    ctx: AppContext = app.state.ctx
    await ctx.bus.drain()


async def history(client: httpx.AsyncClient, tenant: Tenant, sid: int, **params: Any) -> Any:
    resp = await client.get(
        f"/api/v1/sessions/{sid}/status-history", headers=tenant.headers, params=params
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_pairing_and_a_found_drop_are_listed_newest_first_page_by_page(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "demo", "provider": "sandbox", "config": {}},
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    await client.post(f"/api/v1/sandbox/sessions/{sid}/scan", headers=tenant.headers)
    await settle(app)
    await client.post(f"/api/v1/sandbox/sessions/{sid}/drop", headers=tenant.headers)
    await client.post(f"/api/v1/sessions/{sid}/status-sync", headers=tenant.headers)
    await settle(app)

    full = await history(client, tenant, sid)
    moves = [
        (e["from_status"], e["to_status"], e["source"])
        for e in full["events"]
        if e["from_status"] != e["to_status"]  # the recovery's attempts, if any
    ]
    # Newest first: the pairing, then the drop the status sync found (the recovery that follows
    # reconnects it by itself, reported by a webhook or by the recovery: timing decides).
    pairing = ("qr_pending", "connected", "webhook")
    drop = ("connected", "disconnected", "check")
    assert pairing in moves and drop in moves, moves
    assert moves.index(drop) < moves.index(pairing)
    assert moves[-1][1] == "qr_pending"
    ids = [e["id"] for e in full["events"]]
    assert ids == sorted(ids, reverse=True)
    assert full["next_before"] is None

    # Page by page, the same rows, each once.
    seen: list[int] = []
    before = None
    while True:
        page = await history(client, tenant, sid, limit=1, **({"before": before} if before else {}))
        seen += [e["id"] for e in page["events"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == ids


async def test_another_organizations_history_is_404_and_bad_paging_is_a_problem(
    ctx: AppContext, client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution")
    resp = await client.get(f"/api/v1/sessions/{sid}/status-history", headers=other_tenant.headers)
    assert resp.status_code == 404
    problem_of(resp)
    resp = await client.get(
        f"/api/v1/sessions/{sid}/status-history", headers=tenant.headers, params={"limit": 0}
    )
    assert resp.status_code == 422
    problem_of(resp)


def connection_update(state: str, date_time: str) -> bytes:
    body = sample(
        f"evolution/webhook.connection-update.{'open' if state == 'open' else 'close'}.json"
    )
    body["data"]["state"] = state
    body["data"]["statusReason"] = 200
    body["date_time"] = date_time
    return json.dumps(body).encode()


async def test_a_pairings_connecting_delivered_after_its_open_leaves_it_connected(
    ctx: AppContext, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution")
    url = f"/api/v1/webhooks/evolution/{sid}"
    # Posted at once by the gateway: `open` (the later) is delivered first.
    for body in (
        connection_update("open", "2026-11-20T11:03:12.004Z"),
        connection_update("connecting", "2026-11-20T11:03:11.512Z"),
    ):
        resp = await client.post(url, content=body, headers=SECRET)
        assert resp.status_code == 200, resp.text
    session = (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()
    assert session["status"] == "connected"
    moves = [
        (e["from_status"], e["to_status"]) for e in (await history(client, tenant, sid))["events"]
    ]
    assert moves == [("qr_pending", "connected")], "the late `connecting` is recorded nowhere"

    # A newer report moves it as before.
    resp = await client.post(
        url, content=connection_update("connecting", "2026-11-20T11:05:00.000Z"), headers=SECRET
    )
    assert resp.status_code == 200, resp.text
    session = (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()
    assert session["status"] == "connecting"


async def test_the_cleanup_trims_history_older_than_its_retention(
    ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution")
    old = utcnow() - timedelta(days=STATUS_HISTORY_DAYS + 1)
    async with ctx.db.session() as db:
        for at in (old, utcnow()):
            db.add(
                SessionStatusEvent(
                    session_id=sid,
                    organization_id=tenant.organization_id,
                    from_status="connecting",
                    to_status="connected",
                    source="webhook",
                    at=at,
                )
            )
        await db.commit()
    async with ctx.db.session() as db:
        cutoff = utcnow() - timedelta(days=STATUS_HISTORY_DAYS)
        assert await delete_status_events_before(db, cutoff, organization_id=None) == 1
        await db.commit()
