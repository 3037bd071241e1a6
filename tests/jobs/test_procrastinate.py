"""The scaled-out mode's job queue (`ZAPSYNC_JOBS=procrastinate`, PostgreSQL only): the
schedules are Procrastinate periodic tasks with the embedded mode's crontabs (in UTC), a session
that becomes connected is imported by a worker rather than by the serving process, once however
often it is asked, and the mode refuses SQLite with one clear line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from tests.conftest import Tenant, make_tenant
from tests.support.inbox import eventually
from zapsync.api.app import create_app
from zapsync.jobs.definitions import JOBS
from zapsync.jobs.queue import (
    OUTBOX_POLL_TASK,
    OUTBOX_TASK,
    STALLED_TASK,
    JobQueue,
    build_app,
    libpq_url,
    utc_cron,
)
from zapsync.runtime.context import AppContext
from zapsync.services.sessions.gateway import sandbox_instance_name
from zapsync.settings import Settings, SettingsError, load_settings
from zapsync.store.models import Conversation, SyncRun


@pytest.fixture
def scaled(settings: Settings) -> Settings:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the scaled-out mode runs on PostgreSQL")
    return settings.model_copy(update={"jobs": "procrastinate"})


def test_the_mode_refuses_sqlite_with_one_line() -> None:
    with pytest.raises(SettingsError, match="ZAPSYNC_JOBS=procrastinate runs jobs in PostgreSQL"):
        load_settings(ZAPSYNC_JOBS="procrastinate", DATABASE_URL="sqlite+aiosqlite:///x.db")


def test_crontabs_of_the_zone_run_at_the_same_hours_in_utc() -> None:
    sao_paulo = ZoneInfo("America/Sao_Paulo")  # UTC-3, no summer time since 2019
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert utc_cron("0 2 * * *", sao_paulo, now) == "0 5 * * *"
    assert utc_cron("*/5 * * * *", sao_paulo, now) == "*/5 * * * *"
    assert utc_cron("30 22 * * *", sao_paulo, now) == "30 1 * * *"
    assert utc_cron("0 2 * * *", ZoneInfo("Asia/Kolkata"), now) == "30 20 * * *"


def test_every_schedule_is_one_periodic_task(scaled: Settings) -> None:
    app = build_app(scaled)
    periodic = {p.periodic_id: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert periodic == {
        "status-sync": "*/5 * * * *",
        "cleanup-sessions": "0 5 * * *",  # 02:00 in São Paulo
        "close-inactive-conversations": "0 * * * *",
        "import-retries": "*/2 * * * *",
        "chatwoot-pull": "*/15 * * * *",
        "retry-stalled-jobs": "* * * * *",
        "outbox-poll": "* * * * *",
    }
    assert set(periodic) == {*JOBS, STALLED_TASK, OUTBOX_POLL_TASK}


async def test_a_connected_session_is_imported_by_a_worker_once(scaled: Settings) -> None:
    app = create_app(scaled)
    async with LifespanManager(app):
        ctx = app.state.ctx
        tenant: Tenant = await make_tenant(ctx, "Scaled", "admin@scaled.test")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            created = await client.post(
                "/api/v1/sessions",
                headers=tenant.headers,
                json={"name": "loja", "provider": "sandbox", "config": {}},
            )
            session_id = created.json()["id"]
            inst = ctx.world.get(sandbox_instance_name(session_id))
            ctx.world.seed(inst, chats=3, groups=0, empty=0, messages=30, days=2)
            scan = await client.post(
                f"/api/v1/sandbox/sessions/{session_id}/scan", headers=tenant.headers
            )
            assert scan.status_code == 200, scan.text

        async def queued() -> list[tuple[str, str]]:
            with psycopg.connect(libpq_url(scaled.database_url)) as conn:
                # (less the outbox's passes, one per outbox kind, deferred by the app's start)
                rows = conn.execute(
                    "SELECT task_name, status FROM procrastinate_jobs WHERE task_name != %s",
                    (OUTBOX_TASK,),
                ).fetchall()
            return [(str(name), str(status)) for name, status in rows]

        await eventually(queued, lambda jobs: jobs == [("import-conversations", "todo")])
        async with ctx.db.session() as db:
            assert await db.scalar(select(func.count()).select_from(Conversation)) == 0
        # asked again while it waits: still one job
        assert await ctx.defer_import(session_id, "connect") is False

        # Two workers, one after the other within the same minutes: the import is done once,
        # and each schedule's current period is deferred once, not once per worker.
        for _ in range(2):
            worker = JobQueue(ctx)
            await worker.open()
            try:
                await worker.run_worker(
                    queues=["imports"], wait=False, install_signal_handlers=False
                )
            finally:
                await worker.close()
        jobs = await queued()
        assert ("import-conversations", "succeeded") in jobs
        names = [name for name, _ in jobs]
        assert len(names) == len(set(names)), f"a job deferred twice: {jobs}"
        assert set(names) - {"import-conversations"} <= {*JOBS, STALLED_TASK, OUTBOX_POLL_TASK}
        assert "status-sync" in names  # a five-minute period always started recently
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            shown = (await client.get("/api/v1/jobs/queue", headers=tenant.headers)).json()
            listed = (await client.get("/api/v1/jobs", headers=tenant.headers)).json()
        assert shown["mode"] == "procrastinate"
        assert {"task": "import-conversations", "status": "succeeded", "count": 1} in shown["jobs"]
        assert all(job["scheduled"] for job in listed)
        async with ctx.db.session() as db:
            assert await db.scalar(select(func.count()).select_from(Conversation)) == 3
            runs = (await db.scalars(select(SyncRun))).all()
            assert [(r.kind, r.status, r.trigger) for r in runs] == [
                ("import-conversations", "succeeded", "connect")
            ]


async def _queue_an_import_and_a_send(settings: Settings) -> None:
    ctx = AppContext.create(settings)
    queue = JobQueue(ctx)
    await queue.open()
    try:
        assert await queue.defer_import(7, "connect")
        await queue.defer_outbox("gateway.send")
    finally:
        await queue.close()
        await ctx.aclose()


def test_zapsync_jobs_shows_the_queue_by_task_and_state(scaled: Settings, tmp_path: Path) -> None:
    asyncio.run(_queue_an_import_and_a_send(scaled))
    env = {
        **os.environ,
        "DATABASE_URL": scaled.database_url,
        "ZAPSYNC_JOBS": "procrastinate",
        "ZAPSYNC_SECRET_KEY": "test-secret-key",
        "ZAPSYNC_DATA_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "zapsync.cli.main", "jobs", "--json"]
    shown = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60
    )
    report = json.loads(shown.stdout)
    assert report["mode"] == "procrastinate"
    assert set(report["schedules"]) == set(JOBS)
    assert {"task": "import-conversations", "status": "todo", "count": 1} in report["jobs"]
    assert {"task": OUTBOX_TASK, "status": "todo", "count": 1} in report["jobs"]
    table = subprocess.run(
        command[:-1], env=env, cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60
    )
    assert "Procrastinate workers" in table.stdout and "import-conversations" in table.stdout


def test_zapsync_worker_works_imports_apart_and_stops_cleanly_on_sigterm(
    scaled: Settings, tmp_path: Path
) -> None:
    """`zapsync worker` runs the imports queue in a worker of its own (a few at a time, so a
    burst is shared with the other workers) beside the one for the other queues; SIGTERM
    stops both, unregistered, with exit status 0."""
    env = {
        **os.environ,
        "DATABASE_URL": scaled.database_url,
        "ZAPSYNC_JOBS": "procrastinate",
        "ZAPSYNC_SECRET_KEY": "test-secret-key",
        "ZAPSYNC_DATA_DIR": str(tmp_path),
    }
    url = libpq_url(scaled.database_url)

    def registered() -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
        return int(row[0]) if row else 0

    assert registered() == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "zapsync.cli.main", "worker"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while registered() < 2 and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert registered() == 2, "an imports worker and a worker of the other queues"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        _, err = worker.communicate(timeout=10)
    assert "imports 2 at a time" in " ".join(err.split())  # as Rich wrapped it
    assert registered() == 0


async def test_a_stalled_pass_whose_work_is_queued_again_frees_its_lock(scaled: Settings) -> None:
    """A worker killed during an outbox pass leaves it `doing` with the kind's lock while a new
    pass of the same kind waits (same queueing lock): the stalled one cannot be queued again
    (the lock is unique among waiting jobs), so it is ended, and the waiting pass can run.
    Before, the retry failed every 3 s and the waiting pass never ran (a send held for good)."""
    ctx = AppContext.create(scaled)
    queue = JobQueue(ctx)
    await queue.open()
    try:
        manager = queue.app.job_manager
        await queue.defer_outbox("gateway.send")
        dead, alive = await manager.register_worker(), await manager.register_worker()
        taken = await manager.fetch_job(queues=["outbox"], worker_id=dead)
        assert taken is not None and taken.id is not None and taken.status == "doing"
        await queue.defer_outbox("gateway.send")  # the next pass, deferred meanwhile
        with psycopg.connect(libpq_url(scaled.database_url)) as conn:
            conn.execute(
                "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour' "
                "WHERE id = %s",
                (dead,),
            )
        assert await manager.fetch_job(queues=["outbox"], worker_id=alive) is None  # locked

        await queue.app.tasks[STALLED_TASK](timestamp=int(time.time()))

        with psycopg.connect(libpq_url(scaled.database_url)) as conn:
            rows = conn.execute(
                "SELECT id, status::text FROM procrastinate_jobs WHERE task_name = %s ORDER BY id",
                (OUTBOX_TASK,),
            ).fetchall()
        statuses: dict[int, str] = dict(rows)
        assert statuses[taken.id] == "failed"
        waiting = await manager.fetch_job(queues=["outbox"], worker_id=alive)
        assert waiting is not None and waiting.id != taken.id  # its lock is free now
    finally:
        await queue.close()
        await ctx.aclose()
