"""Push zapsync's contacts to Chatwoot, as a sync run.

Per contact with a phone or an e-mail: unchanged since the last push or pull (the ref's pushed
fingerprint) is skipped; a ref updates the Chatwoot contact; no ref creates one. Chatwoot's
422 for a phone or e-mail another contact holds is not an error: that contact is found and
linked, so nothing is duplicated (Chatwoot issue #15917). The phone goes in E.164 with its
`+`, the only form Chatwoot takes."""

from __future__ import annotations

from typing import Any

import structlog

from zapsync.connectors.chatwoot import (
    ChatwootClient,
    ChatwootContactTaken,
    ChatwootError,
    ChatwootNotFound,
    ChatwootRateLimited,
    ChatwootUnavailable,
)
from zapsync.connectors.chatwoot.mapping import PROVIDER, UnmappableRecord, map_contact
from zapsync.runtime.context import AppContext
from zapsync.services.integrations.connections import client_for
from zapsync.services.integrations.contact_fields import CONTACT, pushed_fields, pushed_fingerprint
from zapsync.services.integrations.sync_runs import IntegrationRun, RunResult
from zapsync.store import contacts as contact_store
from zapsync.store import external_refs
from zapsync.store.external_refs import Ref
from zapsync.store.models import Integration
from zapsync.store.types import AnyRow

log = structlog.get_logger(__name__)

KIND = "chatwoot_contacts_push"
PAGE = 100


async def push_contacts(
    ctx: AppContext, integration: Integration, *, trigger: str = "manual"
) -> RunResult:
    async with IntegrationRun(ctx, integration, KIND, trigger) as run:
        after = int(run.resume_from.get("after_id", 0))
        async with client_for(ctx, integration) as client:
            while True:
                async with ctx.db.session() as db:
                    rows = await contact_store.contacts_after(db, run.organization_id, after, PAGE)
                    refs = await external_refs.refs_by_internal(
                        db, run.organization_id, PROVIDER, CONTACT, [r.id for r in rows]
                    )
                if not rows:
                    break
                for row in rows:
                    await _push_one(ctx, run, client, row, refs.get(row.id))
                after = rows[-1].id
                async with ctx.db.session() as db:
                    await run.checkpoint(db, {"after_id": after})
                    await db.commit()
            run.counts.report["throttled"] = client.throttled
    assert run.result is not None
    return run.result


async def _push_one(
    ctx: AppContext, run: IntegrationRun, client: ChatwootClient, row: AnyRow, ref: Ref | None
) -> None:
    counts = run.counts
    if not row.phone_e164 and not row.email:
        counts.skipped += 1
        counts.count("without_phone_or_email")
        return
    wanted = pushed_fingerprint(row.name, row.email, row.phone_e164)
    counts.synced += 1
    if ref is not None and ref.pushed_fingerprint == wanted:
        counts.skipped += 1
        return
    fields = {k: v for k, v in pushed_fields(row.name, row.email, row.phone_e164).items() if v}
    try:
        outcome, record = await _write(client, ref, fields)
    except (ChatwootUnavailable, ChatwootRateLimited):
        raise  # Chatwoot is away: the run stops and the next one resumes here
    except ChatwootError as exc:
        counts.error(f"contact {row.id}: {exc.reason}")
        return
    try:
        pulled = map_contact(record).fingerprint
    except UnmappableRecord:
        pulled = None
    external_id = str(record.get("id"))
    async with ctx.db.session() as db:
        if ref is not None and ref.external_id == external_id:
            await external_refs.set_fingerprints(
                db, run.organization_id, PROVIDER, CONTACT, {external_id: (pulled, wanted)}
            )
        else:
            await external_refs.add_refs(
                db,
                run.organization_id,
                PROVIDER,
                CONTACT,
                [
                    {
                        "external_id": external_id,
                        "internal_id": row.id,
                        "fingerprint": pulled,
                        "pushed_fingerprint": wanted,
                    }
                ],
            )
        await db.commit()
    if outcome == "created":
        counts.created += 1
    else:
        counts.updated += 1
        if outcome == "linked":
            counts.count("linked")


async def _write(
    client: ChatwootClient, ref: Ref | None, fields: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """("created" | "updated" | "linked", Chatwoot's contact)."""
    if ref is not None:
        try:
            return "updated", await client.update_contact(int(ref.external_id), **fields)
        except ChatwootNotFound:
            pass  # deleted in Chatwoot: made again below
    try:
        created = await client.create_contact(**fields)
    except ChatwootContactTaken:
        found = await client.find_contact(
            phone_number=fields.get("phone_number"), email=fields.get("email")
        )
        if found is None:
            raise
        log.info("chatwoot contact linked", contact_id=found.get("id"))
        return "linked", found
    contact = created.get("contact")
    return "created", contact if isinstance(contact, dict) else created
