"""Jobs and organizations: an admin's job run touches only their organization, an
all-organization run is recorded per organization, each sees only its own runs, and every
recorded run reaches its organization's sockets as `sync_run`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.api.test_realtime import first, server, socket
from tests.conftest import Tenant, make_tenant
from tests.services.helpers import instance_of
from tests.support.sessions import insert_session
from zapsync.runtime.context import AppContext
from zapsync.settings import Settings
from zapsync.store.models import SyncRun

CRON = {"Authorization": "Bearer test-cron-secret"}


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[str]:
    async with server(settings) as url:
        yield url


async def interrupted_import(ctx: AppContext, tenant: Tenant, session_id: int) -> int:
    """An import of the session left `interrupted` (its gateway went away mid-run)."""
    async with ctx.db.session() as db:
        run = SyncRun(
            organization_id=tenant.organization_id,
            session_id=session_id,
            kind="import-conversations",
            trigger="connect",
            status="interrupted",
            error_messages=["gateway unavailable: connection refused"],
            report={"needs_retry": True},
            cursor={"since": None, "done": [], "current": None},
        )
        db.add(run)
        await db.commit()
        return run.id


async def jobs_of(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, dict[str, Any]]:
    resp = await client.get("/api/v1/jobs", headers=tenant.headers)
    assert resp.status_code == 200, resp.text
    return {job["name"]: job for job in resp.json()}


async def test_an_admins_import_retries_leave_other_organizations_imports_alone(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await insert_session(ctx, other_tenant, "sandbox", status="connected")
    instance_of(ctx, theirs)
    their_run = await interrupted_import(ctx, other_tenant, theirs)

    resp = await client.post("/api/v1/jobs/import-retries/run", headers=tenant.headers)

    assert resp.status_code == 200, resp.text
    assert resp.json() == {"retried": 0, "runs": []}
    async with ctx.db.session() as db:
        runs = (await db.scalars(select(SyncRun))).all()
    assert [(r.id, r.status) for r in runs] == [(their_run, "interrupted")]

    # Their own admin's run resumes it.
    resp = await client.post("/api/v1/jobs/import-retries/run", headers=other_tenant.headers)
    assert [r["run_id"] for r in resp.json()["runs"]] == [their_run]


async def test_an_all_organization_run_shows_each_organization_only_its_own_errors(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, other_tenant: Tenant
) -> None:
    ours = await insert_session(
        ctx,
        tenant,
        "evolution",
        config={"base_url": "http://127.0.0.1:9", "api_key": "k", "instance": "acme-vendas"},
    )
    theirs = await insert_session(
        ctx,
        other_tenant,
        "evolution",
        config={"base_url": "http://127.0.0.1:9", "api_key": "k", "instance": "globex-vendas"},
    )
    bystander = await make_tenant(ctx, "Initech", "agent@initech.test", "agent")

    report = (await client.post("/api/v1/cron/status-sync", headers=CRON)).json()
    assert report["checked"] == 2 and len(report["errors"]) == 2
    assert len(report["run_ids"]) == 2 and report["run_id"] is None

    for me, mine, other in ((tenant, ours, theirs), (other_tenant, theirs, ours)):
        last = (await jobs_of(client, me))["status-sync"]["last_run"]
        assert last is not None and last["trigger"] == "cron"
        assert last["counts"]["synced"] == 1 and last["counts"]["errors"] == 1
        (message,) = last["error_messages"]
        assert message.startswith(f"session {mine}:")
        assert f"session {other}" not in message
    assert (await jobs_of(client, bystander))["status-sync"]["last_run"] is None

    # An admin's own run is recorded for their organization alone.
    mine = (await client.post("/api/v1/jobs/status-sync/run", headers=tenant.headers)).json()
    assert mine["checked"] == 1 and mine["run_ids"] == [mine["run_id"]]
    last_theirs = (await jobs_of(client, other_tenant))["status-sync"]["last_run"]
    assert last_theirs["trigger"] == "cron"


async def test_every_recorded_run_reaches_its_organizations_sockets(
    served: str, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with (
        httpx.AsyncClient(base_url=served) as http,
        socket(served, auth={"token": tenant.token}) as (_, ours),
        socket(served, auth={"token": other_tenant.token}) as (_, theirs),
    ):
        for job in ("status-sync", "cleanup-sessions", "close-inactive-conversations"):
            resp = await http.post(f"/api/v1/jobs/{job}/run", headers=tenant.headers)
            assert resp.status_code == 200, resp.text
            run_id = resp.json()["run_id"]

            def recorded(event: str, data: Any, run_id: int = run_id) -> bool:
                return event == "sync_run" and data["id"] == run_id

            event, _ = await first(ours, recorded, timeout=10)
            assert event["kind"] == job and event["status"] == "succeeded"
        assert not [e for e, _ in theirs if e == "sync_run"], "nothing crosses organizations"
