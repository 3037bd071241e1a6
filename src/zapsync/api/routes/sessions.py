"""`/api/v1/sessions`: WhatsApp connections and their live status."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from zapsync.api.deps import AdminPrincipal, Ctx, CurrentPrincipal, Db
from zapsync.api.openapi import BINARY, TEXT
from zapsync.api.params import PathId, QueryBigId
from zapsync.api.problems import problem_responses
from zapsync.api.qr_images import png_bytes, png_data_url, svg_text
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas import (
    ImportReportPublic,
    LiveStatusPublic,
    QrPublic,
    SessionArchived,
    SessionCreate,
    SessionCreated,
    SessionPublic,
    StatusSyncReport,
)
from zapsync.api.schemas.sessions import StatusEventPublic, StatusHistoryPage, qr_reason
from zapsync.api.urls import SESSIONS, session_route, webhook_urls
from zapsync.domain.gateway import QrCode
from zapsync.domain.status import SessionStatus, StatusSource
from zapsync.services.accounts import Principal
from zapsync.services.errors import Conflict
from zapsync.services.imports.importer import import_conversations
from zapsync.services.sessions import lifecycle as svc
from zapsync.services.sessions.status import status_history
from zapsync.services.sessions.status_sync import apply_status_sync

router = APIRouter(prefix=SESSIONS, tags=["sessions"], route_class=ApiRoute)


def qr_public(qr: QrCode | None) -> QrPublic | None:
    if qr is None:
        return None
    return QrPublic(
        code=qr.code,
        pairing_code=qr.pairing_code,
        png_data_url=png_data_url(qr.code) if qr.code else None,
    )


async def qr_or_where_to_pair(ctx: Ctx, db: Db, principal: Principal, session_id: int) -> QrCode:
    """The session's QR; a refusal names the route that pairs it instead."""
    session = await svc.get_session(db, principal, session_id)
    connect = session_route("POST", session_id, "connect")
    try:
        return await svc.session_qr(ctx, db, session)
    except svc.NotPairing:
        raise Conflict(
            f"session {session_id} is logged out; {connect} to pair a phone again"
        ) from None
    except svc.NoQrYet:
        raise svc.GatewayFailed(
            f"the gateway has no QR code to show now; {connect} starts pairing"
        ) from None


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SessionCreated)
async def create_session(
    body: SessionCreate, ctx: Ctx, db: Db, principal: AdminPrincipal
) -> SessionCreated:
    """Create a session: it is stored as `creating` and the gateway is asked; a wrong URL or
    key is a 422 with the gateway's own reason, and nothing stays stored. When the instance
    had a webhook that is not zapsync's, `replaced_webhook` names it: zapsync relays every
    event there (signed with `forward_secret`) and puts it back when the session goes."""
    created = await svc.create_session(
        ctx,
        db,
        principal,
        name=body.name,
        provider=body.provider,
        config=body.config,
        webhook_url=webhook_urls(ctx.settings),
    )
    return SessionCreated(
        **SessionPublic.of(created.session).model_dump(),
        qr=qr_public(created.qr),
        qr_reason=qr_reason(created.session, created.qr),
        replaced_webhook=created.replaced_webhook,
        forward_secret=created.forward_secret,
    )


@router.get("")
async def list_sessions(
    db: Db, principal: CurrentPrincipal, include_archived: bool = False
) -> list[SessionPublic]:
    rows = await svc.list_sessions(db, principal, include_archived=include_archived)
    return [SessionPublic.of(s) for s in rows]


@router.get("/{session_id}")
async def get_session(session_id: PathId, db: Db, principal: CurrentPrincipal) -> SessionPublic:
    return SessionPublic.of(await svc.get_session(db, principal, session_id))


@router.delete("/{session_id}", response_model=SessionArchived)
async def delete_session(
    session_id: PathId,
    ctx: Ctx,
    db: Db,
    principal: AdminPrincipal,
    at_gateway: Annotated[svc.AtGateway, Query()] = "keep",
) -> SessionArchived:
    """Archive the session, free the slot; conversations stay readable. At the gateway:
    `keep` (default) leaves the instance and its phone alone and removes only zapsync's
    webhook, putting back the one it replaced; `logout` logs the phone out too; `delete`
    deletes the instance."""
    session = await svc.get_session(db, principal, session_id)
    svc.ensure_active(session)
    outcome = await svc.archive_session(
        ctx,
        db,
        session,
        reason="deleted by a user",
        source=StatusSource.MANUAL,
        webhook_url=webhook_urls(ctx.settings),
        at_gateway=at_gateway,
    )
    await db.commit()
    return SessionArchived(
        session_id=session_id,
        archived=True,
        at_gateway=outcome.at_gateway,
        gateway=outcome.done,
        gateway_errors=outcome.errors,
    )


