"""Sandbox gateways over real HTTP, one per dialect, with the config zapsync needs for each
and a control client to act as the phone (scan, drop, faults)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import Tenant
from tests.support.inbox import conversations_of
from tests.support.servers import serve_in_thread
from zapsync.runtime.context import AppContext
from zapsync.sandbox.server import build_sandbox_app
from zapsync.sandbox.webhook_sender import WebhookSender

KEYS = {
    "evolution": "sandbox-global-key",
    "waha": "sandbox-waha-key",
    "megaapi": "sandbox-megaapi-token",
}


@dataclass
class SandboxGateway:
    dialect: str
    base_url: str

    def config(self, instance: str, *, key: str | None = None) -> dict[str, str]:
        secret = key or KEYS[self.dialect]
        if self.dialect == "evolution":
            return {"base_url": self.base_url, "api_key": secret, "instance": instance}
        if self.dialect == "waha":
            return {"base_url": self.base_url, "api_key": secret, "session": instance}
        return {"base_url": self.base_url, "token": secret, "instance_key": instance}

    def new_instance(self) -> str:
        """A fresh instance name; MegaAPI instances are provisioned by the host first."""
        name = f"inst-{secrets.token_hex(3)}"
        if self.dialect == "megaapi":
            resp = httpx.post(
                f"{self.base_url}/rest/instance/init",
                params={"instance_key": name},
                headers={"Authorization": f"Bearer {KEYS['megaapi']}"},
            )
            resp.raise_for_status()
        return name

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = httpx.post(f"{self.base_url}/_sandbox{path}", json=body, timeout=10)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def instance(self, name: str) -> dict[str, Any]:
        resp = httpx.get(f"{self.base_url}/_sandbox/instances/{name}", timeout=10)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def scan(self, name: str) -> None:
        self.control(f"/instances/{name}/scan", {"phone": "5511900000001"})

    def drop(self, name: str) -> None:
        self.control(f"/instances/{name}/drop")

    def phone_logout(self, name: str) -> None:
        self.control(f"/instances/{name}/logout")

    def fault(self, fault: str, latency_ms: int = 0, hang_seconds: float = 4.0) -> None:
        self.control(
            "/fault", {"fault": fault, "latency_ms": latency_ms, "hang_seconds": hang_seconds}
        )


@contextmanager
def serving_dialect(dialect: str, *, retry_delay: float = 0.05) -> Iterator[str]:
    """A sandbox speaking `dialect` on a loopback port; its base URL. Its webhooks are tried
    twice, `retry_delay` seconds apart."""
    sender = WebhookSender(attempts=2, base_delay=retry_delay, timeout=2.0)
    with serve_in_thread(build_sandbox_app(dialect, sender=sender)) as url:
        yield url


@contextmanager
def running_sandbox(dialect: str) -> Iterator[SandboxGateway]:
    with serving_dialect(dialect) as url:
        yield SandboxGateway(dialect, url)


async def control(raw: httpx.AsyncClient, path: str, body: Any = None, **params: Any) -> Any:
    """A call to the sandbox's control API (`/_sandbox...`), acting as the phone or the world."""
    resp = await raw.post(f"/_sandbox{path}", json=body, params=params)
    resp.raise_for_status()
    return resp.json()


async def create_session(
    client: httpx.AsyncClient, tenant: Tenant, gateway: SandboxGateway, instance: str
) -> dict[str, Any]:
    """A session on `gateway`'s `instance`, created through zapsync's API."""
    resp = await client.post(
        "/api/v1/sessions",
        headers=tenant.headers,
        json={"name": "Vendas", "provider": gateway.dialect, "config": gateway.config(instance)},
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def paired_conversation(
    client: httpx.AsyncClient,
    tenant: Tenant,
    ctx: AppContext,
    gateway: SandboxGateway,
    customer: str = "5511987650001@s.whatsapp.net",
) -> tuple[int, str]:
    """A session on `gateway` paired through the API, whose `customer` wrote once, imported:
    (its conversation's id, the instance name)."""
    name = gateway.new_instance()
    sid = (await create_session(client, tenant, gateway, name))["id"]
    gateway.control(f"/instances/{name}/messages", {"chat_jid": customer, "body": "oi"})
    gateway.scan(name)
    synced = await client.post(f"/api/v1/sessions/{sid}/status-sync", headers=tenant.headers)
    assert synced.status_code == 200, synced.text
    await ctx.tasks.drain()
    conversation = next(c for c in await conversations_of(client, tenant) if c["session_id"] == sid)
    return int(conversation["id"]), name
