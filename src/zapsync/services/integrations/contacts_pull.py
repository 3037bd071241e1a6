"""Pull an integration's Chatwoot contacts into zapsync's, as a sync run.

Per contact (seed 004's rule): a ref with the same fingerprint is skipped and nothing is
written; a ref with another fingerprint updates the contact; no ref links the contact zapsync
already knows by phone (through the identity rules: a Chatwoot contact and a WhatsApp contact
of the same person become one) or e-mail, or else creates one. A record that cannot be read
is counted as an error and the run goes on. Pages are fetched ahead and written in batches;
each batch commits with the run's counts and the last page it finished, where a run that was
cut off resumes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.connectors.chatwoot.client import ChatwootClient
from zapsync.connectors.chatwoot.mapping import (
    PROVIDER,
    ChatwootContact,
    UnmappableRecord,
    contact_of_source,
    contact_source,
)
from zapsync.connectors.chatwoot.paginators import PageNumberPaginator
from zapsync.connectors.fingerprints import content_fingerprint
from zapsync.runtime.context import AppContext
from zapsync.services.integrations.connections import client_for
from zapsync.services.integrations.contact_fields import (
    CONTACT,
    merged_custom_fields,
    pushed_fingerprint,
)
from zapsync.services.integrations.pages import batches
from zapsync.services.integrations.sync_runs import Counts, IntegrationRun, RunResult
from zapsync.store import contacts as contact_store
from zapsync.store import external_refs
from zapsync.store.external_refs import Ref
from zapsync.store.migrate import analyze_tables
from zapsync.store.models import Integration
from zapsync.store.text import search_key
from zapsync.store.types import AnyRow

log = structlog.get_logger(__name__)

KIND = "chatwoot_contacts_pull"
BATCH = 600  # contacts per transaction: forty of Chatwoot's pages
AHEAD = 80  # pages fetched ahead: fetching goes on while a batch is written
# A first pull fills tables that were empty: their statistics are refreshed when the contacts
# created reach 1,000, 2,000, 4,000... (a few times, in milliseconds each).
ANALYZE_FIRST = 1_000
GROWN_TABLES = ("contacts", "external_refs")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one batch writes, decided from one read of its refs and known contacts."""

    skipped: int
    updates: list[tuple[ChatwootContact, Ref]]
    links: list[tuple[ChatwootContact, AnyRow]]
    creates: list[ChatwootContact]
    repeats: list[tuple[ChatwootContact, ChatwootContact]]  # (record, the one it repeats)


async def pull_contacts(
    ctx: AppContext, integration: Integration, *, trigger: str = "manual"
) -> RunResult:
    """Run one pull of every contact page; the run's result (counts, errors, status)."""
    async with IntegrationRun(ctx, integration, KIND, trigger) as run:
        first_page = int(run.resume_from.get("last_page", 0)) + 1
        paginator = PageNumberPaginator(first_page)
        async with client_for(ctx, integration) as client:
            await _pull(ctx, run, client, paginator)
            run.counts.report["throttled"] = client.throttled
        run.counts.report["first_page"] = first_page
    assert run.result is not None
    return run.result


async def _pull(
    ctx: AppContext, run: IntegrationRun, client: ChatwootClient, paginator: PageNumberPaginator
) -> None:
    pages = client.contact_pages(paginator)
    analyze_at = ANALYZE_FIRST
    async for raws, last_page in batches(
        pages, lambda: paginator.last_page_done, min_items=BATCH, ahead=AHEAD
    ):
        async with ctx.db.session() as db:
            mapped, refs = await _leave_out_unchanged(db, run.organization_id, raws, run.counts)
            try:
                await write_contacts(db, run.organization_id, mapped, run.counts, refs=refs)
            except IntegrityError:
                # A contact written meanwhile (a webhook, a WhatsApp message) clashed: the
                # batch again, one contact at a time, so only the clashing one is refused.
                await db.rollback()
                await _write_one_by_one(db, run.organization_id, mapped, run.counts)
            await run.checkpoint(db, {"last_page": last_page})
            await db.commit()
        if run.counts.created >= analyze_at:
            await analyze_tables(ctx.db, GROWN_TABLES)
            analyze_at *= 2


