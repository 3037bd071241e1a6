"""Queries of `external_refs`, the ids integrations hold for zapsync's rows: which upstream
record is which row of ours, with the fingerprint of the record as last pulled and of what
zapsync last pushed, and the upstream record's own `updated_at` as last applied
(`take_upstream_time`: how a record delivered late, older than one applied already, is told
apart). Each takes the caller's session and never commits."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ARRAY,
    CursorResult,
    Select,
    String,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.bulk_insert import insert_rows
from zapsync.store.lists import one_of
from zapsync.store.models import ExternalRef
from zapsync.store.types import utcnow
from zapsync.store.upsert import table_of, upsert_many

refs = table_of(ExternalRef)


class Ref(NamedTuple):
    """A ref as read: a tuple, built from each row at a fraction of a frozen dataclass's cost
    (a pull reads thousands a batch)."""

    external_id: str
    internal_id: int
    fingerprint: str | None
    pushed_fingerprint: str | None


async def refs_by_external(
    db: AsyncSession,
    organization_id: int,
    provider: str,
    entity_type: str,
    external_ids: Collection[str],
) -> dict[str, Ref]:
    """The refs held for these upstream ids, by upstream id."""
    if not external_ids:
        return {}
    wanted = sorted(external_ids)
    if db.get_bind().dialect.name != "postgresql":
        rows = await _refs(db, organization_id, provider, entity_type, refs.c.external_id,
                           refs.c.external_id.in_(wanted))  # fmt: skip
        return {row.external_id: Ref._make(row) for row in rows}
    # Joined to the ids as a table: one probe of the natural key's index each. `= ANY(array)`
    # of a pull's 600 ids was planned as a scan of every ref (11 ms at 50,000, 3 ms this way).
    ids = func.unnest(sql_cast(wanted, ARRAY(String()))).table_valued("id").render_derived("wanted")
    stmt = (
        _ref_columns()
        .join_from(ids, refs, refs.c.external_id == ids.c.id)
        .where(*_of_kind(organization_id, provider, entity_type))
    )
    return {row.external_id: Ref._make(row) for row in (await db.execute(stmt)).all()}


async def refs_by_internal(
    db: AsyncSession,
    organization_id: int,
    provider: str,
    entity_type: str,
    internal_ids: Collection[int],
) -> dict[int, Ref]:
    """The refs held for these rows of ours, by our id (the newest one where several are)."""
    if not internal_ids:
        return {}
    rows = await _refs(db, organization_id, provider, entity_type, refs.c.id,
                       refs.c.internal_id.in_(sorted(internal_ids)))  # fmt: skip
    return {row.internal_id: Ref._make(row) for row in rows}


async def _refs(
    db: AsyncSession,
    organization_id: int,
    provider: str,
    entity_type: str,
    order: Any,
    which: Any,
) -> Sequence[Any]:
    stmt = (
        _ref_columns()
        .where(*_of_kind(organization_id, provider, entity_type), which)
        .order_by(order)
    )
    return (await db.execute(stmt)).all()


def _ref_columns() -> Select[Any]:
    return select(
        refs.c.external_id, refs.c.internal_id, refs.c.fingerprint, refs.c.pushed_fingerprint
    )


def _of_kind(organization_id: int, provider: str, entity_type: str) -> tuple[Any, ...]:
    return (
        refs.c.organization_id == organization_id,
        refs.c.provider == provider,
        refs.c.entity_type == entity_type,
    )


async def add_refs(
    db: AsyncSession,
    organization_id: int,
    provider: str,
    entity_type: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    keep_existing: bool = False,
) -> None:
    """New refs: each row holds `external_id`, `internal_id`, `fingerprint` and
    `pushed_fingerprint`. A ref of the same upstream record raises IntegrityError (how a
    webhook delivered twice is told apart), or with `keep_existing` leaves the one stored
    (the bridge and a webhook mapping one contact at once)."""
    if not rows:
        return
    now = utcnow()
    values = [
        {
            "organization_id": organization_id,
            "provider": provider,
            "entity_type": entity_type,
            "updated_at": now,
            "fingerprint": None,
            "pushed_fingerprint": None,
            **row,
        }
        for row in rows
    ]
    if keep_existing:
        await upsert_many(db, refs, values, conflict=_NATURAL_KEY)
    else:
        await insert_rows(db, refs, values)


_NATURAL_KEY = ("organization_id", "provider", "entity_type", "external_id")


# One ref, named by bound parameters (`_ref_params`): the where-clause of every per-ref write,
# compiled once and sent as an executemany where there are many.
_REF_IS = (
    refs.c.organization_id == bindparam("b_org"),
    refs.c.provider == bindparam("b_provider"),
    refs.c.entity_type == bindparam("b_entity"),
    refs.c.external_id == bindparam("b_external"),
)
_SET_FINGERPRINTS = (
    update(refs)
    .where(*_REF_IS)
    .values(
        fingerprint=bindparam("b_fingerprint"),
        pushed_fingerprint=bindparam("b_pushed"),
        updated_at=bindparam("b_now"),
    )
)
_SET_PULLED = (
    update(refs)
    .where(*_REF_IS)
    .values(fingerprint=bindparam("b_fingerprint"), updated_at=bindparam("b_now"))
)
_SET_PUSHED = (
    update(refs)
    .where(*_REF_IS)
    .values(pushed_fingerprint=bindparam("b_pushed"), updated_at=bindparam("b_now"))
)
# Only while the ref still holds `was` (or nothing, which the caller read as `was`).
_REPLACE_PUSHED = (
    update(refs)
    .where(
        *_REF_IS,
        func.coalesce(refs.c.pushed_fingerprint, bindparam("b_was")) == bindparam("b_was"),
    )
    .values(pushed_fingerprint=bindparam("b_pushed"), updated_at=bindparam("b_now"))
)


def _ref_params(
    organization_id: int, provider: str, entity_type: str, external_id: str
) -> dict[str, Any]:
    return {
        "b_org": organization_id,
        "b_provider": provider,
        "b_entity": entity_type,
        "b_external": external_id,
        "b_now": utcnow(),
    }


async def set_pulled(
    db: AsyncSession,
    organization_id: int,
    provider: str,
    entity_type: str,
    external_id: str,
    fingerprint: str | None,
) -> None:
    """The ref's pulled fingerprint alone: what the upstream was told (its pushed one) stays."""
    params = _ref_params(organization_id, provider, entity_type, external_id)
    await db.execute(_SET_PULLED, {**params, "b_fingerprint": fingerprint})


