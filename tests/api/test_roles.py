"""Admins manage connections, agents work conversations: every route states its role in the
OpenAPI document (`x-zapsync-role`), agents get 403 on every admin route with nothing changed
(at the gateway either), and agents get real answers on every agent route."""

from __future__ import annotations

import re
import secrets

import httpx
from fastapi import FastAPI

from tests.conftest import Tenant, problem_of
from tests.support.counts import table_counts
from tests.support.inbox import customer_conversation, instance, messages_of, settle
from tests.support.integrations import chatwoot_records
from tests.support.routes import is_public, protected_routes
from zapsync.runtime.context import AppContext
from zapsync.services import accounts

ROLE = "x-zapsync-role"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
# The bodies agent routes need to do their work (the rest take none).
AGENT_BODIES = {
    ("PATCH", "/api/v1/conversations/{conversation_id}"): {"status": "pending"},
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): {
        "type": "text",
        "content": "bom dia",
    },
    ("POST", "/api/v1/sandbox/sessions/{session_id}/inbound"): {"body": "oi de novo"},
}


def roles(app: FastAPI) -> dict[tuple[str, str], str | None]:
    found = {}
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            found[(method.upper(), path)] = operation.get(ROLE)
    return found


def test_every_route_states_admin_or_agent(app: FastAPI) -> None:
    stated = roles(app)
    protected = protected_routes(app)
    assert protected
    for route in protected:
        assert stated[route] in ("admin", "agent"), f"{route} states no role"
    for (method, path), role in stated.items():
        if is_public(path):
            assert role is None, f"{method} {path} needs no token, yet states {role}"
    admin = {route for route, role in stated.items() if role == "admin"}
    # The README's promise: connections are managed by admins.
    for route in [
        ("POST", "/api/v1/sessions"),
        ("DELETE", "/api/v1/sessions/{session_id}"),
        ("POST", "/api/v1/sessions/{session_id}/connect"),
        ("POST", "/api/v1/sessions/{session_id}/logout"),
        ("POST", "/api/v1/jobs/{name}/run"),
        ("POST", "/api/v1/status-sync"),
        ("POST", "/api/v1/integrations"),
        ("PATCH", "/api/v1/integrations/{integration_id}"),
        ("DELETE", "/api/v1/integrations/{integration_id}"),
        ("POST", "/api/v1/sync/connections"),
    ]:
        assert route in admin, route


async def test_agents_get_403_on_every_admin_route_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, agent: Tenant
) -> None:
    ids = await customer_conversation(app, client, tenant)
    ids_by_name: dict[str, object] = {
        **ids,
        "name": "status-sync",
        "integration_id": 1,
        "run_id": 1,
    }
    admin_routes = [route for route, role in roles(app).items() if role == "admin"]
    assert admin_routes
    phone = f"/api/v1/sandbox/sessions/{ids['session_id']}"
    phone_before = (await client.get(phone, headers=tenant.headers)).json()
    before = await table_counts(ctx)
    for method, path in admin_routes:
        url = path.format(**{p: ids_by_name[p] for p in re.findall(r"\{(\w+)\}", path)})
        body = {"name": "x", "provider": "sandbox"} if path == "/api/v1/sessions" else None
        resp = await client.request(method, url, headers=agent.headers, json=body)
        assert resp.status_code == 403, f"{method} {path} -> {resp.status_code} {resp.text}"
        assert "admin" in problem_of(resp)["detail"]
    assert await table_counts(ctx) == before
    session = await client.get(f"/api/v1/sessions/{ids['session_id']}", headers=agent.headers)
    assert session.json()["status"] == "connected" and session.json()["archived_at"] is None
    assert (await client.get(phone, headers=tenant.headers)).json() == phone_before


async def spare_token(app: FastAPI, who: Tenant) -> int:
    ctx: AppContext = app.state.ctx
    async with ctx.db.session() as db:
        user = await db.get_one(accounts.User, who.user_id)
        token, _ = await accounts.create_token(db, user)
        await db.commit()
        return token.id


async def test_agents_get_answers_on_every_agent_route(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, agent: Tenant
) -> None:
    ids = await customer_conversation(app, client, tenant)
    agent_routes = [route for route, role in roles(app).items() if role == "agent"]
    assert ("GET", "/api/v1/conversations") in agent_routes
    # Logging out ends the token every other request uses: it goes last.
    agent_routes.sort(key=lambda route: route == ("POST", "/api/v1/auth/logout"))
    upload = await client.post(
        f"/api/v1/conversations/{ids['conversation_id']}/messages",
        headers=agent.headers,
        files={"file": ("foto.png", PNG, "image/png")},
    )
    assert upload.status_code == 202, upload.text
    spare = await spare_token(app, agent)  # the agent revokes one of its own, not the one in use
    integration_id, run_id = await chatwoot_records(app, tenant)
    names = {
        **ids,
        "integration_id": integration_id,
        "run_id": run_id,
        "name": httpx.URL(upload.json()["media_url"]).path.rsplit("/", 1)[1],
        "token_id": spare,
    }
    names["message_id"] = await _customer_photo(app, client, tenant, ids)
    for method, path in agent_routes:
        url = path.format(**{p: names[p] for p in re.findall(r"\{(\w+)\}", path)})
        body = AGENT_BODIES.get((method, path))
        resp = await client.request(method, url, headers=agent.headers, json=body)
        assert resp.is_success, f"{method} {path} -> {resp.status_code} {resp.text}"
    conversation = f"/api/v1/conversations/{ids['conversation_id']}"
    assert (await client.get(conversation, headers=tenant.headers)).json()["status"] == "pending"


async def _customer_photo(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ids: dict[str, int]
) -> int:
    """A photo the customer sent (its media kept by the sandbox phone): its message id."""
    inst = instance(app, ids["session_id"])
    provider_id = f"3EB0{secrets.token_hex(6).upper()}"
    app.state.ctx.world.attach_media(inst, provider_id, PNG)
    app.state.ctx.world.inbound(inst, "5511987654321@s.whatsapp.net", "", id=provider_id,
                                type="image", mime_type="image/png")  # fmt: skip
    await settle(app)
    found = await messages_of(client, tenant, ids["conversation_id"])
    return int(next(m["id"] for m in found if m["provider_message_id"] == provider_id))


async def test_admins_still_manage_connections(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    ids = await customer_conversation(app, client, tenant)
    sid = ids["session_id"]
    logout = await client.post(f"/api/v1/sessions/{sid}/logout", headers=tenant.headers)
    assert logout.status_code == 200, logout.text
    deleted = await client.delete(f"/api/v1/sessions/{sid}", headers=tenant.headers)
    assert deleted.status_code == 200 and deleted.json()["archived"] is True
