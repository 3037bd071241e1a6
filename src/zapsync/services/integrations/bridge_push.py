"""A push of conversations or messages asked for by hand (a sync run, the page's buttons):
the bridge's mirror pass run now for one integration, recorded as a sync run.

The bridge already pushes every bridged conversation and message as they arrive (the outbox's
`chatwoot_mirror` kind, `bridge_mirror.py`); a run by hand is that same pass, not another
writer, so what it sends is what the bridge still owed Chatwoot (after an outage, a pause or
a session newly bridged) and a second run finds nothing to send."""

from __future__ import annotations

from zapsync.runtime.context import AppContext
from zapsync.services.errors import Conflict, Invalid
from zapsync.services.integrations import bridge_mirror
from zapsync.services.integrations.connections import config_of
from zapsync.services.integrations.sync_runs import IntegrationRun, RunResult
from zapsync.services.outbox.delivery import OutboxReport
from zapsync.store.models import Integration

KIND = "chatwoot_mirror_push"


async def push_mirror(
    ctx: AppContext, integration: Integration, *, trigger: str = "manual"
) -> RunResult:
    """Mirror into Chatwoot what the bridge has not yet: created = messages and statuses it
    took, errors = what it refused; a Chatwoot that does not answer fails the run."""
    config = config_of(integration)
    if config.inbox_id is None or not config.session_ids:
        raise Invalid("this integration bridges no session: set its inbox_id and session_ids")
    async with IntegrationRun(ctx, integration, KIND, trigger) as run:
        report = OutboxReport()
        try:
            await bridge_mirror.mirror_integration(ctx, integration, report)
        except Conflict:
            run.counts.count("carried_by_the_running_pass")
        run.counts.created += report.delivered
        run.counts.synced += report.delivered + report.failed
        for error in report.errors:
            run.counts.error(error)
        if report.failed and not report.errors:
            run.counts.error(f"Chatwoot refused {report.failed} of them (see the logs)")
    assert run.result is not None
    return run.result
