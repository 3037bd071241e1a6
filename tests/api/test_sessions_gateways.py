"""Sessions end to end against each gateway dialect's sandbox, over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import Tenant, problem_of
from tests.support.counts import table_counts
from tests.support.gateways import SandboxGateway, create_session, running_sandbox
from zapsync.runtime.context import AppContext
from zapsync.store.models import SessionStatusEvent

DIALECTS = ["evolution", "waha", "megaapi"]


@pytest.fixture(scope="module", params=DIALECTS)
def gateway(request: pytest.FixtureRequest) -> Iterator[SandboxGateway]:
    with running_sandbox(request.param) as gw:
        yield gw


@pytest.fixture(autouse=True)
def _no_fault(gateway: SandboxGateway) -> Iterator[None]:
    gateway.fault("none")
    yield
    gateway.fault("none")


async def test_lifecycle_create_qr_pair_drop_heal_logout_delete(
    client: httpx.AsyncClient, tenant: Tenant, gateway: SandboxGateway, ctx: AppContext
) -> None:
    instance = gateway.new_instance()
    created = await create_session(client, tenant, gateway, instance)
    sid = created["id"]
    assert created["status"] in ("qr_pending", "connecting", "disconnected")

    qr = await client.get(f"/api/v1/sessions/{sid}/qr", headers=tenant.headers)
    assert qr.status_code == 200, qr.text
    assert qr.json()["code"]
    assert qr.json()["png_data_url"].startswith("data:image/png;base64,")
    png = await client.get(f"/api/v1/sessions/{sid}/qr?format=png", headers=tenant.headers)
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")

    gateway.scan(instance)
    live = (await client.get(f"/api/v1/sessions/{sid}/status", headers=tenant.headers)).json()
    assert live["connected"] is True and live["status"] == "connected"

    applied = (await client.post("/api/v1/status-sync", headers=tenant.headers)).json()
    stored = (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()
    assert stored["status"] == "connected", applied

    # A silent drop: the gateway lost WhatsApp, the database still says connected.
    gateway.drop(instance)
    dry = (await client.get("/api/v1/status-sync", headers=tenant.headers)).json()
    row = next(s for s in dry["sessions"] if s["session_id"] == sid)
    assert row["stored_status"] == "connected"
    assert row["live_status"] == "disconnected"
    assert row["needs_sync"] is True
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()[
        "status"
    ] == "connected", "the dry run writes nothing"

    report = (await client.post("/api/v1/status-sync", headers=tenant.headers)).json()
    assert {"session_id": sid, "from": "connected", "to": "disconnected"} in report["changed"]
    assert report["healing"][0]["session_id"] == sid
    # healed: the restart brought the paired phone back
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()[
        "status"
    ] == "connected"

    logout = await client.post(f"/api/v1/sessions/{sid}/logout", headers=tenant.headers)
    assert logout.status_code == 200, logout.text
    assert logout.json()["status"] == "logged_out"
    after = (await client.post("/api/v1/status-sync", headers=tenant.headers)).json()
    assert after["healing"] == [], "a logged-out session is never restarted by itself"
    assert (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()[
        "status"
    ] != "connected"

    deleted = await client.delete(f"/api/v1/sessions/{sid}", headers=tenant.headers)
    assert deleted.status_code == 200, deleted.text
    listed = (await client.get("/api/v1/sessions", headers=tenant.headers)).json()
    assert sid not in [s["id"] for s in listed]

    async with ctx.db.session() as db:
        history = (
            await db.scalars(
                select(SessionStatusEvent.to_status)
                .where(SessionStatusEvent.session_id == sid)
                .order_by(SessionStatusEvent.id)
            )
        ).all()
    assert "disconnected" in history and "logged_out" in history


async def test_wrong_key_is_422_with_the_gateways_reason_and_stores_nothing(
    client: httpx.AsyncClient, tenant: Tenant, gateway: SandboxGateway, ctx: AppContext
) -> None:
    instance = gateway.new_instance()
    before = await table_counts(ctx)
    resp = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={
            "name": "x",
            "provider": gateway.dialect,
            "config": gateway.config(instance, key="wrong-key"),
        },
    )
    assert resp.status_code == 422, resp.text
    assert "gateway refused" in problem_of(resp)["detail"]
    assert await table_counts(ctx) == before


@pytest.mark.parametrize("fault", ["timeout", "error", "malformed"])
async def test_failed_checks_never_change_the_stored_status(
    client: httpx.AsyncClient,
    tenant: Tenant,
    gateway: SandboxGateway,
    ctx: AppContext,
    fault: str,
) -> None:
    instance = gateway.new_instance()
    sid = (await create_session(client, tenant, gateway, instance))["id"]
    gateway.scan(instance)
    await client.post("/api/v1/status-sync", headers=tenant.headers)
    gateway.fault(fault, hang_seconds=3.0)
    for _ in range(3):
        report = (await client.post("/api/v1/status-sync", headers=tenant.headers)).json()
        assert report["changed"] == []
        assert [e["session_id"] for e in report["errors"]] == [sid]
    gateway.fault("none")
    session = (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()
    assert session["status"] == "connected"
    assert session["status_reason"].startswith("unreachable")
    # once the gateway answers again the flag goes away
    await client.post("/api/v1/status-sync", headers=tenant.headers)
    session = (await client.get(f"/api/v1/sessions/{sid}", headers=tenant.headers)).json()
    assert not (session["status_reason"] or "").startswith("unreachable")


async def test_unreachable_gateway_url_is_422(
    client: httpx.AsyncClient, tenant: Tenant, gateway: SandboxGateway
) -> None:
    config = gateway.config("x")
    config["base_url"] = "http://127.0.0.1:9"
    resp = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "x", "provider": gateway.dialect, "config": config},
    )
    assert resp.status_code == 422
    assert "unreachable" in problem_of(resp)["detail"]


async def test_one_gateway_instance_twice_is_409(
    client: httpx.AsyncClient, tenant: Tenant, gateway: SandboxGateway, ctx: AppContext
) -> None:
    instance = gateway.new_instance()
    await create_session(client, tenant, gateway, instance)
    async with ctx.db.session() as db:
        events = await db.scalar(select(func.count()).select_from(SessionStatusEvent))
    resp = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "again", "provider": gateway.dialect, "config": gateway.config(instance)},
    )
    assert resp.status_code == 409
    assert "already session" in problem_of(resp)["detail"]
    async with ctx.db.session() as db:
        assert await db.scalar(select(func.count()).select_from(SessionStatusEvent)) == events


def test_png_data_url_is_a_real_png() -> None:
    from zapsync.api.qr_images import png_data_url

    url = png_data_url("2@abc,def,1")
    assert base64.b64decode(url.split(",", 1)[1]).startswith(b"\x89PNG")
