"""Which run a sync request means (an integration, an entity, a direction), and the record of
the runs an organization's integrations made."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.runtime.context import AppContext
from zapsync.services.accounts import Principal
from zapsync.services.errors import Invalid, NotFound
from zapsync.services.integrations import (
    bridge_push,
    contacts_pull,
    contacts_push,
    conversations_pull,
)
from zapsync.services.integrations.connections import get_integration
from zapsync.services.integrations.sync_runs import RunResult
from zapsync.store import integrations as store
from zapsync.store import runs as run_store
from zapsync.store.models import Integration, SyncRun

Runner = Callable[..., Awaitable[RunResult]]

RUNNERS: dict[tuple[str, str], Runner] = {
    ("contacts", "pull"): contacts_pull.pull_contacts,
    ("contacts", "push"): contacts_push.push_contacts,
    ("conversations", "pull"): conversations_pull.pull_conversations,
    ("messages", "pull"): conversations_pull.pull_messages,
    # Conversations and messages go to Chatwoot by the bridge's one pass (bridge_push.py).
    ("conversations", "push"): bridge_push.push_mirror,
    ("messages", "push"): bridge_push.push_mirror,
}
KINDS = (
    contacts_pull.KIND,
    contacts_push.KIND,
    conversations_pull.CONVERSATIONS_KIND,
    conversations_pull.MESSAGES_KIND,
    bridge_push.KIND,
)


async def integration_for(
    db: AsyncSession, principal: Principal, provider: str, integration_id: int | None
) -> Integration:
    if integration_id is not None:
        return await get_integration(db, principal, integration_id)
    found = await store.integrations_of(db, principal.organization_id, provider)
    if not found:
        raise NotFound(f"this organization has no {provider} integration; create one first")
    return found[0]


async def run_sync(
    ctx: AppContext,
    principal: Principal,
    *,
    provider: str = "chatwoot",
    entity_type: str = "contacts",
    direction: str = "pull",
    integration_id: int | None = None,
    trigger: str = "manual",
) -> RunResult:
    """Run one sync of the organization's integration now and return its result."""
    runner = RUNNERS.get((entity_type, direction))
    if runner is None:
        supported = ", ".join(f"{e} {d}" for e, d in RUNNERS)
        raise Invalid(f"{entity_type} {direction} is not available yet; zapsync runs {supported}")
    async with ctx.db.session() as db:
        integration = await integration_for(db, principal, provider, integration_id)
    return await runner(ctx, integration, trigger=trigger)


async def list_runs(
    db: AsyncSession,
    principal: Principal,
    *,
    integration_id: int | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> list[SyncRun]:
    """The organization's integration runs, newest first."""
    return await run_store.organization_runs(
        db,
        principal.organization_id,
        integration_id=integration_id,
        kind=kind,
        kinds=() if kind else KINDS,
        limit=limit,
    )


async def get_run(db: AsyncSession, principal: Principal, run_id: int) -> SyncRun:
    run = await run_store.run_by_id(db, run_id)
    if run is None or run.organization_id != principal.organization_id:
        raise NotFound(f"no sync run {run_id}")
    return run
