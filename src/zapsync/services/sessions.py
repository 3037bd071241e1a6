"""WhatsApp sessions: create (gateway first), list, connect, QR, logout, delete (archive)."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.domain.gateway import LiveState, QrCode
from zapsync.domain.status import SessionStatus, StatusSource
from zapsync.providers.base import GatewayError, WebhookTarget
from zapsync.security.urls import url_policy
from zapsync.services.accounts import Principal
from zapsync.services.context import AppContext
from zapsync.services.errors import Conflict, Invalid, NotFound
from zapsync.services.session_config import check_base_url, gateway_key, validate_config
from zapsync.services.session_gateway import gateway_for
from zapsync.services.session_status import record_status
from zapsync.services.webhook_secrets import new_secrets, secrets_of
from zapsync.store.models import Session
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)


class GatewayFailed(Invalid):
    """The gateway refused or could not be reached; the detail is its own reason."""


def webhook_target(ctx: AppContext, session: Session) -> WebhookTarget:
    url = f"{ctx.settings.public_url}/api/v1/webhooks/{session.provider}/{session.id}"
    secrets = secrets_of(ctx.cipher, session)
    return WebhookTarget(url=url, secret=secrets.secret, signing_key=secrets.signing_key)


def gateway_failed(action: str, exc: GatewayError) -> GatewayFailed:
    return GatewayFailed(f"the gateway refused to {action}: {exc.reason}")


async def get_session(db: AsyncSession, principal: Principal, session_id: int) -> Session:
    """The session if it belongs to the caller's organization; 404 otherwise (no leak)."""
    session = await db.get(Session, session_id)
    if session is None or session.organization_id != principal.organization_id:
        raise NotFound(f"no session with id {session_id}")
    return session


async def list_sessions(
    db: AsyncSession, principal: Principal, *, include_archived: bool = False
) -> list[Session]:
    query = select(Session).where(Session.organization_id == principal.organization_id)
    if not include_archived:
        query = query.where(Session.archived_at.is_(None))
    return list((await db.scalars(query.order_by(Session.id))).all())


async def create_session(
    ctx: AppContext,
    db: AsyncSession,
    principal: Principal,
    *,
    name: str,
    provider: str,
    config: dict[str, Any],
) -> tuple[Session, QrCode | None]:
    """Contact the gateway first; nothing is stored unless it accepted."""
    clean = validate_config(provider, config)
    await check_base_url(url_policy(ctx.settings), clean)
    limit = ctx.settings.max_sessions_per_user
    active = await db.scalar(
        select(func.count())
        .select_from(Session)
        .where(Session.created_by == principal.user_id, Session.archived_at.is_(None))
    )
    if (active or 0) >= limit:
        raise Conflict(
            f"you already have {active} sessions; at most {limit} per user "
            "(delete one or raise ZAPSYNC_MAX_SESSIONS_PER_USER)"
        )
    key = None if provider == "sandbox" else gateway_key(provider, clean, "")
    if key is not None:
        taken = await db.scalar(
            select(Session.id).where(
                Session.organization_id == principal.organization_id, Session.gateway_key == key
            )
        )
        if taken is not None:
            raise Conflict(f"this gateway instance is already session {taken} of your organization")
    session = Session(
        organization_id=principal.organization_id,
        created_by=principal.user_id,
        name=name.strip() or provider,
        provider=provider,
        gateway_key=key,
        config_encrypted=ctx.cipher.encrypt_json(clean),
        status=SessionStatus.DISCONNECTED.value,
        check_failures=0,
        heal_attempts=0,
    )
    new_secrets(ctx.cipher, session)
    db.add(session)
    await db.flush()
    if key is None:
        session.gateway_key = gateway_key(provider, clean, str(session.id))
    gateway = gateway_for(ctx, session)
    try:
        info = await gateway.create_instance(webhook_target(ctx, session))
    except GatewayError as exc:
        await db.rollback()
        log.info("gateway refused a new session", provider=provider, reason=exc.reason)
        raise gateway_failed("create the instance", exc) from None
    record_status(db, ctx.bus, session, info.status, StatusSource.MANUAL, reason="created")
    session.status_checked_at = utcnow()
    await db.commit()
    if info.qr and info.qr.code:
        publish_qr(ctx, session, info.qr)
    return session, info.qr


