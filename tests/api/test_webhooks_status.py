"""Gateway webhooks that change a session's status: verified, idempotent, never partial."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
from sqlalchemy import select

from tests.conftest import Tenant, problem_of
from tests.support.contracts import sample, sample_bytes
from tests.support.counts import table_counts
from tests.support.sessions import insert_session
from zapsync.runtime.context import AppContext
from zapsync.store.models import Session, SessionStatusEvent

SECRET = {"X-Zapsync-Token": "hook-secret"}


async def stored(ctx: AppContext, sid: int) -> tuple[str, list[str]]:
    async with ctx.db.session() as db:
        session = await db.get_one(Session, sid)
        events = (
            await db.scalars(
                select(SessionStatusEvent.to_status).where(SessionStatusEvent.session_id == sid)
            )
        ).all()
        return session.status, list(events)


async def test_connection_open_sets_connected_once_even_if_delivered_twice(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution")
    body = sample_bytes("evolution/webhook.connection-update.open.json")
    for _ in range(2):
        resp = await client.post(f"/api/v1/webhooks/evolution/{sid}", content=body, headers=SECRET)
        assert resp.status_code == 200, resp.text
    status, events = await stored(ctx, sid)
    assert status == "connected"
    assert events == ["connected"]


async def test_close_with_logged_out_code_is_logged_out_and_secret_may_be_a_query_param(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution", status="connected")
    body = sample_bytes("evolution/webhook.connection-update.close.json")
    resp = await client.post(f"/api/v1/webhooks/evolution/{sid}?token=hook-secret", content=body)
    assert resp.status_code == 200, resp.text
    assert (await stored(ctx, sid))[0] == "logged_out"


async def test_event_name_suffix_route_is_accepted(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution")
    body = sample_bytes("evolution/webhook.connection-update.open.json")
    resp = await client.post(
        f"/api/v1/webhooks/evolution/{sid}/connection-update", content=body, headers=SECRET
    )
    assert resp.status_code == 200
    assert (await stored(ctx, sid))[0] == "connected"


async def test_wrong_secret_is_401_and_writes_nothing(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution")
    body = sample_bytes("evolution/webhook.connection-update.open.json")
    before = await table_counts(ctx)
    for headers, url in [
        ({"X-Zapsync-Token": "wrong"}, f"/api/v1/webhooks/evolution/{sid}"),
        ({}, f"/api/v1/webhooks/evolution/{sid}"),
        (SECRET, f"/api/v1/webhooks/evolution/{sid + 1000}"),
        (SECRET, f"/api/v1/webhooks/waha/{sid}"),
    ]:
        resp = await client.post(url, content=body, headers=headers)
        assert resp.status_code == 401, (url, resp.text)
        problem_of(resp)
    assert await table_counts(ctx) == before
    assert (await stored(ctx, sid))[0] == "qr_pending"


async def test_malformed_body_is_400_with_a_reason_and_writes_nothing(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution")
    before = await table_counts(ctx)
    for body in [b"{not json", b"[]", b'{"event": "connection.update"}']:
        resp = await client.post(f"/api/v1/webhooks/evolution/{sid}", content=body, headers=SECRET)
        assert resp.status_code == 400, resp.text
        assert problem_of(resp)["title"] == "Malformed webhook"
    assert await table_counts(ctx) == before


async def test_unknown_event_is_accepted_and_ignored(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "evolution")
    body = json.dumps({"event": "presence.update", "instance": "vendas", "data": {}}).encode()
    before = await table_counts(ctx)
    resp = await client.post(f"/api/v1/webhooks/evolution/{sid}", content=body, headers=SECRET)
    assert resp.status_code == 202
    assert resp.json()["ignored"] == ["presence.update"]
    assert await table_counts(ctx) == before


async def test_waha_hmac_signature_authenticates_the_delivery(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    sid = await insert_session(ctx, tenant, "waha", status="connected", signing_key="sign-key")
    payload = sample("waha/webhook.session-status.json")
    # Signed now: a signed delivery older than the replay window is refused.
    now = int(time.time() * 1000)
    payload["timestamp"] = now
    for n, point in enumerate(payload["payload"]["statuses"]):
        point["timestamp"] = now - 3 + n
    body = json.dumps(payload).encode()
    good = hmac.new(b"sign-key", body, hashlib.sha512).hexdigest()
    bad = hmac.new(b"another-key", body, hashlib.sha512).hexdigest()
    url = f"/api/v1/webhooks/waha/{sid}"
    headers = {"X-Webhook-Hmac-Algorithm": "sha512"}
    refused = await client.post(url, content=body, headers={**headers, "X-Webhook-Hmac": bad})
    assert refused.status_code == 401
    assert (await stored(ctx, sid))[0] == "connected"
    ok = await client.post(url, content=body, headers={**headers, "X-Webhook-Hmac": good})
    assert ok.status_code == 200, ok.text
    assert (await stored(ctx, sid))[0] == "qr_pending"


async def test_qr_webhook_sets_qr_pending_and_publishes_the_code(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    from zapsync.bus.events import Event

    seen: list[Event] = []

    async def listen(event: Event) -> None:
        seen.append(event)

    ctx.bus.subscribe(listen)
    sid = await insert_session(ctx, tenant, "evolution", status="disconnected")
    body = sample_bytes("evolution/webhook.qrcode-updated.json")
    resp = await client.post(f"/api/v1/webhooks/evolution/{sid}", content=body, headers=SECRET)
    assert resp.status_code == 200, resp.text
    await ctx.bus.drain()
    assert (await stored(ctx, sid))[0] == "qr_pending"
    qr_events = [e for e in seen if e.name == "qr_updated"]
    assert qr_events and qr_events[0].data["code"]
    assert qr_events[0].organization_id == tenant.organization_id
