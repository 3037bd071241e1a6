"""zapsync on a real port, where a sandbox Evolution posts its webhooks: the webhooks Evolution
sends while it creates an instance are applied, and a team's own webhook that zapsync's
replaced gets every event relayed, signed, and is put back when the session goes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Tenant
from tests.support.gateways import KEYS, SandboxGateway
from tests.support.inbox import eventually
from tests.support.receiver import receiving
from tests.support.servers import free_port, serve_in_thread, serving_zapsync
from zapsync.runtime.context import AppContext
from zapsync.sandbox.server import build_sandbox_app
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.services.ingest.forwarding import SIGNATURE_HEADER, signature
from zapsync.settings import Settings
from zapsync.store.models import SessionStatusEvent, WebhookForward


@contextmanager
def evolution_sandbox(dialect: str = "evolution") -> Iterator[tuple[str, WebhookSender]]:
    sender = WebhookSender(attempts=1, timeout=5.0)
    with serve_in_thread(build_sandbox_app(dialect, sender=sender)) as url:
        yield url, sender


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with serving_zapsync(settings, forward_base_delay=0.05, forward_max_attempts=3) as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            yield client


def at_gateway(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A call to the sandbox itself, as the team's scripts or the phone would make it."""
    resp = httpx.request(method, url, headers={"apikey": KEYS["evolution"]}, **kwargs)
    assert resp.status_code < 300, resp.text
    return resp


def _config(base_url: str, instance: str) -> dict[str, str]:
    return {"base_url": base_url, "api_key": KEYS["evolution"], "instance": instance}


def _events(sender: WebhookSender, prefix: str, event: str) -> list[Any]:
    return [
        d
        for d in list(sender.deliveries)
        if d.url.startswith(prefix) and json.loads(d.body)["event"] == event
    ]


