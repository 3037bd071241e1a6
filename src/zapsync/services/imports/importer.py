"""Import a session's chats and their history from its gateway, as one recorded sync run.

The import streams: one page of chats, then one page of a chat's messages at a time. Fetched
pages wait in a small buffer; every `COMMIT_EVERY` messages or `COMMIT_AFTER` seconds (and
after each page of chats) the buffer is written with `store_history` in one transaction,
together with the run's counters and cursor as they stand after those pages. A crash, a
restart or a gateway outage leaves a run `running` or `interrupted` with the chats already
done in its cursor; the next import of the session resumes that run, so the finished run
counts exactly what a clean run would have.

Counts are per chat: `synced` chats admitted and reconciled, `created` chats whose
conversation this import created, `updated` existing conversations that gained messages or
acks, `skipped` chats left alone (by setting, or with nothing new), `errors` chats the gateway
refused to list. Message counts and the skip reasons are in the run's report.

Gateways often list nothing right after pairing (Evolution's `findChats` only shows chats with
a stored message). A run that finds no chat with history is recorded `empty` with
`needs_retry`, and `import_pending_retries` runs it again later or when history arrives.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.domain import gateway
from zapsync.domain.identity import InvalidJid, JidKind, parse_jid
from zapsync.providers.base import (
    ContactDirectory,
    Gateway,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
)
from zapsync.runtime.context import AppContext
from zapsync.services.errors import NotFound, ServiceError
from zapsync.services.imports.lease import SessionLease, held, session_lease
from zapsync.services.ingest.messages import StoreResult, record_chats, store_history
from zapsync.services.runs import run_json, start_run
from zapsync.services.sessions.gateway import gateway_for
from zapsync.store import import_runs
from zapsync.store.models import Session, SyncRun
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)

KIND = "import-conversations"
RESUMABLE = ("running", "interrupted")
# An account may truly have no chat; stop retrying an empty import on a timer after this many
# attempts (a history event still retries it).
MAX_EMPTY_ATTEMPTS = 6
# A `running` run whose last page is older than this was left by a crash, not in progress.
STALE_AFTER = timedelta(minutes=5)
# Seconds past a lease's expiry before start-up looks at it again (clocks, a late renewal).
RESUME_MARGIN = 1.0
MAX_ERROR_MESSAGES = 50
# Fetched pages are written (one transaction, with the run's cursor) once they hold this many
# messages. A commit per 100-message page cost more than the page's rows; and as new messages
# land all over the (session, provider id) index, each commit rewrites much of it: on SQLite,
# with 200k messages stored, a commit of 1,000 messages took ~28 ms, one of 5,000 ~37 ms. Not
# more, as the pages wait in memory (a real gateway's with their raw payloads). They are
# fetched before their transaction begins, so no transaction waits on the gateway (SQLite
# writers hold the write lock from BEGIN).
COMMIT_EVERY = 5000
# ...or once the oldest of them waited this long: a slow gateway still sees its progress
# saved (and reported) every few seconds.
COMMIT_AFTER = 2.0  # seconds
# Messages per `store_history` call inside a transaction: bounds the rows built at once.
STORE_EVERY = 1000


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Told after every page and every chat fetched; `chats_done` and `messages_created`
    count what is written, so they move a batch at a time."""

    chats_listed: int
    chats_done: int
    messages_created: int


ProgressCallback = Callable[[ImportProgress], None]


@dataclass(slots=True)
class _Pages:
    """Fetched messages of one chat, not written yet."""

    chat: gateway.Chat
    current: dict[str, Any]  # the chat's entry in the cursor
    messages: list[gateway.Message]


