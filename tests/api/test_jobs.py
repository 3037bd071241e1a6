"""Scheduled jobs: listed, run by an admin, by an outside cron and by the CLI with the same
report, and fired by the scheduler on time."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import select

from tests.conftest import Tenant, problem_of
from tests.support.sessions import insert_session
from zapsync.jobs.scheduler import build_scheduler, next_run_times
from zapsync.runtime.context import AppContext
from zapsync.settings import Settings
from zapsync.store.models import Contact, Conversation, Session, SyncRun


async def old_conversation(ctx: AppContext, tenant: Tenant, sid: int, hours: int) -> int:
    past = datetime.now(UTC) - timedelta(hours=hours)
    async with ctx.db.session() as db:
        contact = Contact(organization_id=tenant.organization_id, phone_e164=f"+55119{hours:08d}")
        db.add(contact)
        await db.flush()
        conv = Conversation(
            organization_id=tenant.organization_id,
            session_id=sid,
            contact_id=contact.id,
            chat_key=contact.phone_e164 or "",
            chat_jid=f"55119{hours:08d}@s.whatsapp.net",
            status="open",
            unread_count=0,
            last_message_at=past,
            created_at=past,
        )
        db.add(conv)
        await db.commit()
        return conv.id


def without_run_id(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in ("run_id", "run_ids")}


async def test_jobs_are_listed_with_schedule_last_and_next_run(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await client.post("/api/v1/jobs/close-inactive-conversations/run", headers=tenant.headers)
    jobs = {j["name"]: j for j in (await client.get("/api/v1/jobs", headers=tenant.headers)).json()}
    assert set(jobs) == {
        "status-sync",
        "cleanup-sessions",
        "close-inactive-conversations",
        "import-retries",
        "chatwoot-pull",
    }
    assert jobs["chatwoot-pull"]["schedule"] == "every 15 minutes"
    assert jobs["status-sync"]["schedule"] == "every 5 minutes"
    # 02:00 in ZAPSYNC_TIMEZONE (America/Sao_Paulo by default), not in UTC
    assert jobs["cleanup-sessions"]["next_run"].endswith("T02:00:00-03:00")
    assert jobs["status-sync"]["next_run"].endswith("-03:00")
    last = jobs["close-inactive-conversations"]["last_run"]
    assert last["status"] == "succeeded" and last["trigger"] == "manual"
    assert jobs["status-sync"]["last_run"] is None


async def test_the_queue_says_who_runs_the_jobs(
    client: httpx.AsyncClient, tenant: Tenant, agent: Tenant, settings: Settings
) -> None:
    resp = await client.get("/api/v1/jobs/queue", headers=tenant.headers)
    assert resp.json()["mode"] == settings.jobs
    if settings.jobs == "embedded":
        assert resp.json()["jobs"] == []  # this process runs them: no queue
    assert (await client.get("/api/v1/jobs/queue", headers=agent.headers)).status_code == 403


async def test_daily_jobs_keep_their_hour_in_the_configured_zone(settings: Settings) -> None:
    ctx = AppContext.create(settings.model_copy(update={"timezone": "Europe/Lisbon"}))
    try:
        summer = datetime(2026, 7, 1, 12, tzinfo=UTC)
        nexts = next_run_times(ctx, None, summer)
        assert nexts["cleanup-sessions"] == datetime(2026, 7, 2, 1, tzinfo=UTC)  # 02:00 WEST
        assert str(nexts["cleanup-sessions"]) == "2026-07-02 02:00:00+01:00"
        winter = next_run_times(ctx, None, datetime(2026, 12, 1, 12, tzinfo=UTC))
        assert str(winter["cleanup-sessions"]) == "2026-12-02 02:00:00+00:00"
    finally:
        await ctx.aclose()


async def test_running_a_job_needs_an_admin(client: httpx.AsyncClient, agent: Tenant) -> None:
    resp = await client.post("/api/v1/jobs/status-sync/run", headers=agent.headers)
    assert resp.status_code == 403
    assert "admin" in problem_of(resp)["detail"]


async def test_unknown_job_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    resp = await client.post("/api/v1/jobs/make-coffee/run", headers=tenant.headers)
    assert resp.status_code == 404


async def test_cron_route_needs_the_cron_secret(
    client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    for headers in [{}, {"Authorization": "Bearer nope"}, tenant.headers]:
        resp = await client.post("/api/v1/cron/status-sync", headers=headers)
        assert resp.status_code == 401, headers
    async with ctx.db.session() as db:
        assert (await db.scalars(select(SyncRun))).first() is None
    for method in ("POST", "GET"):  # hosted crons (Vercel's) send GET
        ok = await client.request(
            method, "/api/v1/cron/status-sync", headers={"Authorization": "Bearer test-cron-secret"}
        )
        assert ok.status_code == 200, method
        assert ok.json()["checked"] == 0
    refused = await client.get("/api/v1/cron/status-sync", headers={"Authorization": "Bearer x"})
    assert refused.status_code == 401


def run_cli(settings: Settings, *args: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "ZAPSYNC_SECRET_KEY": "test-secret-key",
        "ZAPSYNC_DATA_DIR": str(settings.data_dir),
    }
    out = subprocess.run(
        [sys.executable, "-m", "zapsync.cli.main", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


async def test_endpoint_cron_and_cli_return_the_same_report(
    client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext, settings: Settings
) -> None:
    sid = await insert_session(ctx, tenant, "sandbox", status="connected")
    reports: list[dict[str, Any]] = []
    for how in ("endpoint", "cron", "cli"):
        conv = await old_conversation(ctx, tenant, sid, hours=30 + len(reports))
        if how == "endpoint":
            resp = await client.post(
                "/api/v1/jobs/close-inactive-conversations/run", headers=tenant.headers
            )
            report = resp.json()
        elif how == "cron":
            resp = await client.post(
                "/api/v1/cron/close-inactive-conversations",
                headers={"Authorization": "Bearer test-cron-secret"},
            )
            report = resp.json()
        else:
            report = await asyncio.to_thread(run_cli, settings, "close-inactive")
        assert report["conversation_ids"] == [conv], how
        reports.append(report)
        async with ctx.db.session() as db:
            assert (await db.get_one(Conversation, conv)).status == "resolved"
    assert {r["closed"] for r in reports} == {1}
    assert [sorted(r) for r in reports] == [sorted(reports[0])] * 3
    async with ctx.db.session() as db:
        triggers = (await db.scalars(select(SyncRun.trigger).order_by(SyncRun.id))).all()
    assert triggers == ["manual", "cron", "cli"]


async def test_status_sync_cli_matches_the_endpoint(
    client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext, settings: Settings
) -> None:
    api = (await client.post("/api/v1/jobs/status-sync/run", headers=tenant.headers)).json()
    cli = await asyncio.to_thread(run_cli, settings, "status-sync")
    assert without_run_id(api) == without_run_id(cli)


async def test_cleanup_archives_dead_sessions_and_keeps_their_conversations(
    client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    dead = await insert_session(ctx, tenant, "sandbox", status="disconnected", name="dead")
    alive = await insert_session(ctx, tenant, "sandbox", status="connected", name="alive")
    recent = await insert_session(ctx, tenant, "sandbox", status="disconnected", name="new")
    long_ago = datetime.now(UTC) - timedelta(days=40)
    async with ctx.db.session() as db:
        for sid in (dead, alive):
            session = await db.get_one(Session, sid)
            session.created_at = long_ago
            session.last_activity_at = long_ago
        await db.commit()
    conv = await old_conversation(ctx, tenant, dead, hours=40 * 24)
    report = (await client.post("/api/v1/jobs/cleanup-sessions/run", headers=tenant.headers)).json()
    assert report["archived"] == [dead]
    listed = [
        s["id"] for s in (await client.get("/api/v1/sessions", headers=tenant.headers)).json()
    ]
    assert listed == [alive, recent]
    async with ctx.db.session() as db:
        assert await db.get(Conversation, conv) is not None
        assert (await db.get_one(Session, dead)).status == "logged_out"
    assert report["count"] == 1


@pytest.mark.parametrize(
    ("start", "fired"),
    [
        (  # 01:59:59 in São Paulo
            "2026-11-24T04:59:59.2+00:00",
            {"status-sync", "cleanup-sessions", "close-inactive-conversations"},
        ),
        # 01:59:59 UTC is not 02:00 where the team lives
        ("2026-11-24T01:59:59.2+00:00", {"status-sync", "close-inactive-conversations"}),
        ("2026-11-24T10:04:59.2+00:00", {"status-sync"}),
        ("2026-11-24T10:59:59.2+00:00", {"status-sync", "close-inactive-conversations"}),
    ],
)
async def test_scheduler_fires_each_job_on_its_schedule(
    ctx: AppContext, start: str, fired: set[str]
) -> None:
    with time_machine.travel(datetime.fromisoformat(start), tick=True):
        scheduler = build_scheduler(ctx)
        scheduler.start()
        try:
            for _ in range(60):
                await asyncio.sleep(0.1)
                async with ctx.db.session() as db:
                    kinds = set((await db.scalars(select(SyncRun.kind))).all())
                if kinds >= fired and datetime.now(UTC).second >= 1:
                    break
        finally:
            scheduler.shutdown(wait=False)
    assert kinds == fired
    async with ctx.db.session() as db:
        assert set((await db.scalars(select(SyncRun.trigger))).all()) == {"schedule"}
