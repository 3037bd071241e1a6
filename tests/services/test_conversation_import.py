"""The conversation import against the in-process sandbox gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
from sqlalchemy import func, select

from tests.conftest import Tenant
from tests.services.helpers import (
    at,
    instance_of,
    messages_since,
    person_chats,
    row_counts,
    sandbox_session,
)
from zapsync.bus.events import Event
from zapsync.runtime.background import BackgroundTasks
from zapsync.runtime.context import AppContext
from zapsync.sandbox.world import Fault
from zapsync.services.imports import importer as conversation_import
from zapsync.services.imports.importer import (
    ImportProgress,
    import_conversations,
    import_pending_retries,
)
from zapsync.store.models import Contact, Conversation, Message, SyncRun


def collect_events(ctx: AppContext) -> list[Event]:
    seen: list[Event] = []

    async def keep(event: Event) -> None:
        seen.append(event)

    ctx.bus.subscribe(keep)
    return seen


async def run_since(ctx: AppContext, run_id: int) -> datetime | None:
    async with ctx.db.session() as db:
        run = await db.get_one(SyncRun, run_id)
        since = run.cursor.get("since")
        return datetime.fromisoformat(since) if since else None


async def test_import_of_200_chats_counts_what_the_settings_admit(
    ctx: AppContext, tenant: Tenant
) -> None:
    session_id = await sandbox_session(ctx, tenant)
    inst = instance_of(ctx, session_id)
    ctx.world.seed(
        inst, chats=200, groups=20, empty=10, messages=20_000, status_broadcast=True, days=10
    )
    people = [c for c in person_chats(inst) if c.messages]
    expected_messages = sum(len(c.messages) for c in people)
    assert len(people) == 170 and expected_messages > 17_000
    events = collect_events(ctx)

    started = time.perf_counter()
    report = await import_conversations(ctx, session_id, trigger="manual")
    elapsed = time.perf_counter() - started

    assert report.status == "succeeded", report.error_messages
    assert (report.synced, report.created, report.updated, report.errors) == (170, 170, 0, 0)
    assert report.skipped == 31
    assert report.skipped_by_reason == {"empty": 10, "group": 20, "status_broadcast": 1}
    assert report.chats_listed == 201
    assert report.messages["created"] == expected_messages
    assert report.messages["already_stored"] == 0
    assert not report.needs_retry
    assert elapsed < 30, f"importing 20,000 messages took {elapsed:.1f}s"

    counts = await row_counts(ctx)
    assert counts["messages"] == expected_messages
    assert counts["conversations"] == 170
    assert counts["contacts"] == 170
    async with ctx.db.session() as db:
        groups = await db.scalar(select(func.count()).where(Conversation.is_group.is_(True)))
        assert groups == 0
        newest = {c.jid: c.messages[-1] for c in people}
        rows = (await db.scalars(select(Conversation))).all()
        for conversation in rows:
            last = newest[conversation.chat_jid]
            assert conversation.last_message_at == at(last.timestamp)
            assert conversation.last_message_preview == last.body
            assert conversation.unread_count == 0  # history is not news
            assert conversation.contact_id is not None
        phones = (await db.scalars(select(Contact.phone_e164))).all()
        assert all(p and p.startswith("+55119") for p in phones)

    await ctx.bus.drain()
    names = [e.name for e in events]
    assert "new_message" not in names and "conversation_updated" not in names
    finished = [e for e in events if e.name == "sync_run" and e.data["status"] != "running"]
    assert len(finished) == 1
    assert finished[0].data["counts"]["created"] == 170
    assert finished[0].data["report"]["messages"]["created"] == expected_messages

    # A second import finds everything stored and writes nothing.
    async with ctx.db.session() as db:
        stamps = dict((await db.execute(select(Conversation.id, Conversation.updated_at))).all())
    again = await import_conversations(ctx, session_id, trigger="manual")
    assert again.run_id != report.run_id
    assert again.status == "succeeded"
    assert (again.synced, again.created, again.updated, again.errors) == (170, 0, 0, 0)
    assert again.skipped == 201
    assert again.skipped_by_reason == {
        "empty": 10,
        "group": 20,
        "status_broadcast": 1,
        "unchanged": 170,
    }
    assert again.messages["created"] == 0
    assert again.messages["already_stored"] == expected_messages
    assert await row_counts(ctx) == counts
    async with ctx.db.session() as db:
        after = dict((await db.execute(select(Conversation.id, Conversation.updated_at))).all())
    assert after == stamps


async def test_settings_admit_groups_empty_chats_and_a_shorter_history(
    ctx: AppContext, tenant: Tenant
) -> None:
    ctx.settings = ctx.settings.model_copy(
        update={"skip_groups": False, "import_skip_empty": False, "import_history_days": 4}
    )
    session_id = await sandbox_session(ctx, tenant)
    inst = instance_of(ctx, session_id)
    ctx.world.seed(inst, chats=30, groups=5, empty=5, messages=900, status_broadcast=True, days=10)

    report = await import_conversations(ctx, session_id, trigger="manual")

    since = await run_since(ctx, report.run_id)
    assert since is not None
    chats = [c for c in inst.chats.values() if c.jid != "status@broadcast"]
    expected = sum(len(messages_since(c, since)) for c in chats)
    assert 0 < expected < 900
    assert report.status == "succeeded"
    assert (report.synced, report.created, report.skipped) == (30, 30, 1)
    assert report.skipped_by_reason == {"status_broadcast": 1}
    assert report.messages["created"] == expected
    counts = await row_counts(ctx)
    assert counts["messages"] == expected
    assert counts["conversations"] == 30
    assert counts["contacts"] == 25  # groups have no contact
    async with ctx.db.session() as db:
        groups = (
            await db.scalars(select(Conversation).where(Conversation.is_group.is_(True)))
        ).all()
        assert len(groups) == 5
        assert all(g.contact_id is None and g.chat_jid.endswith("@g.us") for g in groups)
        assert all(g.name and g.name.startswith("Chat ") for g in groups)
        oldest = await db.scalar(select(func.min(Message.sent_at)))
        assert oldest is not None and oldest >= since
        empty = await db.scalar(select(func.count()).where(Conversation.last_message_at.is_(None)))
        assert empty == 5


async def test_an_import_interrupted_by_a_gateway_fault_resumes_without_duplicates(
    ctx: AppContext, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Written 500 messages at a time, so the progress (of what is written) moves mid-import.
    monkeypatch.setattr(conversation_import, "COMMIT_EVERY", 500)
    session_id = await sandbox_session(ctx, tenant)
    inst = instance_of(ctx, session_id)
    ctx.world.seed(inst, chats=40, groups=4, empty=2, messages=3_000)
    people = [c for c in person_chats(inst) if c.messages]
    expected = sum(len(c.messages) for c in people)

    def break_gateway(p: ImportProgress) -> None:
        if p.chats_done >= 15:
            ctx.world.fault = Fault.ERROR

    first = await import_conversations(ctx, session_id, trigger="manual", progress=break_gateway)
    assert first.status == "interrupted"
    assert first.needs_retry
    assert any("gateway unavailable" in m for m in first.error_messages)
    assert 0 < first.messages["created"] < expected
    assert (await row_counts(ctx))["messages"] == first.messages["created"]

    ctx.world.fault = Fault.NONE
    resumed = await import_conversations(ctx, session_id, trigger="manual")

    assert resumed.run_id == first.run_id
    assert resumed.resumes == 1
    assert resumed.status == "succeeded"
    assert (resumed.synced, resumed.created, resumed.updated, resumed.errors) == (34, 34, 0, 0)
    assert resumed.skipped_by_reason == {"empty": 2, "group": 4}
    assert resumed.messages["created"] == expected
    assert resumed.messages["already_stored"] == 0
    assert resumed.error_messages == []
    assert not resumed.needs_retry
    counts = await row_counts(ctx)
    assert counts["messages"] == expected
    assert counts["conversations"] == 34


async def test_an_import_running_at_shutdown_stops_between_pages_and_resumes_on_restart(
    ctx: AppContext, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversation_import, "COMMIT_EVERY", 100)
    session_id = await sandbox_session(ctx, tenant)
    inst = instance_of(ctx, session_id)
    ctx.world.seed(inst, chats=20, messages=2_000)
    expected = sum(len(c.messages) for c in inst.chats.values())
    ctx.world.latency_ms = 20  # each gateway call: the import is still going when asked to stop
    under_way = asyncio.Event()

    def watch(p: ImportProgress) -> None:
        if p.chats_done >= 2:
            under_way.set()

    ctx.tasks.grace = 60  # a cancel would only come after a minute: the stop must be its own
    ctx.tasks.spawn(
        import_conversations(ctx, session_id, trigger="connect", progress=watch), name="import"
    )
    await asyncio.wait_for(under_way.wait(), timeout=30)
    await ctx.tasks.close()

    async with ctx.db.session() as db:
        run = await db.scalar(select(SyncRun))
        assert run is not None and run.status == "interrupted"
        assert any("zapsync stopped" in m for m in run.error_messages)
        assert run.report["needs_retry"] is True
        written = run.report["messages"]["created"]
    assert 0 < written < expected
    assert (await row_counts(ctx))["messages"] == written  # the run covers what was written

    ctx.tasks = BackgroundTasks()  # the next start of the process
    ctx.world.latency_ms = 0
    (resumed,) = await import_pending_retries(ctx)
    assert resumed.run_id == run.id and resumed.status == "succeeded"
    assert resumed.messages["created"] == expected
    assert (await row_counts(ctx))["messages"] == expected  # the chat it stopped in, once


class Crash(BaseException):
    """The process dies: nothing below the import gets to record anything."""


async def test_an_import_left_running_by_a_crash_is_resumed_mid_chat(
    ctx: AppContext, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = await sandbox_session(ctx, tenant)
    inst = instance_of(ctx, session_id)
    # 150 messages a chat (pages of 100 and 50) written 250 at a time: the first commit
    # lands between the second chat's pages, and the crash comes right after it.
    monkeypatch.setattr(conversation_import, "COMMIT_EVERY", 250)
    ctx.world.seed(inst, chats=12, messages=1_800)
    expected = sum(len(c.messages) for c in inst.chats.values())

    def crash(p: ImportProgress) -> None:
        if p.messages_created:
            raise Crash

    with pytest.raises(Crash):
        await import_conversations(ctx, session_id, trigger="connect", progress=crash)
    async with ctx.db.session() as db:
        run = await db.scalar(select(SyncRun))
        assert run is not None and run.status == "running"
        assert run.cursor["current"] is not None  # stopped inside a chat
        assert run.report["messages"]["created"] == 250
    assert (await row_counts(ctx))["messages"] == 250  # the cursor covers what was written

    # A worker finding a fresh `running` run leaves it to whoever may still be on it...
    assert await import_pending_retries(ctx) == []
    # ...and an explicit import picks it up where it stopped.
    resumed = await import_conversations(ctx, session_id, trigger="manual")
    assert resumed.run_id == run.id
    assert resumed.status == "succeeded"
    assert (resumed.synced, resumed.created, resumed.updated) == (12, 12, 0)
    assert resumed.messages["created"] == expected
    assert (await row_counts(ctx))["messages"] == expected


async def test_a_slow_gateway_still_sees_its_pages_written_every_few_seconds(
    ctx: AppContext, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversation_import, "COMMIT_EVERY", 1_000_000)
    monkeypatch.setattr(conversation_import, "COMMIT_AFTER", 0.05)
    session_id = await sandbox_session(ctx, tenant)
    inst = instance_of(ctx, session_id)
    ctx.world.seed(inst, chats=3, messages=600)
    ctx.world.latency_ms = 60  # each gateway call
    written: list[int] = []

    def keep(p: ImportProgress) -> None:
        written.append(p.messages_created)

    report = await import_conversations(ctx, session_id, trigger="manual", progress=keep)

    assert report.status == "succeeded" and report.messages["created"] == 600
    # Far from COMMIT_EVERY, pages were still written (and reported) along the way.
    assert any(0 < n < 600 for n in written)


async def test_an_import_that_finds_no_chat_is_empty_and_retried(
    ctx: AppContext, tenant: Tenant
) -> None:
    session_id = await sandbox_session(ctx, tenant)
    inst = instance_of(ctx, session_id)  # paired, but WhatsApp has not sent history yet

    first = await import_conversations(ctx, session_id, trigger="connect")
    assert first.status == "empty"
    assert first.needs_retry
    assert (first.synced, first.created, first.skipped) == (0, 0, 0)

    ctx.world.seed(inst, chats=5, empty=1, messages=40)
    retried = await import_pending_retries(ctx)

    assert [r.session_id for r in retried] == [session_id]
    assert retried[0].status == "succeeded"
    assert retried[0].created == 4
    assert retried[0].messages["created"] == 40
    async with ctx.db.session() as db:
        runs = (await db.scalars(select(SyncRun).order_by(SyncRun.id))).all()
        assert [r.status for r in runs] == ["empty", "succeeded"]
        assert runs[0].report["needs_retry"] is False
        assert runs[1].trigger == "retry"
    assert await import_pending_retries(ctx) == []


async def test_only_empty_chats_count_as_an_empty_import(ctx: AppContext, tenant: Tenant) -> None:
    session_id = await sandbox_session(ctx, tenant)
    inst = instance_of(ctx, session_id)
    ctx.world.seed(inst, chats=3, empty=3, status_broadcast=True)

    report = await import_conversations(ctx, session_id, trigger="connect")

    assert report.status == "empty" and report.needs_retry
    assert report.skipped_by_reason == {"empty": 3, "status_broadcast": 1}
    assert report.chats_listed == 4


async def test_unknown_session_is_not_found(ctx: AppContext) -> None:
    from zapsync.services.errors import NotFound

    with pytest.raises(NotFound):
        await import_conversations(ctx, 4242, trigger="manual")