async def _leave_out_unchanged(
    db: AsyncSession, org: int, raws: Sequence[Any], counts: Counts
) -> tuple[list[ChatwootContact], dict[str, Ref]]:
    """The batch's new and changed contacts, mapped, and its refs: an unchanged record (its
    fingerprint is its ref's) is counted skipped without being mapped; one that cannot be read
    is counted an error."""
    read: list[tuple[dict[str, Any], str]] = []
    for raw in raws:
        try:
            source = contact_source(raw)
        except _UNREADABLE as exc:
            counts.error(f"contact {_id_of(raw)}: {exc}")
            continue
        read.append((source, content_fingerprint(source)))
    refs = await external_refs.refs_by_external(
        db, org, PROVIDER, CONTACT, {source["id"] for source, _ in read}
    )
    changed = []
    for source, fingerprint in read:
        ref = refs.get(source["id"])
        if ref is not None and ref.fingerprint == fingerprint:
            counts.skipped += 1
            counts.synced += 1
            continue
        try:
            changed.append(contact_of_source(source, fingerprint))
        except _UNREADABLE as exc:
            counts.error(f"contact {source['id']}: {exc}")
    return changed, refs


_UNREADABLE = (UnmappableRecord, TypeError, ValueError, AttributeError)


async def _write_one_by_one(
    db: AsyncSession, org: int, mapped: list[ChatwootContact], counts: Counts
) -> None:
    for contact in mapped:
        try:
            async with db.begin_nested():
                await write_contacts(db, org, [contact], counts)
        except IntegrityError as exc:
            counts.error(f"contact {contact.external_id}: {str(exc.orig)[:200]}")


async def write_contacts(
    db: AsyncSession,
    org: int,
    mapped: list[ChatwootContact],
    counts: Counts,
    *,
    refs: dict[str, Ref] | None = None,
) -> None:
    """Skip, update, link or create each contact; `refs` when the caller read them already."""
    plan = await _plan(db, org, mapped, refs)
    await _update(db, org, plan.updates)
    await _link(db, org, plan.links)
    created = await _create(db, org, plan.creates)
    await _link_repeats(db, org, plan.repeats, created)
    counts.skipped += plan.skipped
    counts.updated += len(plan.updates)
    counts.created += len(plan.creates)
    counts.count("linked", len(plan.links) + len(plan.repeats))
    counts.synced += len(mapped)


async def _plan(
    db: AsyncSession, org: int, mapped: list[ChatwootContact], refs: dict[str, Ref] | None
) -> _Plan:
    unique = list({c.external_id: c for c in mapped}.values())  # a record listed twice
    skipped = len(mapped) - len(unique)
    if refs is None:
        refs = await external_refs.refs_by_external(
            db, org, PROVIDER, CONTACT, [c.external_id for c in unique]
        )
    updates, unknown = [], []
    for contact in unique:
        ref = refs.get(contact.external_id)
        if ref is None:
            unknown.append(contact)
        elif ref.fingerprint == contact.fingerprint:
            skipped += 1
        else:
            updates.append((contact, ref))
    known = await contact_store.contacts_with_phone_or_email(
        db,
        org,
        [c.phone_e164 for c in unknown if c.phone_e164],
        [c.email for c in unknown if c.email],
    )
    by_phone = {row.phone_e164: row for row in known if row.phone_e164}
    by_email = {row.email: row for row in known if row.email}
    links, creates, repeats = [], [], []
    new_by_key: dict[str, ChatwootContact] = {}
    for contact in unknown:
        row = by_phone.get(contact.phone_e164 or "") or by_email.get(contact.email or "")
        earlier = new_by_key.get(contact.phone_e164 or "") or new_by_key.get(contact.email or "")
        if row is not None:
            links.append((contact, row))
        elif earlier is not None:
            repeats.append((contact, earlier))  # the same person twice in Chatwoot
        else:
            creates.append(contact)
            for key in (contact.phone_e164, contact.email):
                if key:
                    new_by_key[key] = contact
    return _Plan(skipped, updates, links, creates, repeats)