# Chat bookkeeping that waits in the buffer behind the chat's pages, so the state saved with
# a batch describes exactly the pages written so far.
_Step = Callable[[AsyncSession], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ImportReport:
    run_id: int
    session_id: int
    status: str  # succeeded | partial | empty | interrupted | failed
    synced: int
    created: int
    updated: int
    skipped: int
    errors: int
    skipped_by_reason: dict[str, int]
    messages: dict[str, int]
    chats_listed: int
    error_messages: list[str]
    needs_retry: bool
    resumes: int

    @classmethod
    def of(cls, run: SyncRun) -> ImportReport:
        report = run.report or {}
        return cls(
            run_id=run.id,
            session_id=run.session_id or 0,
            status=run.status,
            synced=run.synced,
            created=run.created,
            updated=run.updated,
            skipped=run.skipped,
            errors=run.errors,
            skipped_by_reason=dict(report.get("skipped_by_reason", {})),
            messages=dict(report.get("messages", {})),
            chats_listed=int(report.get("chats_listed", 0)),
            error_messages=list(run.error_messages or []),
            needs_retry=bool(report.get("needs_retry", False)),
            resumes=int(report.get("resumes", 0)),
        )


def _new_message_counts() -> dict[str, int]:
    return {"fetched": 0, "created": 0, "updated": 0, "already_stored": 0}


@dataclass
class _State:
    """Everything a resumed run needs, saved in the run row with every page."""

    since: datetime | None
    attempt: int = 1
    resumes: int = 0
    synced: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=_new_message_counts)
    chats_listed: int = 0
    done: list[str] = field(default_factory=list)
    current: dict[str, Any] | None = None
    interruptions: list[str] = field(default_factory=list)
    # Not saved: what this attempt's listing saw, and why this attempt stopped.
    listed_now: int = 0
    fatal: str | None = None

    @classmethod
    def load(cls, run: SyncRun) -> _State:
        report, cursor = run.report or {}, run.cursor or {}
        since = cursor.get("since")
        # The stop that left the run resumable is history now, not an error of the run.
        chat_errors = int(report.get("chat_errors", 0))
        return cls(
            since=datetime.fromisoformat(since) if since else None,
            attempt=int(report.get("attempt", 1)),
            resumes=int(report.get("resumes", 0)),
            synced=run.synced,
            created=run.created,
            updated=run.updated,
            skipped=run.skipped,
            errors=chat_errors,
            error_messages=list(run.error_messages or [])[:chat_errors],
            interruptions=list(report.get("interruptions", [])),
            reasons=dict(report.get("skipped_by_reason", {})),
            messages={**_new_message_counts(), **report.get("messages", {})},
            chats_listed=int(report.get("chats_listed", 0)),
            done=list(cursor.get("done", [])),
            current=cursor.get("current"),
        )

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_messages) < MAX_ERROR_MESSAGES:
            self.error_messages.append(message)

    def stop(self, message: str) -> None:
        self.fatal = message
        self.interruptions.append(f"{utcnow().isoformat()} {message}")

    def report(self, settings: dict[str, Any], needs_retry: bool) -> dict[str, Any]:
        return {
            "chats_listed": max(self.chats_listed, self.listed_now),
            "skipped_by_reason": dict(sorted(self.reasons.items())),
            "messages": dict(self.messages),
            "settings": settings,
            "attempt": self.attempt,
            "resumes": self.resumes,
            "interruptions": list(self.interruptions[-MAX_ERROR_MESSAGES:]),
            "chat_errors": self.errors,
            "needs_retry": needs_retry,
        }

    def columns(self, settings: dict[str, Any], needs_retry: bool = False) -> dict[str, Any]:
        return {
            "synced": self.synced,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "errors": self.errors + (1 if self.fatal else 0),
            "error_messages": [*self.error_messages, *([self.fatal] if self.fatal else [])],
            "report": self.report(settings, needs_retry),
            "cursor": {
                "since": self.since.isoformat() if self.since else None,
                "done": list(self.done),
                "current": dict(self.current) if self.current else None,
                "saved_at": utcnow().isoformat(),
            },
        }