@router.post("/{session_id}/connect")
async def connect_session(
    session_id: PathId, ctx: Ctx, db: Db, principal: AdminPrincipal
) -> SessionCreated:
    """Start pairing (the one way a logged-out session comes back); the QR to scan."""
    session = await svc.get_session(db, principal, session_id)
    qr = await svc.connect_session(ctx, db, session)
    return SessionCreated(
        **SessionPublic.of(session).model_dump(),
        qr=qr_public(qr),
        qr_reason=qr_reason(session, qr),
    )


@router.post("/{session_id}/logout")
async def logout_session(
    session_id: PathId, ctx: Ctx, db: Db, principal: AdminPrincipal
) -> SessionPublic:
    session = await svc.get_session(db, principal, session_id)
    await svc.logout_session(ctx, db, session)
    return SessionPublic.of(session)


@router.get(
    "/{session_id}/qr",
    response_model=QrPublic,
    responses={
        200: {"content": {"image/png": {"schema": BINARY}, "image/svg+xml": {"schema": TEXT}}},
        **problem_responses(409),  # connected already: nothing to scan
    },
)
async def session_qr(
    session_id: PathId,
    ctx: Ctx,
    db: Db,
    principal: AdminPrincipal,
    format: Annotated[Literal["json", "png", "svg"], Query()] = "json",
) -> QrPublic | Response | None:
    """The QR code to scan: JSON with the raw code, pairing code and a PNG data URL, or the
    image itself with `?format=png|svg`. Reading never starts pairing (`POST /connect` does)."""
    qr = await qr_or_where_to_pair(ctx, db, principal, session_id)
    if format != "json" and not qr.code:
        raise svc.GatewayFailed("the gateway gave only a pairing code, no QR image")
    if format == "png":
        return Response(png_bytes(qr.code or ""), media_type="image/png")
    if format == "svg":
        return Response(svg_text(qr.code or ""), media_type="image/svg+xml")
    return qr_public(qr)


@router.get("/{session_id}/status")
async def live_status(
    session_id: PathId, ctx: Ctx, db: Db, principal: CurrentPrincipal
) -> LiveStatusPublic:
    """Ask the gateway now, write nothing."""
    session = await svc.get_session(db, principal, session_id)
    live = await svc.live_status(ctx, db, session)
    return LiveStatusPublic(
        session_id=session.id,
        connected=live.status is SessionStatus.CONNECTED,
        status=live.status.value,
        stored_status=session.status,
        gateway_status=live.raw_status,
        checked_at=datetime.now(UTC),
    )


@router.get("/{session_id}/status-history")
async def session_status_history(
    session_id: PathId,
    db: Db,
    principal: CurrentPrincipal,
    before: QueryBigId = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> StatusHistoryPage:
    """The session's status changes, newest first; `before` is the previous page's
    `next_before`."""
    await svc.get_session(db, principal, session_id)
    rows = await status_history(
        db, principal.organization_id, session_id, before=before, limit=limit + 1
    )
    events = [StatusEventPublic.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return StatusHistoryPage(
        events=events, next_before=events[-1].id if len(rows) > limit else None
    )


@router.post("/{session_id}/status-sync", response_model=StatusSyncReport)
async def sync_one(
    session_id: PathId, ctx: Ctx, db: Db, principal: AdminPrincipal
) -> StatusSyncReport:
    """Apply the gateway's real status to this session."""
    await svc.get_session(db, principal, session_id)
    await db.rollback()  # release the read transaction before the sync writes
    report = await apply_status_sync(
        ctx, organization_id=principal.organization_id, session_id=session_id
    )
    return StatusSyncReport.model_validate(report.as_dict())


@router.post("/{session_id}/sync-conversations", response_model=ImportReportPublic)
async def sync_conversations(
    session_id: PathId, ctx: Ctx, db: Db, principal: AdminPrincipal
) -> ImportReportPublic:
    """Import the session's chats and messages now (seed 000's `POST /sync`); the report of
    the recorded sync run. Safe to repeat: a second run writes nothing new."""
    session = await svc.get_session(db, principal, session_id)
    svc.ensure_active(session)
    await db.rollback()
    report = await import_conversations(ctx, session_id, trigger="manual")
    return ImportReportPublic.model_validate(asdict(report))