async def _update(db: AsyncSession, org: int, updates: list[tuple[ChatwootContact, Ref]]) -> None:
    if not updates:
        return
    stored = {
        row.id: row
        for row in await contact_store.contacts_by_ids(db, org, [r.internal_id for _, r in updates])
    }
    fingerprints: dict[str, tuple[str | None, str | None]] = {}
    for contact, ref in updates:
        row = stored.get(ref.internal_id)
        if row is None:
            continue  # the contact was deleted here; its ref goes with the next link
        name = contact.name or row.name
        email = contact.email or row.email
        # A phone another contact holds stays where it is: one person per phone.
        phone = row.phone_e164 or contact.phone_e164
        if phone != row.phone_e164 and phone is not None:
            taken = await contact_store.contacts_with_phone_or_email(db, org, [phone], [])
            phone = row.phone_e164 if taken else phone
        await contact_store.update_contact(
            db,
            row.id,
            name=name,
            search_name=search_key(name),
            email=email,
            phone_e164=phone,
            custom_fields=merged_custom_fields(row.custom_fields, contact.custom_fields),
        )
        fingerprints[contact.external_id] = (
            contact.fingerprint,
            pushed_fingerprint(name, email, phone),
        )
    await external_refs.set_fingerprints(db, org, PROVIDER, CONTACT, fingerprints)


async def _link(db: AsyncSession, org: int, links: list[tuple[ChatwootContact, AnyRow]]) -> None:
    """Known people: their blanks filled from Chatwoot, and a ref to the Chatwoot record."""
    refs = []
    for contact, row in links:
        name = row.name or contact.name
        email = row.email or contact.email
        await contact_store.update_contact(
            db,
            row.id,
            name=name,
            search_name=search_key(name),
            email=email,
            custom_fields=merged_custom_fields(row.custom_fields, contact.custom_fields),
        )
        refs.append(_ref(contact, row.id, name, email, row.phone_e164))
    await external_refs.add_refs(db, org, PROVIDER, CONTACT, refs)


async def _create(db: AsyncSession, org: int, creates: list[ChatwootContact]) -> dict[str, int]:
    """New contacts and their refs; our id by Chatwoot's."""
    rows = [
        {
            "organization_id": org,
            "phone_e164": c.phone_e164,
            "wa_jid": None,
            "lid": None,
            "name": c.name,
            "search_name": search_key(c.name),
            "email": c.email,
            "custom_fields": c.custom_fields,
        }
        for c in creates
    ]
    ids = await contact_store.insert_contacts_in_order(db, rows)
    await external_refs.add_refs(
        db,
        org,
        PROVIDER,
        CONTACT,
        [_ref(c, i, c.name, c.email, c.phone_e164) for c, i in zip(creates, ids, strict=True)],
    )
    return {c.external_id: i for c, i in zip(creates, ids, strict=True)}


async def _link_repeats(
    db: AsyncSession,
    org: int,
    repeats: list[tuple[ChatwootContact, ChatwootContact]],
    created: dict[str, int],
) -> None:
    refs = [
        _ref(c, created[first.external_id], first.name, first.email, first.phone_e164)
        for c, first in repeats
    ]
    await external_refs.add_refs(db, org, PROVIDER, CONTACT, refs)


def _ref(
    contact: ChatwootContact,
    internal_id: int,
    name: str | None,
    email: str | None,
    phone: str | None,
) -> dict[str, Any]:
    return {
        "external_id": contact.external_id,
        "internal_id": internal_id,
        "fingerprint": contact.fingerprint,
        "pushed_fingerprint": pushed_fingerprint(name, email, phone),
    }


def _id_of(raw: Any) -> str:
    return str(raw.get("id")) if isinstance(raw, dict) else "?"
