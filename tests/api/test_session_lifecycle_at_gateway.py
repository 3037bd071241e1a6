"""A session's life at the gateway, against each dialect's sandbox over real HTTP: a logout
that sticks, a QR read that changes nothing, an instance deleted behind zapsync's back, one
instance reached by two URLs, what DELETE leaves at the gateway, and no database lock held
while a gateway answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from tests.conftest import Tenant, problem_of
from tests.support.contracts import sample
from tests.support.gateways import KEYS, SandboxGateway, create_session
from tests.support.servers import serve_in_thread
from zapsync.bus.events import Event
from zapsync.runtime.context import AppContext
from zapsync.sandbox.server import build_sandbox_app
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import World
from zapsync.services.ingest.secrets import secrets_of
from zapsync.store.models import Session, SessionStatusEvent


class Sandbox(SandboxGateway):
    """A dialect server whose world the test can also read (requests seen)."""

    world: World

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to the dialect's own API with the global key, as a team's script would."""
        headers = {"apikey": KEYS["evolution"]} if self.dialect == "evolution" else {}
        return httpx.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)

    def webhook_at_evolution(self, name: str) -> Any:
        return self.api("GET", f"/webhook/find/{name}").json()

    def delete_behind_zapsync(self, name: str) -> None:
        self.api("DELETE", f"/_sandbox/instances/{name}").raise_for_status()

    def exists(self, name: str) -> bool:
        return self.api("GET", f"/_sandbox/instances/{name}").status_code == 200


