"""The import's lease across processes: two contexts on one database stand for two processes
(each its own engine and connections), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import Tenant
from tests.services.helpers import instance_of, row_counts, sandbox_session
from zapsync.runtime.context import AppContext
from zapsync.services import work_lease as lease_module
from zapsync.services.imports import importer as conversation_import
from zapsync.services.imports.importer import (
    ImportProgress,
    import_conversations,
    resume_cut_off_imports,
)
from zapsync.services.imports.lease import held, lease_name
from zapsync.store.models import Lease, SyncRun
from zapsync.store.types import utcnow


@pytest.fixture
async def other(ctx: AppContext) -> AsyncIterator[AppContext]:
    """A second process on the same database and the same gateway."""
    second = AppContext.create(ctx.settings, ctx.world)
    try:
        yield second
    finally:
        await second.aclose()


async def test_two_processes_importing_one_session_at_once_import_it_once(
    ctx: AppContext, other: AppContext, tenant: Tenant
) -> None:
    session_id = await sandbox_session(ctx, tenant)
    inst = instance_of(ctx, session_id)
    ctx.world.seed(inst, chats=8, messages=400)
    expected = sum(len(c.messages) for c in inst.chats.values())
    ctx.world.latency_ms = 10  # the first import is still going when the second asks
    under_way = asyncio.Event()

    def watch(p: ImportProgress) -> None:
        if p.chats_listed:
            under_way.set()

    first = asyncio.create_task(
        import_conversations(ctx, session_id, trigger="manual", progress=watch)
    )
    await asyncio.wait_for(under_way.wait(), timeout=30)
    assert session_id in await held(other, [session_id])  # the other process sees it taken
    second = await import_conversations(other, session_id, trigger="manual")
    report = await first

    assert report.status == "succeeded" and report.messages["created"] == expected
    # The second waited for the first, then found nothing left to write.
    assert second.run_id != report.run_id
    assert second.messages["created"] == 0 and second.created == 0
    assert (await row_counts(ctx))["messages"] == expected
    assert await held(ctx, [session_id]) == {}  # released


class Crash(BaseException):
    """The process dies: nothing below the import gets to record anything."""


async def test_an_import_whose_runner_died_resumes_at_the_next_start(
    ctx: AppContext, other: AppContext, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversation_import, "COMMIT_EVERY", 250)
    session_id = await sandbox_session(ctx, tenant)
    inst = instance_of(ctx, session_id)
    ctx.world.seed(inst, chats=12, messages=1_800)
    expected = sum(len(c.messages) for c in inst.chats.values())

    def crash(p: ImportProgress) -> None:
        if p.messages_created:
            raise Crash

    with pytest.raises(Crash):
        await import_conversations(ctx, session_id, trigger="connect", progress=crash)
    # What a killed runner leaves: its run `running`, saved a moment ago, and its lease,
    # which it no longer renews.
    async with ctx.db.session() as db:
        db.add(
            Lease(
                name=lease_name(session_id),
                holder="dead-host:4242:0",
                expires_at=utcnow() - timedelta(seconds=1),
                taken_at=utcnow() - timedelta(seconds=31),
            )
        )
        await db.commit()
        run = await db.scalar(select(SyncRun))
        assert run is not None and run.status == "running"

    (resumed,) = await resume_cut_off_imports(other)  # the next start, in another process

    assert resumed.run_id == run.id and resumed.status == "succeeded"
    assert resumed.messages["created"] == expected
    assert (await row_counts(ctx))["messages"] == expected
    assert await held(ctx, [session_id]) == {}


async def test_start_up_leaves_alone_an_import_whose_runner_is_alive(
    ctx: AppContext, other: AppContext, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversation_import, "RESUME_MARGIN", 0.2)
    session_id = await sandbox_session(ctx, tenant)
    async with ctx.db.session() as db:
        db.add(
            SyncRun(
                kind=conversation_import.KIND,
                trigger="connect",
                status="running",
                organization_id=tenant.organization_id,
                session_id=session_id,
                started_at=utcnow(),
                synced=0,
                created=0,
                updated=0,
                skipped=0,
                errors=0,
                error_messages=[],
                report={},
                cursor={},
            )
        )
        db.add(
            Lease(
                name=lease_name(session_id),
                holder="alive-host:1:0",
                expires_at=utcnow() + timedelta(seconds=1),
                taken_at=utcnow(),
            )
        )
        await db.commit()

    async def renew_once() -> None:  # the runner is alive: it renews before the expiry
        await asyncio.sleep(0.3)
        async with ctx.db.session() as db:
            lease = await db.get_one(Lease, lease_name(session_id))
            lease.expires_at = utcnow() + timedelta(seconds=30)
            await db.commit()

    renewing = asyncio.create_task(renew_once())
    assert await resume_cut_off_imports(other) == []
    await renewing


async def test_an_import_whose_lease_was_taken_over_stops_and_leaves_the_run_alone(
    ctx: AppContext, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lease_module, "RENEW_EVERY", 0.05)
    session_id = await sandbox_session(ctx, tenant)
    inst = instance_of(ctx, session_id)
    ctx.world.seed(inst, chats=20, messages=2_000)
    ctx.world.latency_ms = 20  # still going when its lease is taken
    under_way = asyncio.Event()

    def watch(p: ImportProgress) -> None:
        if p.chats_listed:
            under_way.set()

    running = asyncio.create_task(
        import_conversations(ctx, session_id, trigger="manual", progress=watch)
    )
    await asyncio.wait_for(under_way.wait(), timeout=30)
    # Its renewals were late (a stalled runner): the lease expired and another runner took it.
    async with ctx.db.session() as db:
        lease = await db.get_one(Lease, lease_name(session_id))
        lease.holder = "other-host:7:0"
        lease.expires_at = utcnow() + timedelta(seconds=30)
        await db.commit()

    report = await asyncio.wait_for(running, timeout=30)

    assert report.status == "running"  # the new holder's to finish, not overwritten by us
    async with ctx.db.session() as db:
        holder = (await db.get_one(Lease, lease_name(session_id))).holder
    assert holder == "other-host:7:0"  # not released by the runner that lost it
