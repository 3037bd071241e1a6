"""Another organization's objects are invisible: 404 on every route that takes an id, and
nothing written."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from tests.conftest import Tenant, problem_of
from tests.support.counts import table_counts
from tests.support.inbox import messages_of
from tests.support.integrations import chatwoot_records
from tests.support.routes import protected_routes
from zapsync.runtime.context import AppContext


async def test_other_organizations_objects_are_404_everywhere(
    app: FastAPI,
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    theirs = await client.post(
        "/api/v1/sessions",
        headers=other_tenant.headers,
        json={"name": "theirs", "provider": "sandbox", "config": {}},
    )
    assert theirs.status_code == 201, theirs.text
    ids = {"session_id": theirs.json()["id"], "token_id": other_tenant.token_id}
    ids.update(await _their_conversation(app, client, other_tenant, ids["session_id"]))
    ids["integration_id"], ids["run_id"] = await chatwoot_records(app, other_tenant)
    routes = [(m, p) for m, p in protected_routes(app) if re.search(r"\{\w+_id\}", p)]
    assert routes
    before = await table_counts(ctx)
    for method, path in routes:
        params = re.findall(r"\{(\w+)\}", path)
        missing = [p for p in params if p not in ids]
        assert not missing, f"no object of the other organization for {missing} in {path}"
        url = path.format(**ids)
        resp = await client.request(method, url, headers=tenant.headers, json={"body": "x"})
        assert resp.status_code == 404, f"{method} {path} -> {resp.status_code} {resp.text}"
        problem_of(resp)
    assert await table_counts(ctx) == before
    mine = (await client.get("/api/v1/sessions", headers=tenant.headers)).json()
    assert mine == []
    for listing in ("/api/v1/conversations", "/api/v1/contacts"):
        assert (await client.get(listing, headers=tenant.headers)).json()["items"] == []


async def _their_conversation(
    app: FastAPI, client: httpx.AsyncClient, other: Tenant, session_id: int
) -> dict[str, int]:
    """A conversation and contact of the other organization (a customer wrote to it)."""
    base = f"/api/v1/sandbox/sessions/{session_id}"
    assert (await client.post(f"{base}/scan", headers=other.headers)).is_success
    inbound = await client.post(f"{base}/inbound", headers=other.headers, json={"body": "oi"})
    assert inbound.is_success, inbound.text
    await app.state.sandbox_pump.drain()
    await app.state.ctx.bus.drain()
    await app.state.ctx.tasks.drain()  # the import the pairing set off, its lease released
    listed = (await client.get("/api/v1/conversations", headers=other.headers)).json()["items"]
    assert len(listed) == 1
    (message,) = await messages_of(client, other, listed[0]["id"])
    return {
        "conversation_id": listed[0]["id"],
        "contact_id": listed[0]["contact_id"],
        "message_id": message["id"],
    }


async def test_sixth_session_of_a_user_is_409_and_archiving_frees_a_slot(
    client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    ids = []
    for i in range(5):
        resp = await client.post(
            "/api/v1/sessions",
            headers=tenant.headers,
            json={"name": f"s{i}", "provider": "sandbox", "config": {}},
        )
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    before = await table_counts(ctx)
    sixth = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "s6", "provider": "sandbox", "config": {}},
    )
    assert sixth.status_code == 409
    assert "at most 5 per user" in problem_of(sixth)["detail"]
    assert await table_counts(ctx) == before
    assert (await client.delete(f"/api/v1/sessions/{ids[0]}", headers=tenant.headers)).is_success
    again = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "s6", "provider": "sandbox", "config": {}},
    )
    assert again.status_code == 201


async def test_bad_session_bodies_are_422_with_a_reason(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    cases = [
        ({"name": "x", "provider": "telegram", "config": {}}, "unknown provider"),
        ({"name": "x", "provider": "evolution", "config": {}}, "needs base_url"),
        (
            {
                "name": "x",
                "provider": "waha",
                "config": {"base_url": "ftp://x", "api_key": "k", "session": "s"},
            },
            "http",
        ),
    ]
    for body, reason in cases:
        resp = await client.post("/api/v1/sessions", headers=tenant.headers, json=body)
        assert resp.status_code == 422
        assert reason in problem_of(resp)["detail"]
    raw = await client.post(
        "/api/v1/sessions",
        headers={**tenant.headers, "content-type": "application/json"},
        content=b"{oops",
    )
    assert raw.status_code == 422
    assert "JSON" in problem_of(raw)["detail"]