def publish_qr(ctx: AppContext, session: Session, qr: QrCode) -> None:
    ctx.bus.publish(
        Event(
            "qr_updated",
            session.organization_id,
            {"session_id": session.id, "code": qr.code, "pairing_code": qr.pairing_code},
        )
    )


async def live_status(ctx: AppContext, session: Session) -> LiveState:
    """Ask the gateway now; writes nothing."""
    try:
        return await gateway_for(ctx, session).get_state()
    except GatewayError as exc:
        raise gateway_failed("report the status", exc) from None


async def connect_session(ctx: AppContext, db: AsyncSession, session: Session) -> QrCode | None:
    """Start (or restart) the connection; returns a QR when the phone must scan one."""
    ensure_active(session)
    gateway = gateway_for(ctx, session)
    try:
        await gateway.connect()
        state = await gateway.get_state()
        qr = await gateway.get_qr() if state.status is SessionStatus.QR_PENDING else None
    except GatewayError as exc:
        raise gateway_failed("connect", exc) from None
    session.heal_attempts = 0
    session.next_heal_at = None
    record_status(db, ctx.bus, session, state.status, StatusSource.MANUAL, phone=state.phone)
    session.status_checked_at = utcnow()
    await db.commit()
    if qr and qr.code:
        publish_qr(ctx, session, qr)
    return qr


async def session_qr(ctx: AppContext, session: Session) -> QrCode:
    ensure_active(session)
    try:
        qr = await gateway_for(ctx, session).get_qr()
    except GatewayError as exc:
        raise gateway_failed("give a QR code", exc) from None
    if not qr.code and not qr.pairing_code:
        raise GatewayFailed("the gateway has no QR code to show yet; try connect again")
    return qr


async def logout_session(ctx: AppContext, db: AsyncSession, session: Session) -> None:
    ensure_active(session)
    try:
        await gateway_for(ctx, session).logout()
    except GatewayError as exc:
        raise gateway_failed("log out", exc) from None
    record_status(
        db, ctx.bus, session, SessionStatus.LOGGED_OUT, StatusSource.MANUAL, reason="logged out"
    )
    await db.commit()


async def archive_session(
    ctx: AppContext, db: AsyncSession, session: Session, *, reason: str, source: StatusSource
) -> list[str]:
    """Log out and delete the gateway instance (best effort), free the user's slot, and keep
    conversations and messages readable. Returns the gateway errors met, if any."""
    errors: list[str] = []
    gateway = gateway_for(ctx, session)
    for action in (gateway.logout, gateway.delete):
        try:
            await action()
        except GatewayError as exc:
            errors.append(f"{action.__name__}: {exc.reason}")
    record_status(db, ctx.bus, session, SessionStatus.LOGGED_OUT, source, reason=reason)
    session.archived_at = utcnow()
    session.gateway_key = None
    publish_on_commit(
        db,
        ctx.bus,
        Event(
            "session_status", session.organization_id, {"session_id": session.id, "archived": True}
        ),
    )
    return errors


def ensure_active(session: Session) -> None:
    if session.archived_at is not None:
        raise Conflict(f"session {session.id} is archived; create a new session to reconnect")


async def restore_sandbox_instances(ctx: AppContext) -> int:
    """The sandbox world lives in memory: after a restart, give each sandbox session its
    simulated phone back (showing a QR, as a real gateway would after losing its store)."""
    async with ctx.db.session() as db:
        rows = (
            await db.scalars(
                select(Session).where(Session.provider == "sandbox", Session.archived_at.is_(None))
            )
        ).all()
        for session in rows:
            await gateway_for(ctx, session).create_instance(webhook_target(ctx, session))
    return len(rows)