async def set_pushed(
    db: AsyncSession,
    organization_id: int,
    provider: str,
    entity_type: str,
    pushed: Mapping[str, str | None],
) -> None:
    """external id -> what zapsync last told the integration of it (or learnt it holds), in
    one executemany."""
    if not pushed:
        return
    params = [
        {**_ref_params(organization_id, provider, entity_type, external_id), "b_pushed": value}
        for external_id, value in pushed.items()
    ]
    await db.execute(_SET_PUSHED, params)


async def replace_pushed(
    db: AsyncSession,
    organization_id: int,
    provider: str,
    entity_type: str,
    external_id: str,
    *,
    was: str,
    now: str,
) -> bool:
    """Set what zapsync told the integration, only if the ref still holds `was` (or nothing,
    which the caller read as `was`): a webhook that changed it meanwhile wins. Whether it
    was set."""
    params = {
        **_ref_params(organization_id, provider, entity_type, external_id),
        "b_was": was,
        "b_pushed": now,
    }
    result = cast(CursorResult[Any], await db.execute(_REPLACE_PUSHED, params))
    return bool(result.rowcount)


class Freshness(StrEnum):
    """An upstream record's `updated_at` against the one its ref holds."""

    NEWER = "newer"  # newer than the one held, or the first held: stored now
    SAME = "same"  # the one held: the same record again (a delivery repeated)
    OLDER = "older"  # older than the one held: stale, to be ignored
    UNKNOWN = "unknown"  # no time given, or no ref held yet: nothing to compare