@pytest.fixture(scope="module", params=["evolution", "waha", "megaapi"])
def gateway(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    yield from _serve(request.param)


@pytest.fixture(scope="module")
def evolution() -> Iterator[Sandbox]:
    yield from _serve("evolution")


@pytest.fixture(scope="module", params=["evolution", "waha"])
def reconnecting(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Gateways that bring a session back by themselves after a logout: Evolution's
    reconnect loop, WAHA's restart on to a fresh QR."""
    yield from _serve(request.param)


def _serve(dialect: str) -> Iterator[Sandbox]:
    world = World()
    app = build_sandbox_app(dialect, world, WebhookSender(attempts=1, timeout=2.0))
    with serve_in_thread(app) as url:
        gw = Sandbox(dialect, url)
        gw.world = world
        yield gw


@pytest.fixture(autouse=True)
def _no_fault(request: pytest.FixtureRequest) -> Iterator[None]:
    gateways = [
        request.getfixturevalue(name)
        for name in ("gateway", "evolution", "reconnecting")
        if name in request.fixturenames
    ]
    yield
    for gw in gateways:
        gw.fault("none")


async def _session(client: httpx.AsyncClient, tenant: Tenant, sid: int) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _state(gateway: SandboxGateway, name: str) -> str:
    return str(gateway.instance(name)["state"])


async def _secret(ctx: AppContext, sid: int) -> str:
    async with ctx.db.session() as db:
        session = await db.get_one(Session, sid)
        return secrets_of(ctx.cipher, session).secret


async def _post_evolution_webhook(
    client: httpx.AsyncClient, ctx: AppContext, sid: int, instance: str, body: dict[str, Any]
) -> httpx.Response:
    body = {**body, "instance": instance}
    return await client.post(
        f"/api/v1/webhooks/evolution/{sid}",
        content=json.dumps(body),
        headers={"X-Zapsync-Token": await _secret(ctx, sid), "content-type": "application/json"},
    )


# --- a logout sticks ------------------------------------------------------------------


async def test_a_logout_sticks_through_the_gateways_own_reconnects(
    client: httpx.AsyncClient, tenant: Tenant, reconnecting: Sandbox
) -> None:
    gateway = reconnecting
    dialect = gateway.dialect
    instance = gateway.new_instance()
    sid = (await create_session(client, tenant, gateway, instance))["id"]
    gateway.scan(instance)
    await client.post("/api/v1/status-sync", headers=tenant.headers)
    if dialect == "evolution":
        # A silent drop: the socket is `close`, so Evolution refuses the logout with a 400
        # ("is not connected") while its reconnect loop goes on.
        gateway.drop(instance)

    logout = await client.post(f"/api/v1/sessions/{sid}/logout", headers=tenant.headers)
    assert logout.status_code == 200, logout.text
    assert logout.json()["status"] == "logged_out"
    if dialect == "evolution":
        gateway.control("/evolution/reconnect-tick")

    assert _state(gateway, instance) == "stopped", "the gateway must not reconnect by itself"
    assert gateway.instance(instance)["logged_out"] is True
    await client.post("/api/v1/status-sync", headers=tenant.headers)
    assert (await _session(client, tenant, sid))["status"] == "logged_out"


async def test_a_stray_connecting_never_moves_a_logged_out_session(
    client: httpx.AsyncClient, tenant: Tenant, evolution: Sandbox, ctx: AppContext
) -> None:
    instance = evolution.new_instance()
    sid = (await create_session(client, tenant, evolution, instance))["id"]
    logout = await client.post(f"/api/v1/sessions/{sid}/logout", headers=tenant.headers)
    assert logout.json()["status"] == "logged_out"

    # What a real 2.3.6 posts, dozens a minute, while its reconnect loop runs.
    connecting = sample("evolution/real-2.3.6/wh-inst-connection_update.json")["body"]
    connecting["data"]["instance"] = instance
    resp = await _post_evolution_webhook(client, ctx, sid, instance, connecting)
    assert resp.status_code == 200, resp.text
    qr = sample("evolution/webhook.qrcode-updated.json")
    resp = await _post_evolution_webhook(client, ctx, sid, instance, qr)
    assert resp.status_code == 200, resp.text
    assert (await _session(client, tenant, sid))["status"] == "logged_out"

    # A new pairing does move it.
    opened = sample("evolution/webhook.connection-update.open.json")
    resp = await _post_evolution_webhook(client, ctx, sid, instance, opened)
    assert resp.status_code == 200, resp.text
    assert (await _session(client, tenant, sid))["status"] == "connected"


# --- reading a QR changes nothing; connect pairs and answers the QR -------------------


async def test_reading_the_qr_of_a_logged_out_session_starts_nothing(
    client: httpx.AsyncClient, tenant: Tenant, gateway: Sandbox
) -> None:
    instance = gateway.new_instance()
    sid = (await create_session(client, tenant, gateway, instance))["id"]
    gateway.scan(instance)
    await client.post(f"/api/v1/sessions/{sid}/logout", headers=tenant.headers)
    before = gateway.instance(instance)

    resp = await client.get(f"/api/v1/sessions/{sid}/qr", headers=tenant.headers)
    assert resp.status_code == 409, resp.text
    assert "logged out" in problem_of(resp)["detail"]
    assert "/connect" in problem_of(resp)["detail"]
    after = gateway.instance(instance)
    assert (after["state"], after["qr_code"]) == (before["state"], before["qr_code"])
    assert (await _session(client, tenant, sid))["status"] == "logged_out"


async def test_reading_the_qr_of_a_closed_evolution_instance_starts_nothing(
    client: httpx.AsyncClient, tenant: Tenant, evolution: Sandbox
) -> None:
    instance = evolution.new_instance()
    sid = (await create_session(client, tenant, evolution, instance))["id"]
    evolution.scan(instance)
    evolution.drop(instance)  # `close`: Evolution's `connect` would start a socket

    resp = await client.get(f"/api/v1/sessions/{sid}/qr", headers=tenant.headers)
    assert resp.status_code == 422, resp.text
    assert "/connect" in problem_of(resp)["detail"]
    assert _state(evolution, instance) == "stopped"


async def test_connect_brings_a_logged_out_evolution_session_back_with_its_qr(
    client: httpx.AsyncClient, tenant: Tenant, evolution: Sandbox
) -> None:
    instance = evolution.new_instance()
    sid = (await create_session(client, tenant, evolution, instance))["id"]
    await client.post(f"/api/v1/sessions/{sid}/logout", headers=tenant.headers)

    resp = await client.post(f"/api/v1/sessions/{sid}/connect", headers=tenant.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "qr_pending"
    assert body["qr"]["code"] == evolution.instance(instance)["qr_code"]
    assert body["qr_reason"] is None


async def test_a_create_that_replaces_a_teams_webhook_says_so_and_logs_it(
    client: httpx.AsyncClient, tenant: Tenant, evolution: Sandbox
) -> None:
    instance = evolution.new_instance()
    team = "http://127.0.0.1:9/n8n/webhook"
    made = evolution.api(
        "POST",
        "/instance/create",
        json={"instanceName": instance, "webhook": {"url": team, "events": []}},
    )
    assert made.status_code == 201, made.text

    with capture_logs() as logs:
        created = await create_session(client, tenant, evolution, instance)
    assert created["replaced_webhook"] == team and created["forward_to"] == team
    assert any(e.get("previous_url") == team and e["log_level"] == "warning" for e in logs)
    assert evolution.webhook_at_evolution(instance)["url"].endswith(f"/evolution/{created['id']}")
    listed = await _session(client, tenant, created["id"])
    assert listed["forward_to"] == team and "forward_secret" not in listed


async def test_a_create_without_a_qr_says_why(
    client: httpx.AsyncClient, tenant: Tenant, evolution: Sandbox
) -> None:
    instance = evolution.new_instance()
    made = evolution.api(
        "POST", "/instance/create", json={"instanceName": instance, "qrcode": True}
    )
    assert made.status_code == 201, made.text
    evolution.scan(instance)

    created = await create_session(client, tenant, evolution, instance)
    assert created["status"] == "connected"
    assert created["qr"] is None
    assert "connected" in created["qr_reason"]


# --- an instance deleted outside zapsync ----------------------------------------------


async def test_an_instance_deleted_at_the_gateway_shows_failed_and_is_left_alone(
    client: httpx.AsyncClient, tenant: Tenant, gateway: Sandbox, ctx: AppContext
) -> None:
    instance = gateway.new_instance()
    sid = (await create_session(client, tenant, gateway, instance))["id"]
    gateway.scan(instance)
    await client.post("/api/v1/status-sync", headers=tenant.headers)
    gateway.delete_behind_zapsync(instance)
    events: list[Event] = []

    async def keep(event: Event) -> None:
        events.append(event)

    ctx.bus.subscribe(keep, names={"session_status"})

    report = (await client.post("/api/v1/status-sync", headers=tenant.headers)).json()
    await ctx.bus.drain()
    ctx.bus.unsubscribe(keep)
    [told] = [e for e in events if e.data.get("status") == "failed"]
    assert told.data["action_required"] is True and told.data["session_id"] == sid
    assert {"session_id": sid, "from": "connected", "to": "failed"} in report["changed"]
    assert report["errors"] == []
    session = await _session(client, tenant, sid)
    assert session["status"] == "failed"
    assert session["status_reason"].startswith("gone:")
    assert "not" in session["status_reason"] or "exist" in session["status_reason"]

    await ctx.tasks.drain()  # the import the connection started asks the gateway too
    seen = gateway.world.requests
    again = (await client.post("/api/v1/status-sync", headers=tenant.headers)).json()
    assert again["checked"] == 0 and again["errors"] == [] and again["healing"] == []
    assert gateway.world.requests == seen, "a gone instance is not asked again"
    connect = await client.post(f"/api/v1/sessions/{sid}/connect", headers=tenant.headers)
    assert connect.status_code == 409
    assert "no longer exists" in problem_of(connect)["detail"]
    async with ctx.db.session() as db:
        history = (
            await db.scalars(
                select(SessionStatusEvent.to_status).where(SessionStatusEvent.session_id == sid)
            )
        ).all()
    assert history.count("failed") == 1


async def test_the_live_status_of_a_deleted_instance_marks_it_failed(
    client: httpx.AsyncClient, tenant: Tenant, evolution: Sandbox
) -> None:
    instance = evolution.new_instance()
    sid = (await create_session(client, tenant, evolution, instance))["id"]
    evolution.delete_behind_zapsync(instance)

    live = await client.get(f"/api/v1/sessions/{sid}/status", headers=tenant.headers)
    assert live.status_code == 409, live.text
    assert "does not exist" in problem_of(live)["detail"]
    assert (await _session(client, tenant, sid))["status"] == "failed"


# --- one Evolution instance, two URLs -------------------------------------------------


async def test_the_same_evolution_instance_by_another_url_is_409(
    client: httpx.AsyncClient, tenant: Tenant, evolution: Sandbox
) -> None:
    instance = evolution.new_instance()
    first = await create_session(client, tenant, evolution, instance)
    other_url = evolution.config(instance)
    other_url["base_url"] = evolution.base_url.replace("127.0.0.1", "localhost")
    hook_before = evolution.webhook_at_evolution(instance)

    resp = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "again", "provider": "evolution", "config": other_url},
    )
    assert resp.status_code == 409, resp.text
    assert f"already session {first['id']}" in problem_of(resp)["detail"]
    hook_after = evolution.webhook_at_evolution(instance)
    assert hook_after == hook_before, "the first session's webhook was not touched"


# --- what DELETE leaves at the gateway ------------------------------------------------


async def test_delete_keeps_the_instance_and_its_phone_by_default(
    client: httpx.AsyncClient, tenant: Tenant, gateway: Sandbox
) -> None:
    instance = gateway.new_instance()
    sid = (await create_session(client, tenant, gateway, instance))["id"]
    gateway.scan(instance)

    resp = await client.delete(f"/api/v1/sessions/{sid}", headers=tenant.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["at_gateway"] == "keep"
    assert body["gateway"] == ["removed zapsync's webhook"], body
    assert body["gateway_errors"] == []
    kept = gateway.instance(instance)
    assert kept["state"] == "open" and kept["logged_out"] is False
    if gateway.dialect == "evolution":
        assert gateway.webhook_at_evolution(instance)["enabled"] is False
    if gateway.dialect == "waha":
        assert kept["webhook"] is None or f"/{sid}" not in kept["webhook"]


@pytest.mark.parametrize("at_gateway", ["logout", "delete"])
async def test_delete_logs_out_or_deletes_when_asked(
    client: httpx.AsyncClient, tenant: Tenant, gateway: Sandbox, at_gateway: str
) -> None:
    instance = gateway.new_instance()
    sid = (await create_session(client, tenant, gateway, instance))["id"]
    gateway.scan(instance)

    resp = await client.delete(
        f"/api/v1/sessions/{sid}", headers=tenant.headers, params={"at_gateway": at_gateway}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["at_gateway"] == at_gateway
    assert resp.json()["gateway_errors"] == []
    if at_gateway == "delete" and gateway.dialect != "megaapi":
        assert not gateway.exists(instance)
    else:  # MegaAPI instances belong to the account: a delete only unpairs the phone
        assert gateway.instance(instance)["logged_out"] is True


async def test_delete_with_an_unknown_at_gateway_is_422(
    client: httpx.AsyncClient, tenant: Tenant, evolution: Sandbox
) -> None:
    sid = (await create_session(client, tenant, evolution, evolution.new_instance()))["id"]
    resp = await client.delete(
        f"/api/v1/sessions/{sid}", headers=tenant.headers, params={"at_gateway": "nuke"}
    )
    assert resp.status_code == 422
    assert (await _session(client, tenant, sid))["archived_at"] is None


# --- no database lock held while a gateway answers ------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "status"), ("GET", "qr"), ("POST", "connect"), ("POST", "logout")],
)
async def test_webhooks_are_applied_while_a_request_waits_on_the_gateway(
    client: httpx.AsyncClient,
    tenant: Tenant,
    evolution: Sandbox,
    ctx: AppContext,
    method: str,
    path: str,
) -> None:
    instance = evolution.new_instance()
    sid = (await create_session(client, tenant, evolution, instance))["id"]
    evolution.fault("none", latency_ms=1500)
    seen = evolution.world.requests
    waiting = asyncio.create_task(
        client.request(method, f"/api/v1/sessions/{sid}/{path}", headers=tenant.headers)
    )
    for _ in range(500):
        if evolution.world.requests > seen:
            break
        await asyncio.sleep(0.01)
    assert evolution.world.requests > seen, "the request never reached the gateway"

    qr = sample("evolution/webhook.qrcode-updated.json")
    hook = await asyncio.wait_for(_post_evolution_webhook(client, ctx, sid, instance, qr), 1.0)
    assert hook.status_code == 200, hook.text
    assert not waiting.done(), "the webhook was applied while the gateway was still answering"
    await waiting


async def test_webhooks_are_applied_while_the_status_sync_restarts_a_dropped_session(
    client: httpx.AsyncClient, tenant: Tenant, evolution: Sandbox, ctx: AppContext
) -> None:
    instance = evolution.new_instance()
    sid = (await create_session(client, tenant, evolution, instance))["id"]
    evolution.scan(instance)
    await client.post("/api/v1/status-sync", headers=tenant.headers)
    for _ in range(3):  # the import the connect started reads the gateway too: let it end
        await ctx.bus.drain()
        await ctx.tasks.drain()
    evolution.drop(instance)
    evolution.fault("none", latency_ms=1500)
    seen = evolution.world.requests
    syncing = asyncio.create_task(client.post("/api/v1/status-sync", headers=tenant.headers))
    for _ in range(1000):  # the check, then the restart
        if evolution.world.requests >= seen + 2:
            break
        await asyncio.sleep(0.01)
    assert evolution.world.requests >= seen + 2, "the status sync never restarted the session"

    opened = sample("evolution/webhook.connection-update.open.json")
    hook = await asyncio.wait_for(_post_evolution_webhook(client, ctx, sid, instance, opened), 1.0)
    assert hook.status_code == 200, hook.text
    assert not syncing.done()
    report = (await syncing).json()
    assert report["healing"][0]["session_id"] == sid
    assert (await _session(client, tenant, sid))["status"] == "connected"
