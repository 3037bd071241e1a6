"""Figures read from the database when `/metrics` is scraped: true for every process and
replica (a job the CLI ran, a send another replica made), at the cost of a few indexed
queries per scrape."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.domain.status import SessionStatus
from zapsync.services.inbox.conversations import SEND_KIND
from zapsync.store.models import OutboxItem, Session, SyncRun
from zapsync.store.types import utcnow


class Families:
    """A finished set of metric families, as a collector `generate_latest` can read."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


async def sessions_up(db: AsyncSession) -> Metric:
    up = GaugeMetricFamily(
        "zapsync_session_up",
        "1 when the connection's stored status is connected, else 0 (archived ones left out).",
        labels=["session_id", "organization_id", "provider", "status"],
    )
    rows = await db.execute(
        select(Session.id, Session.organization_id, Session.provider, Session.status)
        .where(Session.archived_at.is_(None))
        .order_by(Session.id)
    )
    for session_id, org_id, provider, status in rows:
        value = 1.0 if status == SessionStatus.CONNECTED.value else 0.0
        up.add_metric([str(session_id), str(org_id), provider, status], value)
    return up


async def outbox(db: AsyncSession) -> list[Metric]:
    depth = GaugeMetricFamily(
        "zapsync_outbox_depth", "Outbox items waiting to reach their gateway.", labels=["kind"]
    )
    age = GaugeMetricFamily(
        "zapsync_outbox_oldest_age_seconds",
        "Age of the oldest item still waiting in the outbox (0 when none waits).",
        labels=["kind"],
    )
    rows = await db.execute(
        select(OutboxItem.kind, func.count(), func.min(OutboxItem.created_at))
        .where(OutboxItem.status == "pending")
        .group_by(OutboxItem.kind)
    )
    now = utcnow()
    waiting = {kind: (count, oldest) for kind, count, oldest in rows}
    for kind in sorted(waiting.keys() | {SEND_KIND}):
        count, oldest = waiting.get(kind, (0, None))
        depth.add_metric([kind], float(count))
        age.add_metric([kind], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    return [depth, age]


async def job_runs(db: AsyncSession) -> list[Metric]:
    runs = CounterMetricFamily(
        "zapsync_job_runs",
        "Recorded runs of each job and import, by outcome (running, succeeded, partial, failed).",
        labels=["job", "status"],
    )
    last_duration = GaugeMetricFamily(
        "zapsync_job_last_duration_seconds",
        "How long the last finished run of each job took.",
        labels=["job"],
    )
    last_finished = GaugeMetricFamily(
        "zapsync_job_last_finished_timestamp_seconds",
        "When the last run of each job finished (Unix time).",
        labels=["job"],
    )
    rows = await db.execute(
        select(SyncRun.kind, SyncRun.status, func.count())
        .group_by(SyncRun.kind, SyncRun.status)
        .order_by(SyncRun.kind, SyncRun.status)
    )
    kinds: set[str] = set()
    for kind, status, count in rows:
        kinds.add(kind)
        runs.add_metric([kind, status], float(count))
    for kind in sorted(kinds):
        last = (
            await db.execute(
                select(SyncRun.started_at, SyncRun.finished_at)
                .where(SyncRun.kind == kind, SyncRun.finished_at.is_not(None))
                .order_by(SyncRun.started_at.desc())
                .limit(1)
            )
        ).first()
        if last is None or last.finished_at is None:
            continue
        started, finished = last.started_at, last.finished_at
        last_duration.add_metric([kind], max(0.0, (finished - started).total_seconds()))
        last_finished.add_metric([kind], finished.timestamp())
    return [runs, last_duration, last_finished]


async def database_families(db: AsyncSession) -> Families:
    return Families([await sessions_up(db), *await outbox(db), *await job_runs(db)])