_TAKE_UPSTREAM_TIME = (
    update(refs)
    .where(
        *_REF_IS,
        or_(refs.c.upstream_updated_at.is_(None), refs.c.upstream_updated_at < bindparam("b_at")),
    )
    .values(upstream_updated_at=bindparam("b_at"), updated_at=bindparam("b_now"))
)


async def take_upstream_time(
    db: AsyncSession,
    organization_id: int,
    provider: str,
    entity_type: str,
    external_id: str,
    at: datetime | None,
) -> Freshness:
    """Compare the record's `updated_at` (`at`) with the one its ref holds, and hold it when
    it is newer (or the first): one conditional UPDATE, so on PostgreSQL it also locks the
    ref until the caller's transaction ends, and two records of one ref apply in the order
    of their times. An equal or older one writes nothing. Call it first in the transaction
    that applies the record; after `add_refs` of a new ref, again to hold the time."""
    if at is None:
        return Freshness.UNKNOWN
    params = {**_ref_params(organization_id, provider, entity_type, external_id), "b_at": at}
    result = cast(CursorResult[Any], await db.execute(_TAKE_UPSTREAM_TIME, params))
    if result.rowcount:
        return Freshness.NEWER
    held = (
        await db.execute(
            select(refs.c.upstream_updated_at).where(*_REF_IS),
            {key: params[key] for key in ("b_org", "b_provider", "b_entity", "b_external")},
        )
    ).first()
    if held is None or held.upstream_updated_at is None:
        return Freshness.UNKNOWN  # no ref held yet
    return Freshness.SAME if held.upstream_updated_at == at else Freshness.OLDER


async def upstream_times(
    db: AsyncSession,
    organization_id: int,
    provider: str,
    entity_type: str,
    external_ids: Collection[str],
) -> dict[str, datetime | None]:
    """The `updated_at` of the upstream record last applied, by upstream id, of the refs
    held for these ids (None: none kept yet)."""
    if not external_ids:
        return {}
    stmt = select(refs.c.external_id, refs.c.upstream_updated_at).where(
        refs.c.organization_id == organization_id,
        refs.c.provider == provider,
        refs.c.entity_type == entity_type,
        one_of(db, refs.c.external_id, sorted(external_ids), String()),
    )
    return {row.external_id: row.upstream_updated_at for row in (await db.execute(stmt)).all()}


async def set_fingerprints(
    db: AsyncSession,
    organization_id: int,
    provider: str,
    entity_type: str,
    fingerprints: Mapping[str, tuple[str | None, str | None]],
) -> None:
    """external id -> (pulled fingerprint, pushed fingerprint), in one executemany."""
    if not fingerprints:
        return
    params = [
        {
            **_ref_params(organization_id, provider, entity_type, external_id),
            "b_fingerprint": pulled,
            "b_pushed": pushed,
        }
        for external_id, (pulled, pushed) in fingerprints.items()
    ]
    await db.execute(_SET_FINGERPRINTS, params)


async def delete_refs(db: AsyncSession, organization_id: int, provider: str) -> None:
    await db.execute(
        delete(refs).where(refs.c.organization_id == organization_id, refs.c.provider == provider)
    )


async def move_external_refs(
    db: AsyncSession, organization_id: int, entity_type: str, from_id: int, to_id: int
) -> None:
    """References held to row `from_id` (a merged duplicate) now point at `to_id`."""
    await db.execute(
        update(refs)
        .where(
            refs.c.organization_id == organization_id,
            refs.c.entity_type == entity_type,
            refs.c.internal_id == from_id,
        )
        .values(internal_id=to_id)
    )
