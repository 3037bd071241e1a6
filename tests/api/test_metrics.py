"""`/metrics`: Prometheus's text format behind ZAPSYNC_METRICS_TOKEN, with webhooks by gateway,
event and outcome, ingest latency, status checks, sessions up, outbox depth and age, and
job runs, as a scraper parses them after the things they count happened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from tests.conftest import Tenant, problem_of
from tests.support.contracts import sample_bytes
from tests.support.inbox import connected_session, conversations_of, customer_writes, eventually
from tests.support.sessions import insert_session
from zapsync.api.app import create_app
from zapsync.runtime.context import AppContext
from zapsync.services.inbox.conversations import SEND_KIND
from zapsync.settings import Settings
from zapsync.store.models import OutboxItem
from zapsync.store.types import utcnow

TOKEN = "scrape-token"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})


async def scrape(client: httpx.AsyncClient) -> Samples:
    resp = await client.get("/metrics", headers=SCRAPER)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str | int) -> float | None:
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))


async def test_a_scrape_counts_webhooks_checks_sends_and_job_runs(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    before = await scrape(client)
    assert value(before, "zapsync_outbox_depth", kind=SEND_KIND) == 0

    # a webhook applied, one refused
    evo = await insert_session(ctx, tenant, "evolution")
    hook = f"/api/v1/webhooks/evolution/{evo}"
    body = sample_bytes("evolution/webhook.connection-update.open.json")
    applied = await client.post(hook, content=body, headers={"X-Zapsync-Token": "hook-secret"})
    assert applied.status_code == 200, applied.text
    refused = await client.post(hook, content=body, headers={"X-Zapsync-Token": "wrong"})
    assert refused.status_code == 401
    # a status check the gateway (nothing listens there) does not answer
    checked = await client.post(f"/api/v1/sessions/{evo}/status-sync", headers=tenant.headers)
    assert checked.status_code == 200, checked.text
    # a send through a paired sandbox session
    sandbox = await connected_session(app, client, tenant)
    await customer_writes(app, sandbox, "5511987654321", "oi")
    (conversation,) = await conversations_of(client, tenant)
    sent = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        headers=tenant.headers,
        json={"type": "text", "content": "olá"},
    )
    assert sent.status_code in (200, 201, 202), sent.text
    # a job run
    job = await client.post("/api/v1/jobs/close-inactive-conversations/run", headers=tenant.headers)
    assert job.status_code == 200, job.text
    # an item waiting two minutes (not due yet, so the outbox leaves it be)
    async with ctx.db.session() as db:
        db.add(
            OutboxItem(
                organization_id=tenant.organization_id,
                kind=SEND_KIND,
                payload={},
                status="pending",
                next_attempt_at=utcnow() + timedelta(hours=1),
                created_at=utcnow() - timedelta(seconds=120),
            )
        )
        await db.commit()

    after = await eventually(
        lambda: scrape(client),
        # the delivery is counted before its row is marked sent: wait for both
        lambda s: (
            value(s, "zapsync_outbox_deliveries_total", outcome="delivered") == 1
            and value(s, "zapsync_outbox_depth", kind=SEND_KIND) == 1
        ),
    )
    webhook = "zapsync_webhook_events_total"
    assert value(after, webhook, gateway="evolution", event="StatusChanged", outcome="applied") == 1
    assert value(after, webhook, gateway="evolution", event="-", outcome="unauthorized") == 1
    assert value(after, "zapsync_webhook_ingest_seconds_count", gateway="evolution") == 1
    assert (value(after, "zapsync_webhook_ingest_seconds_sum", gateway="evolution") or 0) > 0
    assert value(after, "zapsync_status_checks_total", session_id=evo, result="error") == 1
    up = "zapsync_session_up"
    labels: dict[str, str | int] = {
        "organization_id": tenant.organization_id,
        "status": "connected",
    }
    assert value(after, up, session_id=evo, provider="evolution", **labels) == 1
    assert value(after, up, session_id=sandbox, provider="sandbox", **labels) == 1
    assert value(after, "zapsync_outbox_depth", kind=SEND_KIND) == 1
    assert (value(after, "zapsync_outbox_oldest_age_seconds", kind=SEND_KIND) or 0) >= 120
    runs = "zapsync_job_runs_total"
    assert value(after, runs, job="close-inactive-conversations", status="succeeded") == 1
    assert value(after, runs, job="status-sync", status="partial") == 1
    assert (
        value(after, "zapsync_job_last_duration_seconds", job="close-inactive-conversations")
        is not None
    )


async def test_metrics_need_their_own_token_and_health_stays_open(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for headers in ({}, tenant.headers, {"Authorization": "Bearer wrong"}):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status_code == 401
        assert "metrics token" in problem_of(resp)["detail"]
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/health/ready")).status_code == 200


async def test_without_a_metrics_token_the_route_is_off(settings: Settings) -> None:
    plain = create_app(settings.model_copy(update={"metrics_token": None}))
    async with LifespanManager(plain):
        transport = httpx.ASGITransport(app=plain)
        async with httpx.AsyncClient(transport=transport, base_url="http://z.test") as client:
            resp = await client.get("/metrics", headers=SCRAPER)
    assert resp.status_code == 401
    assert "ZAPSYNC_METRICS_TOKEN" in problem_of(resp)["detail"]


@pytest.fixture
async def second_app(settings: Settings) -> AsyncIterator[FastAPI]:
    other = create_app(settings)
    async with LifespanManager(other):
        yield other


async def test_each_app_counts_on_its_own_registry(
    app: FastAPI, second_app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    evo = await insert_session(ctx, tenant, "evolution")
    body = sample_bytes("evolution/webhook.connection-update.open.json")
    resp = await client.post(
        f"/api/v1/webhooks/evolution/{evo}", content=body, headers={"X-Zapsync-Token": "wrong"}
    )
    assert resp.status_code == 401
    transport = httpx.ASGITransport(app=second_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://z.test") as other:
        theirs = await scrape(other)
    mine = await scrape(client)
    labels = {"gateway": "evolution", "event": "-", "outcome": "unauthorized"}
    assert value(mine, "zapsync_webhook_events_total", **labels) == 1
    assert value(theirs, "zapsync_webhook_events_total", **labels) is None