async def import_conversations(
    ctx: AppContext,
    session_id: int,
    *,
    trigger: str,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import (or resume importing) the session's chats and messages; returns the run's report.

    One import per session runs at a time, across processes (a lease in the database); a
    second call waits for the first and then finds nothing left to write.
    """
    async with session_lease(ctx, session_id) as lease:
        return await _Import(ctx, session_id, trigger, progress, lease).run()


class _Stopping(Exception):
    """This process is shutting down: the run ends `interrupted` and resumes at the next start."""


class _LeaseLost(Exception):
    """Another runner took the session's lease (ours was not renewed in time): stop writing."""


class _Import:
    def __init__(
        self,
        ctx: AppContext,
        session_id: int,
        trigger: str,
        progress: ProgressCallback | None,
        lease: SessionLease,
    ) -> None:
        self.ctx = ctx
        self.lease = lease
        self.session_id = session_id
        self.trigger = trigger
        self.progress = progress
        self.organization_id = 0
        self.run_id = 0
        self.state = _State(since=None)
        # Fetched and not written yet; `state` changes only when they are written.
        self._buffer: list[_Pages | _Step] = []
        self._buffered = 0  # messages in the buffer
        self._buffered_since = 0.0  # monotonic time of the oldest buffered page
        settings = ctx.settings
        self.skip_groups = settings.skip_groups
        self.skip_empty = settings.import_skip_empty
        self.settings_report = {
            "skip_groups": settings.skip_groups,
            "skip_empty": settings.import_skip_empty,
            "history_days": settings.import_history_days,
        }

    async def run(self) -> ImportReport:
        gw = await self._begin()
        status = "failed"
        try:
            status = await self._import_all(gw)
        except GatewayUnavailable as exc:
            status = "interrupted"
            self.state.stop(f"gateway unavailable: {exc.reason}")
        except _Stopping:
            status = "interrupted"
            self.state.stop("zapsync stopped; the import resumes where it was")
        except _LeaseLost:
            # The run is the new holder's now: what it records is the run's story, not ours.
            log.warning("import left to the runner that took its lease", run_id=self.run_id)
            return await self._as_recorded()
        except GatewayRejected as exc:
            self.state.stop(f"gateway refused: {exc.reason}")
        except Exception as exc:
            self.state.stop(f"{type(exc).__name__}: {exc}")
            await self._finish("failed")
            raise
        finally:
            await gw.aclose()
        return await self._finish(status)

    async def _begin(self) -> Gateway:
        ctx = self.ctx
        async with ctx.db.session() as db:
            session = await db.get(Session, self.session_id)
            if session is None or session.archived_at is not None:
                raise NotFound(f"session {self.session_id} not found")
            self.organization_id = session.organization_id
            gw = gateway_for(ctx, session)  # a config that cannot build a gateway starts no run
            last = await import_runs.latest_run(db, self.session_id, KIND)
            if last is not None and last.status in RESUMABLE:
                run = last
                self.state = _State.load(run)
                self.state.resumes += 1
                log.info("import resumes", session_id=self.session_id, run_id=run.id)
            else:
                days = ctx.settings.import_history_days
                attempt = 1
                if last is not None and last.status == "empty":
                    attempt = int((last.report or {}).get("attempt", 1)) + 1
                    last.report = {**(last.report or {}), "needs_retry": False}
                self.state = _State(
                    since=utcnow() - timedelta(days=days) if days > 0 else None, attempt=attempt
                )
                run = await start_run(
                    db,
                    kind=KIND,
                    trigger=self.trigger,
                    organization_id=session.organization_id,
                    session_id=self.session_id,
                )
            for name, value in self.state.columns(self.settings_report).items():
                setattr(run, name, value)
            run.status = "running"
            run.finished_at = None
            await db.flush()
            self.run_id = run.id
            publish_on_commit(db, Event("sync_run", self.organization_id, run_json(run)))
            await db.commit()
            return gw

    async def _save(self, db: AsyncSession) -> None:
        await import_runs.save_progress(db, self.run_id, self.state.columns(self.settings_report))

    async def _finish(self, status: str) -> ImportReport:
        state = self.state
        if status in ("succeeded", "partial") and not self._found_history():
            status = "empty"
        needs_retry = status == "interrupted" or (
            status == "empty" and state.attempt < MAX_EMPTY_ATTEMPTS
        )
        async with self.ctx.db.session() as db:
            run = await db.get_one(SyncRun, self.run_id, populate_existing=True)
            for name, value in state.columns(self.settings_report, needs_retry).items():
                setattr(run, name, value)
            run.status = status
            run.finished_at = utcnow()
            publish_on_commit(db, Event("sync_run", self.organization_id, run_json(run)))
            await db.commit()
            log.info(
                "import finished",
                session_id=self.session_id,
                run_id=run.id,
                status=status,
                created=run.created,
                messages=state.messages["created"],
            )
            return ImportReport.of(run)

    async def _as_recorded(self) -> ImportReport:
        async with self.ctx.db.session() as db:
            return ImportReport.of(await db.get_one(SyncRun, self.run_id))

    def _found_history(self) -> bool:
        """False when the gateway showed no chat with history yet (right after pairing)."""
        state = self.state
        if state.synced or state.errors:
            return True
        return any(n for reason, n in state.reasons.items() if reason not in _NO_HISTORY)

    def _tell(self) -> None:
        if self.progress is not None:
            self.progress(
                ImportProgress(
                    chats_listed=max(self.state.listed_now, len(self.state.done)),
                    chats_done=len(self.state.done),
                    messages_created=self.state.messages["created"],
                )
            )

    async def _import_all(self, gw: Gateway) -> str:
        try:
            await self._import_chats(gw)
        except (GatewayError, _Stopping):
            await self._flush()  # the pages fetched before the stop are whole
            raise
        return "partial" if self.state.errors else "succeeded"

    async def _import_chats(self, gw: Gateway) -> None:
        seen = set(self.state.done)
        names = await self._saved_names(gw)
        async for page in gw.list_chats():
            for listed in page:
                self._stop_if_asked()
                chat = replace(listed, name=names.get(listed.jid) or listed.name)
                self.state.listed_now += 1
                if chat.jid in seen:
                    continue
                if await self._import_chat(gw, chat):
                    seen.add(chat.jid)
                self._tell()
            await self._flush()  # also saves the chats skipped by setting, which write nothing

    async def _saved_names(self, gw: Gateway) -> dict[str, str]:
        """JID -> the name saved on the phone, from gateways that list contacts: their chat
        list may show a shorter or empty one ("Bruno" for the "Bruno Lima" the phone knows).
        Names are a nicety: an import goes on without them when the listing fails."""
        if not isinstance(gw, ContactDirectory):
            return {}
        try:
            contacts = await gw.list_contacts()
        except GatewayError as exc:
            log.warning("import without saved names", session_id=self.session_id, reason=exc.reason)
            return {}
        names: dict[str, str] = {}
        for contact in contacts:
            if contact.name:
                names[contact.jid] = contact.name
                if contact.alt_jid:
                    names.setdefault(contact.alt_jid, contact.name)
        return names

    def _stop_if_asked(self) -> None:
        # Between pages nothing is open; a cancel could land in the middle of a query.
        if self.ctx.tasks.stopping:
            raise _Stopping
        if self.lease.lost:
            raise _LeaseLost

    def _skip_reason(self, chat: gateway.Chat) -> str | None:
        try:
            kind = parse_jid(chat.jid).kind
        except InvalidJid:
            return "unsupported"
        if kind is JidKind.STATUS:
            return "status_broadcast"
        if kind is JidKind.GROUP or chat.is_group:
            return "group" if self.skip_groups else None
        if kind not in (JidKind.USER, JidKind.LID):
            return "unsupported"  # broadcast lists, channels
        return None

    async def _import_chat(self, gw: Gateway, chat: gateway.Chat) -> bool:
        """Fetch one chat into the buffer; False when the gateway refused it (not done)."""
        reason = self._skip_reason(chat)
        if reason is not None:
            self._buffer.append(lambda db: self._skip_chat(chat, reason))
            return True
        current = self.state.current  # a resumed run's chat keeps its counters
        if current is None or current.get("jid") != chat.jid:
            current = {"jid": chat.jid, "created": False, "changed": False, "messages": 0}
        since = self.state.since
        last_at = chat.last_message_at
        if since is None or last_at is None or _aware(last_at) >= since:
            try:
                async for page in gw.list_messages(chat.jid, since=since):
                    await self._fetched(chat, current, page)
                    self._tell()
                    self._stop_if_asked()
            except GatewayRejected as exc:
                message = f"{chat.jid}: {exc.reason}"
                self._buffer.append(lambda db: self._refused_chat(message))
                return False
        self._buffer.append(lambda db: self._end_chat(db, chat, current))
        return True

    async def _fetched(
        self, chat: gateway.Chat, current: dict[str, Any], page: list[gateway.Message]
    ) -> None:
        since = self.state.since
        # Gateways page by count, so the last page may reach past the history window.
        wanted = page if since is None else [m for m in page if _aware(m.timestamp) >= since]
        if not wanted:
            return
        last = self._buffer[-1] if self._buffer else None
        if (
            isinstance(last, _Pages)
            and last.current is current
            and len(last.messages) < STORE_EVERY
        ):
            last.messages.extend(wanted)
        else:
            self._buffer.append(_Pages(chat, current, list(wanted)))
        if not self._buffered:
            self._buffered_since = time.monotonic()
        self._buffered += len(wanted)
        waited = time.monotonic() - self._buffered_since
        if self._buffered >= COMMIT_EVERY or waited >= COMMIT_AFTER:
            await self._flush()

    async def _flush(self) -> None:
        """Write the buffer and save the run as it stands after it, in one transaction."""
        buffer, self._buffer, self._buffered = self._buffer, [], 0
        # A failed write leaves the state as committed, for the run's final record.
        before = copy.deepcopy(self.state)
        try:
            async with self.ctx.db.session() as db:
                results: dict[int, StoreResult] = {}
                for batch in _batches([i for i in buffer if isinstance(i, _Pages)]):
                    results.update(await self._store(db, batch))
                # The counts in fetch order: a chat's end follows its pages, and the
                # cursor's `current` ends on the chat the batch stopped in.
                for item in buffer:
                    if isinstance(item, _Pages):
                        self._count(item, results[id(item)])
                    else:
                        await item(db)
                await self._save(db)
                await db.commit()
        except BaseException:
            self.state = before
            raise

    async def _store(self, db: AsyncSession, batch: list[_Pages]) -> dict[int, StoreResult]:
        """Store the batch's pages at once; the results by `id` of each."""
        results = await store_history(
            db,
            self.ctx.bus,
            organization_id=self.organization_id,
            session_id=self.session_id,
            pages=[pages.messages for pages in batch],
            chats={pages.chat.jid: pages.chat for pages in batch},
            skip_groups=self.skip_groups,
        )
        return {id(pages): result for pages, result in zip(batch, results, strict=True)}

    def _count(self, pages: _Pages, result: StoreResult) -> None:
        state, current = self.state, pages.current
        state.current = current
        current["created"] = current["created"] or bool(result.conversations_created)
        current["changed"] = current["changed"] or bool(result.created or result.updated)
        current["messages"] += result.created + result.updated + result.skipped
        counts = state.messages
        counts["fetched"] += len(pages.messages)
        counts["created"] += result.created
        counts["updated"] += result.updated
        counts["already_stored"] += result.skipped

    async def _skip_chat(self, chat: gateway.Chat, reason: str) -> None:
        self.state.skip(reason)
        self.state.done.append(chat.jid)

    async def _refused_chat(self, message: str) -> None:
        self.state.error(message)
        self.state.current = None

    async def _end_chat(
        self, db: AsyncSession, chat: gateway.Chat, current: dict[str, Any]
    ) -> None:
        state = self.state
        if current["messages"] == 0:
            if self.skip_empty:
                state.skip("empty" if chat.last_message_at is None else "outside_history")
                self._close_chat(chat)
                return
            resolved = await record_chats(
                db,
                self.ctx.bus,
                organization_id=self.organization_id,
                session_id=self.session_id,
                chats=[chat],
                live=False,
                skip_groups=self.skip_groups,
            )
            current["created"] = any(r.created for r in resolved.values())
        if current["created"]:
            state.created += 1
        elif current["changed"]:
            state.updated += 1
        else:
            state.skip("unchanged")
        state.synced += 1
        self._close_chat(chat)

    def _close_chat(self, chat: gateway.Chat) -> None:
        self.state.done.append(chat.jid)
        self.state.current = None


_NO_HISTORY = ("empty", "status_broadcast", "unsupported")


def _batches(pages: list[_Pages]) -> Iterator[list[_Pages]]:
    """Consecutive pages, about STORE_EVERY messages at a time."""
    batch: list[_Pages] = []
    size = 0
    for item in pages:
        if batch and size + len(item.messages) > STORE_EVERY:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += len(item.messages)
    if batch:
        yield batch


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def import_pending_retries(
    ctx: AppContext, *, organization_id: int | None = None, session_id: int | None = None
) -> list[ImportReport]:
    """Run again the imports that need it: `empty` ones (nothing listed yet) and `interrupted`
    or abandoned `running` ones (resumed where they stopped).

    Called on a timer for every connected session (or an organization's, when its admin runs
    the job), and with `session_id` when a gateway says history arrived; then an empty import
    is retried even past its attempt limit.
    """
    async with ctx.db.session() as db:
        runs = await import_runs.latest_runs_with_status(
            db,
            KIND,
            ("empty", *RESUMABLE),
            organization_id=organization_id,
            session_id=session_id,
        )

    busy = await held(ctx, [run.session_id for run in runs if run.session_id is not None])
    due: list[int] = []
    for run in runs:
        assert run.session_id is not None
        if run.session_id in busy:
            continue
        if run.status == "running" and not _abandoned(run):
            continue  # another worker may be on it
        if (
            run.status == "empty"
            and session_id is None
            and not (run.report or {}).get("needs_retry")
        ):
            continue
        due.append(run.session_id)

    reports = []
    for sid in due:
        try:
            reports.append(await import_conversations(ctx, sid, trigger="retry"))
        except ServiceError as exc:
            log.warning("import retry skipped", session_id=sid, reason=exc.detail)
    return reports


async def resume_cut_off_imports(ctx: AppContext) -> list[ImportReport]:
    """At start-up: resume the connected sessions' imports that no runner holds any more.

    A `running` or `interrupted` import whose lease is gone was cut off (a kill, a crash, a
    stop): it is not running anywhere, so it resumes now rather than once it looks stale. A
    lease still live may be a dead runner's that has not expired yet: looked at again when it
    ends, and resumed unless its holder renewed it (it is alive, and on it)."""
    async with ctx.db.session() as db:
        runs = await import_runs.latest_runs_with_status(db, KIND, RESUMABLE)
    sessions = [run.session_id for run in runs if run.session_id is not None]
    busy = await held(ctx, sessions)
    if busy:
        wait = (max(busy.values()) - utcnow()).total_seconds() + RESUME_MARGIN
        while wait > 0 and not ctx.tasks.stopping:
            await asyncio.sleep(min(wait, 1.0))
            wait -= 1.0
        busy = await held(ctx, busy)
    reports = []
    for sid in sessions:
        if sid in busy or ctx.tasks.stopping:
            continue
        log.info("import cut off by a stopped runner resumes", session_id=sid)
        try:
            reports.append(await import_conversations(ctx, sid, trigger="start"))
        except ServiceError as exc:
            log.warning("import resume skipped", session_id=sid, reason=exc.detail)
    return reports


def _abandoned(run: SyncRun) -> bool:
    saved_at = (run.cursor or {}).get("saved_at")
    if not saved_at:
        return True
    return utcnow() - datetime.fromisoformat(saved_at) > STALE_AFTER
