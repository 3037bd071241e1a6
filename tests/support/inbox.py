"""Sandbox sessions with customers writing in, driven through the API, for the inbox tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from tests.conftest import Tenant
from zapsync.bus.events import Event
from zapsync.runtime.context import AppContext
from zapsync.sandbox.world import SimInstance
from zapsync.services.sessions.gateway import sandbox_instance_name

T = TypeVar("T")


async def settle(app: FastAPI) -> None:
    """Wait until the sandbox's events are stored, their bus events delivered and the work
    they started (the import a pairing starts) done."""
    await app.state.sandbox_pump.drain()
    ctx: AppContext = app.state.ctx
    await ctx.bus.drain()
    await ctx.tasks.drain()
    await ctx.bus.drain()


async def connected_session(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, name: str = "Loja"
) -> int:
    """A sandbox session created and paired through the API."""
    created = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": name, "provider": "sandbox", "config": {}},
    )
    assert created.status_code == 201, created.text
    session_id: int = created.json()["id"]
    scan = await client.post(
        f"/api/v1/sandbox/sessions/{session_id}/scan",
        headers=tenant.headers,
        json={"phone": f"55119{session_id:08d}"},
    )
    assert scan.status_code == 200, scan.text
    await settle(app)
    return session_id


def instance(app: FastAPI, session_id: int) -> SimInstance:
    ctx: AppContext = app.state.ctx
    inst = ctx.world.get(sandbox_instance_name(session_id))
    assert inst is not None
    return inst


async def customer_writes(
    app: FastAPI,
    session_id: int,
    phone: str,
    body: str,
    *,
    name: str | None = None,
    at: int | None = None,
) -> None:
    """A customer's message reaches the session (at `at`, seconds since the epoch)."""
    ctx: AppContext = app.state.ctx
    ctx.world.inbound(
        instance(app, session_id),
        f"{phone}@s.whatsapp.net",
        body,
        push_name=name,
        timestamp=at,
    )
    await settle(app)


def collect(ctx: AppContext, *names: str) -> list[Event]:
    """Every bus event with one of `names` from now on."""
    seen: list[Event] = []

    async def keep(event: Event) -> None:
        if event.name in names:
            seen.append(event)

    ctx.bus.subscribe(keep)
    return seen


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 30.0
) -> T:
    """Poll `probe` until `check` holds for its answer; the last answer otherwise fails."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still not as expected after {timeout} s: {value!r}")
        await asyncio.sleep(0.02)


async def messages_of(
    client: httpx.AsyncClient, tenant: Tenant, conversation_id: int, **params: Any
) -> list[dict[str, Any]]:
    resp = await client.get(
        f"/api/v1/conversations/{conversation_id}/messages", headers=tenant.headers, params=params
    )
    assert resp.status_code == 200, resp.text
    messages: list[dict[str, Any]] = resp.json()["messages"]
    return messages


async def conversations_of(
    client: httpx.AsyncClient, tenant: Tenant, **params: Any
) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/conversations", headers=tenant.headers, params=params)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def customer_conversation(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> dict[str, int]:
    """A connected sandbox session and the conversation a customer started on it: the ids a
    route template needs (`session_id`, `conversation_id`, `contact_id`)."""
    session_id = await connected_session(app, client, tenant)
    await customer_writes(app, session_id, "5511987654321", "oi")
    listed = await conversations_of(client, tenant)
    assert len(listed) == 1, listed
    return {
        "session_id": session_id,
        "conversation_id": listed[0]["id"],
        "contact_id": listed[0]["contact_id"],
    }
