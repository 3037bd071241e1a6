"""Status sync: read every session's live state, diff it against the stored one, apply.

Rule 3 of DESIGN.md: a check that fails (timeout, 5xx, bad body) records the error and
leaves the stored status alone. The dry run is the same path without the apply.

Concurrency: at most `status_sync_concurrency` gateway calls in flight, each bounded by
`gateway_timeout`. The writes of one run happen in one transaction at the end; restarts of
dropped sessions are decided there, committed, made with no transaction open, and their
outcomes written in a second one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.domain.backoff import backoff
from zapsync.domain.gateway import LiveState
from zapsync.domain.status import SessionStatus, StatusSource
from zapsync.providers.base import Gateway, GatewayError, InstanceGone
from zapsync.runtime.context import AppContext
from zapsync.services.runs import RunPart, record_runs, run_ids
from zapsync.services.sessions.gateway import gateway_for
from zapsync.services.sessions.status import (
    is_gone,
    record_attempt,
    record_gone,
    record_status,
)
from zapsync.store import sessions as store
from zapsync.store.models import Session
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)

UNREACHABLE = "unreachable"
_NEEDS_A_PERSON = (SessionStatus.LOGGED_OUT.value, SessionStatus.FAILED.value)


@dataclass
class Check:
    session_id: int
    name: str
    stored: str
    live: LiveState | None = None
    error: str | None = None
    failures: int = 0
    reason: str | None = None
    phone: str | None = None
    gone: str | None = None  # the gateway says the instance does not exist: its words

    @property
    def is_quiet(self) -> bool:
        """Answered, unchanged and healthy: only its checked-at time needs writing."""
        return (
            self.live is not None
            and not self.needs_sync
            and self.failures == 0
            and not (self.reason or "").startswith(UNREACHABLE)
            and (self.live.phone is None or self.live.phone == self.phone)
            and not (
                self.live.status is SessionStatus.DISCONNECTED
                and self.stored not in _NEEDS_A_PERSON
            )
        )

    @property
    def needs_sync(self) -> bool:
        if self.gone is not None:
            return True
        if self.live is None:
            return False
        if self.live.status is SessionStatus.DISCONNECTED and self.stored in _NEEDS_A_PERSON:
            return False
        if (
            self.stored == SessionStatus.LOGGED_OUT.value
            and self.live.status is not SessionStatus.CONNECTED
        ):
            return False  # only a new pairing moves a logged-out session
        return self.live.status.value != self.stored


@dataclass
class StatusSyncReport:
    checked: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    healing: list[dict[str, Any]] = field(default_factory=list)
    run_id: int | None = None
    run_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "errors": self.errors,
            "healing": self.healing,
            "run_id": self.run_id,
            "run_ids": self.run_ids,
        }

    def by_organization(self, checks: list[Check], org_of: dict[int, int]) -> dict[int, RunPart]:
        """The report cut by organization, as the runs recorded for each."""
        parts: dict[int, StatusSyncReport] = {}
        for check in checks:
            parts.setdefault(org_of[check.session_id], StatusSyncReport()).checked += 1
        for name in ("changed", "errors", "healing"):
            for item in getattr(self, name):
                getattr(parts[org_of[item["session_id"]]], name).append(item)
        runs = {}
        for org_id, part in parts.items():
            # every check is one of: changed, failed, unchanged
            part.unchanged = part.checked - len(part.changed) - len(part.errors)
            report = part.as_dict()
            del report["run_id"], report["run_ids"]
            runs[org_id] = RunPart(
                synced=part.checked,
                updated=len(part.changed),
                skipped=part.unchanged,
                errors=[f"session {e['session_id']}: {e['error']}" for e in part.errors],
                report=report,
            )
        return runs


async def _sessions(
    db: AsyncSession, organization_id: int | None, session_id: int | None
) -> list[Session]:
    """The sessions to check: not archived, not still being created (their row is there
    before the gateway made the instance), not gone at the gateway."""
    rows = await store.sessions_to_check(db, organization_id, session_id)
    return [s for s in rows if not is_gone(s)]


async def check_sessions(ctx: AppContext, sessions: list[Session]) -> list[Check]:
    """Live state of each session, concurrently; failures become `error`, never a status."""
    bound = asyncio.Semaphore(ctx.settings.status_sync_concurrency)
    timeout = ctx.settings.gateway_timeout

    async def one(session: Session) -> Check:
        check = Check(
            session.id,
            session.name,
            session.status,
            failures=session.check_failures,
            reason=session.status_reason,
            phone=session.phone,
        )
        async with bound:
            try:
                check.live = await asyncio.wait_for(gateway_for(ctx, session).get_state(), timeout)
            except TimeoutError:
                check.error = f"the gateway did not answer within {timeout:g} s"
            except InstanceGone as exc:
                check.gone = exc.reason
            except GatewayError as exc:
                check.error = exc.reason
            except Exception as exc:  # a broken adapter must not stop the other checks
                log.exception("status check crashed", session_id=session.id)
                check.error = f"{exc.__class__.__name__}: {exc}"
        ctx.metrics.status_checked(session.id, check.live.status.value if check.live else "error")
        return check

    return list(await asyncio.gather(*(one(s) for s in sessions)))


async def dry_run(
    ctx: AppContext, *, organization_id: int | None, session_id: int | None = None
) -> list[dict[str, Any]]:
    async with ctx.db.session() as db:
        sessions = await _sessions(db, organization_id, session_id)
    checks = await check_sessions(ctx, sessions)
    return [
        {
            "session_id": c.session_id,
            "name": c.name,
            "stored_status": c.stored,
            "live_status": (
                c.live.status.value
                if c.live
                else (SessionStatus.FAILED.value if c.gone is not None else None)
            ),
            "gateway_status": c.live.raw_status if c.live else None,
            "needs_sync": c.needs_sync,
            "error": c.error,
            **({"gone": c.gone} if c.gone is not None else {}),
        }
        for c in checks
    ]


def heal_delay(ctx: AppContext, attempt: int) -> timedelta:
    return backoff(ctx.settings.heal_base_delay_seconds, attempt)


@dataclass
class Restart:
    """A restart decided in the run's transaction and made after it, so no transaction is
    open while the gateway answers."""

    session_id: int
    attempt: int
    gateway: Gateway
    state: LiveState | None = None
    error: str | None = None


def _plan_heal(
    ctx: AppContext, db: AsyncSession, session: Session, now: datetime, report: StatusSyncReport
) -> Restart | None:
    """Restart a silently dropped session, with backoff; give up to `failed` after the tries."""
    settings = ctx.settings
    if session.next_heal_at is not None and now < session.next_heal_at:
        return None
    if session.heal_attempts >= settings.heal_max_attempts:
        reason = (
            f"the connection dropped and {session.heal_attempts} restarts did not bring it back; "
            "scan a new QR code"
        )
        record_status(
            db,
            ctx.bus,
            session,
            SessionStatus.FAILED,
            StatusSource.HEAL,
            reason=reason,
            action_required=True,
        )
        report.healing.append({"session_id": session.id, "outcome": "gave up"})
        return None
    session.heal_attempts += 1
    session.next_heal_at = now + heal_delay(ctx, session.heal_attempts)
    return Restart(session.id, session.heal_attempts, gateway_for(ctx, session))


async def _restart(ctx: AppContext, restart: Restart) -> None:
    timeout = ctx.settings.gateway_timeout
    try:
        await asyncio.wait_for(restart.gateway.connect(), timeout)
        restart.state = await asyncio.wait_for(restart.gateway.get_state(), timeout)
    except (GatewayError, TimeoutError) as exc:
        restart.error = getattr(exc, "reason", None) or "timed out"


def _record_restart(
    ctx: AppContext, db: AsyncSession, session: Session, restart: Restart, report: StatusSyncReport
) -> None:
    attempt, state = restart.attempt, restart.state
    if state is None:
        reason = restart.error or "no answer"
        record_attempt(db, session, StatusSource.HEAL, f"restart {attempt} failed: {reason}")
        report.healing.append({"session_id": session.id, "attempt": attempt, "outcome": reason})
        return
    outcome = f"restart {attempt}: gateway reports {state.raw_status}"
    if not record_status(db, ctx.bus, session, state.status, StatusSource.HEAL, reason=outcome):
        record_attempt(db, session, StatusSource.HEAL, outcome)
    report.healing.append(
        {"session_id": session.id, "attempt": attempt, "outcome": state.status.value}
    )


async def apply_status_sync(
    ctx: AppContext,
    *,
    organization_id: int | None,
    session_id: int | None = None,
    trigger: str = "manual",
) -> StatusSyncReport:
    """Check, apply the differences, heal silent drops, record a sync run."""
    started_at = utcnow()
    async with ctx.db.session() as db:
        sessions = await _sessions(db, organization_id, session_id)
    org_of = {s.id: s.organization_id for s in sessions}
    checks = await check_sessions(ctx, sessions)
    report = StatusSyncReport(checked=len(checks))
    by_id = {c.session_id: c for c in checks}
    now = utcnow()
    threshold = ctx.settings.unreachable_after_failures
    async with ctx.db.session() as db:
        quiet = [c.session_id for c in checks if c.is_quiet]
        report.unchanged += len(quiet)
        rest = [c.session_id for c in checks if not c.is_quiet]
        rows = await store.sessions_by_ids(db, rest)
        restarts: list[Restart] = []
        for session in sorted(rows, key=lambda s: s.id):
            check = by_id[session.id]
            if check.gone is not None:
                before = session.status
                record_gone(db, ctx.bus, session, check.gone, at=now)
                session.check_failures = 0
                session.status_checked_at = now
                report.changed.append(
                    {"session_id": session.id, "from": before, "to": SessionStatus.FAILED.value}
                )
                continue
            if check.live is None:
                report.errors.append({"session_id": session.id, "error": check.error})
                session.check_failures += 1
                if session.check_failures >= threshold:
                    session.status_reason = (
                        f"{UNREACHABLE}: {session.check_failures} checks failed in a row; "
                        f"last: {check.error}"
                    )
                    log.warning(
                        "session unreachable",
                        session_id=session.id,
                        failures=session.check_failures,
                        error=check.error,
                    )
                continue
            live = check.live
            session.check_failures = 0
            session.status_checked_at = now
            before = session.status
            if live.status is SessionStatus.DISCONNECTED and before in _NEEDS_A_PERSON:
                # A closed socket is how gateways show a logout or a dead pairing too;
                # keep the more precise stored status and never restart these by ourselves.
                report.unchanged += 1
                quiet.append(session.id)
                continue
            changed = record_status(
                db,
                ctx.bus,
                session,
                live.status,
                StatusSource.CHECK,
                reason=f"gateway reports {live.raw_status}",
                phone=live.phone,
                at=now,
            )
            if changed:
                report.changed.append(
                    {"session_id": session.id, "from": before, "to": live.status.value}
                )
            else:
                report.unchanged += 1
                if session.status_reason and session.status_reason.startswith(UNREACHABLE):
                    session.status_reason = None
                quiet.append(session.id)
            if live.status is SessionStatus.DISCONNECTED:
                planned = _plan_heal(ctx, db, session, now, report)
                if planned is not None:
                    restarts.append(planned)
        if quiet:
            await store.mark_checked(db, quiet, now)
        if restarts:
            await db.commit()  # what the checks found, and the restarts about to be made
            bound = asyncio.Semaphore(ctx.settings.status_sync_concurrency)

            async def restart(planned: Restart) -> None:
                async with bound:
                    await _restart(ctx, planned)

            await asyncio.gather(*(restart(r) for r in restarts))
            # webhooks may have written meanwhile
            healed = await store.sessions_by_ids(db, [r.session_id for r in restarts], reload=True)
            by_session = {s.id: s for s in healed}
            for planned in restarts:
                if planned.session_id in by_session:
                    _record_restart(ctx, db, by_session[planned.session_id], planned, report)
        runs = await record_runs(
            db,
            ctx.bus,
            kind="status-sync",
            trigger=trigger,
            started_at=started_at,
            organization_id=organization_id,
            parts=report.by_organization(checks, org_of),
            session_id=session_id,
        )
        await db.commit()
    refs = run_ids(runs)
    report.run_id, report.run_ids = refs["run_id"], refs["run_ids"]
    return report
