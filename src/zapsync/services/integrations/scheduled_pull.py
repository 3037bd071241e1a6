"""The scheduled pull: what changed in Chatwoot while its webhooks were missed (a release that
does not send them, an outage on our side) is brought in every `ZAPSYNC_CHATWOOT_PULL_MINUTES`:
contacts, the bridged conversations' statuses, and agents' replies that never reached us.

Each pull is its own sync run; one that is running already (an admin's run, another process)
is left to finish, and one that fails does not stop the others."""

from __future__ import annotations

from typing import Any

import structlog

from zapsync.connectors.chatwoot import ChatwootError
from zapsync.runtime.context import AppContext
from zapsync.services.errors import Conflict
from zapsync.services.integrations.connections import CHATWOOT as PROVIDER
from zapsync.services.integrations.contacts_pull import pull_contacts
from zapsync.services.integrations.conversations_pull import pull_conversations, pull_messages
from zapsync.store import integrations as store

log = structlog.get_logger(__name__)


async def pull_every_integration(
    ctx: AppContext, organization_id: int | None, trigger: str
) -> dict[str, Any]:
    """Pull every Chatwoot integration (of one organization, or of all)."""
    async with ctx.db.reads() as db:
        if organization_id is None:
            integrations = await store.all_integrations(db, PROVIDER)
        else:
            integrations = await store.integrations_of(db, organization_id, PROVIDER)
    runs: list[dict[str, Any]] = []
    busy: list[int] = []
    failed: list[dict[str, Any]] = []
    pulls = (pull_contacts, pull_conversations, pull_messages)
    for integration, pull in ((i, p) for i in integrations for p in pulls):
        try:
            result = await pull(ctx, integration, trigger=trigger)
        except Conflict:
            busy.append(integration.id)
            continue
        except ChatwootError as exc:  # the run is recorded failed; the others go on
            log.warning("scheduled chatwoot pull failed", integration_id=integration.id,
                        reason=exc.reason)  # fmt: skip
            failed.append({"integration_id": integration.id, "reason": exc.reason})
            continue
        runs.append({"integration_id": integration.id, "run_id": result.run_id,
                     "kind": pull.__name__.removeprefix("pull_"),
                     "status": result.status, "created": result.created,
                     "updated": result.updated, "skipped": result.skipped,
                     "errors": result.errors})  # fmt: skip
    return {"integrations": len(integrations), "runs": runs, "busy": busy, "failed": failed}