async def test_webhooks_evolution_sends_while_it_creates_are_applied(
    api: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    with evolution_sandbox() as (evo, sender):
        # Evolution holds its create answer while the first QR's webhooks go out.
        at_gateway("POST", f"{evo}/_sandbox/evolution/pace", json={"create_wait_seconds": 1.5})
        resp = await api.post(
            "/api/v1/sessions",
            headers=tenant.headers,
            json={"name": "loja", "provider": "evolution", "config": _config(evo, "loja")},
        )
        answered = time.monotonic()
        assert resp.status_code == 201, resp.text
        assert resp.json()["status"] == "qr_pending"
        qr_hooks = _events(sender, str(api.base_url), "qrcode.updated")
        assert qr_hooks, "Evolution posted its QR while creating"
        for hook in qr_hooks:
            assert hook.last_status == 200, "zapsync knew the session the QR was for"
            assert hook.answered_at is not None
            assert hook.answered_at < answered - 0.5, "applied while the create still waited"
        async with ctx.db.session() as db:
            applied = (
                await db.scalars(
                    select(SessionStatusEvent.source).where(
                        SessionStatusEvent.session_id == resp.json()["id"],
                        SessionStatusEvent.from_status == "creating",
                    )
                )
            ).all()
        assert applied == ["webhook"], "the first status came from Evolution's webhook"


@pytest.mark.parametrize("dialect", ["waha"])
async def test_webhooks_other_gateways_send_while_zapsync_creates_are_applied(
    api: httpx.AsyncClient, tenant: Tenant, dialect: str
) -> None:
    with evolution_sandbox(dialect) as (url, sender):
        gw = SandboxGateway(dialect, url)
        instance = gw.new_instance()
        # Each of zapsync's calls waits, so the webhooks the first ones cause arrive mid-create.
        gw.fault("none", latency_ms=500)
        resp = await api.post(
            "/api/v1/sessions",
            headers=tenant.headers,
            json={"name": "x", "provider": dialect, "config": gw.config(instance)},
        )
        answered = time.monotonic()
        assert resp.status_code == 201, resp.text
        hooks = [d for d in list(sender.deliveries) if d.url.startswith(str(api.base_url))]
        early = [d for d in hooks if d.sent_at is not None and d.sent_at < answered]
        assert early, f"{dialect} posted a webhook while zapsync was creating"

        async def statuses() -> list[int | None]:
            return [hook.last_status for hook in early]

        # on a loaded machine a delivery sent mid-create may be answered just after it
        await eventually(statuses, lambda answers: None not in answers)
        for hook in early:
            assert hook.last_status in (200, 202), "zapsync knew the session it was for"


async def test_the_webhook_zapsyncs_replaced_gets_every_event_and_comes_back(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    with evolution_sandbox() as (evo, sender), receiving("/n8n") as team:
        team_hook = {
            "enabled": True,
            "url": team.url,
            "headers": {"authorization": "Bearer n8n-token"},
            "events": ["MESSAGES_UPSERT", "CONNECTION_UPDATE"],
        }
        at_gateway(
            "POST",
            f"{evo}/instance/create",
            json={"instanceName": "vendas", "qrcode": True, "webhook": team_hook},
        )

        resp = await api.post(
            "/api/v1/sessions",
            headers=tenant.headers,
            json={"name": "vendas", "provider": "evolution", "config": _config(evo, "vendas")},
        )
        assert resp.status_code == 201, resp.text
        created = resp.json()
        assert created["replaced_webhook"] == team.url
        assert created["forward_to"] == team.url
        secret = created["forward_secret"]
        assert secret

        at_gateway("POST", f"{evo}/_sandbox/instances/vendas/scan", json={})
        at_gateway(
            "POST",
            f"{evo}/_sandbox/instances/vendas/messages",
            json={"chat_jid": "5511987654321@s.whatsapp.net", "body": "oi"},
        )

        relayed = await team.wait_for("messages.upsert")
        [to_zapsync] = _events(sender, str(api.base_url), "messages.upsert")
        assert relayed[0].body == to_zapsync.body, "relayed as Evolution sent it"
        assert relayed[0].headers[SIGNATURE_HEADER.lower()] == signature(secret, to_zapsync.body)
        assert relayed[0].headers["authorization"] == "Bearer n8n-token"
        await team.wait_for("connection.update")

        gone = await api.delete(f"/api/v1/sessions/{created['id']}", headers=tenant.headers)
        assert gone.status_code == 200, gone.text
        assert gone.json()["gateway"] == [f"put back the webhook to {team.url}"]
        hook = at_gateway("GET", f"{evo}/webhook/find/vendas")
        assert hook.json()["url"] == team.url
        assert hook.json()["enabled"] is True
        assert hook.json()["headers"] == {"authorization": "Bearer n8n-token"}
        assert hook.json()["events"] == ["MESSAGES_UPSERT", "CONNECTION_UPDATE"]


async def test_a_team_webhook_that_is_down_never_holds_up_ingest(
    api: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    down = f"http://127.0.0.1:{free_port()}/n8n"
    with evolution_sandbox() as (evo, sender):
        at_gateway(
            "POST",
            f"{evo}/instance/create",
            json={"instanceName": "x", "qrcode": True, "webhook": {"url": down, "events": []}},
        )
        resp = await api.post(
            "/api/v1/sessions",
            headers=tenant.headers,
            json={"name": "x", "provider": "evolution", "config": _config(evo, "x")},
        )
        assert resp.json()["replaced_webhook"] == down
        at_gateway("POST", f"{evo}/_sandbox/instances/x/scan", json={})
        for _ in range(500):
            if _events(sender, str(api.base_url), "connection.update"):
                break
            await asyncio.sleep(0.01)
        for hook in _events(sender, str(api.base_url), "connection.update"):
            for _ in range(500):
                if hook.last_status is not None:
                    break
                await asyncio.sleep(0.01)
            assert hook.last_status == 200
        session = await api.get(f"/api/v1/sessions/{resp.json()['id']}", headers=tenant.headers)
        assert session.json()["status"] == "connected"

        failed: list[WebhookForward] = []
        for _ in range(500):
            async with ctx.db.session() as db:
                failed = list(
                    (
                        await db.scalars(
                            select(WebhookForward).where(WebhookForward.status == "failed")
                        )
                    ).all()
                )
            if failed:
                break
            await asyncio.sleep(0.02)
        assert failed, "retried, then given up on"
        assert failed[0].attempts == 3
        assert failed[0].last_error
