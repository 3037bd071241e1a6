"""WhatsApp sessions: create, list, connect, QR, logout, delete (archive).

No transaction is open while a gateway answers (`release` before each call, `refresh` after):
on SQLite a transaction holds the write lock, so a create waiting on Evolution would stall
every webhook, and on PostgreSQL an uncommitted session is one its webhooks cannot find."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.domain.gateway import LiveState, QrCode
from zapsync.domain.status import SessionStatus, StatusSource
from zapsync.providers.base import (
    ForeignWebhook,
    Gateway,
    GatewayError,
    InstanceGone,
    WebhookTarget,
)
from zapsync.runtime.context import AppContext
from zapsync.security.tokens import new_webhook_secret
from zapsync.security.urls import url_policy
from zapsync.services.accounts import Principal
from zapsync.services.errors import Conflict, Invalid, NotFound
from zapsync.services.ingest.secrets import new_secrets, secrets_of
from zapsync.services.sessions.config import (
    check_base_url,
    gateway_key,
    identity_key,
    validate_config,
)
from zapsync.services.sessions.gateway import gateway_for, release
from zapsync.services.sessions.status import is_gone, record_gone, record_status
from zapsync.store import sessions as store
from zapsync.store.models import Session
from zapsync.store.types import utcnow

log = structlog.get_logger(__name__)

# What DELETE does at the gateway: keep the instance (only zapsync's webhook goes, the
# team's comes back), log its phone out too, or delete the instance.
AtGateway = Literal["keep", "logout", "delete"]

T = TypeVar("T")

# (provider, session id) -> the URL the session's gateway delivers webhooks to. The API owns
# its routes, so it hands this in (`api/urls.py`); nothing here knows a path.
WebhookUrl = Callable[[str, int], str]


class GatewayFailed(Invalid):
    """The gateway refused or could not be reached; the detail is its own reason."""


def webhook_target(ctx: AppContext, session: Session, webhook_url: WebhookUrl) -> WebhookTarget:
    url = webhook_url(session.provider, session.id)
    secrets = secrets_of(ctx.cipher, session)
    return WebhookTarget(url=url, secret=secrets.secret, signing_key=secrets.signing_key)


def gateway_failed(action: str, exc: GatewayError) -> GatewayFailed:
    return GatewayFailed(f"the gateway refused to {action}: {exc.reason}")


def gone_conflict(session: Session) -> Conflict:
    return Conflict(
        f"session {session.id}'s instance no longer exists at the gateway "
        f"({session.status_reason}); delete this session and create a new one"
    )


async def get_session(db: AsyncSession, principal: Principal, session_id: int) -> Session:
    """The session if it belongs to the caller's organization; 404 otherwise (no leak)."""
    session = await store.session_by_id(db, session_id)
    if session is None or session.organization_id != principal.organization_id:
        raise NotFound(f"no session with id {session_id}")
    return session


async def list_sessions(
    db: AsyncSession, principal: Principal, *, include_archived: bool = False
) -> list[Session]:
    return await store.organization_sessions(
        db, principal.organization_id, include_archived=include_archived
    )


async def call_gateway(
    ctx: AppContext,
    db: AsyncSession,
    session: Session,
    action: str,
    call: Callable[[], Awaitable[T]],
) -> T:
    """One gateway call for `session` with no transaction open; its refusal as a 422, and
    an instance that does not exist any more as `failed` (committed) and a 409."""
    await release(db)
    try:
        return await call()
    except InstanceGone as exc:
        await db.refresh(session)
        record_gone(db, ctx.bus, session, exc.reason)
        await db.commit()
        raise gone_conflict(session) from None
    except GatewayError as exc:
        raise gateway_failed(action, exc) from None


@dataclass
class Created:
    session: Session
    qr: QrCode | None
    replaced_webhook: str | None = None  # the team's webhook zapsync's replaced, relayed to
    forward_secret: str | None = None  # signs each relayed event (X-Zapsync-Signature)


async def _identity(ctx: AppContext, provider: str, config: dict[str, str]) -> str | None:
    """The gateway's own id of the instance, read before anything changes there."""
    if provider == "sandbox":
        return None
    try:
        return await ctx.gateways.build(provider, config, "").identity()
    except GatewayError as exc:
        log.info("gateway refused a new session", provider=provider, reason=exc.reason)
        raise gateway_failed("create the instance", exc) from None


async def _insert_creating(
    ctx: AppContext,
    db: AsyncSession,
    principal: Principal,
    *,
    name: str,
    provider: str,
    clean: dict[str, str],
    keys: list[str],
) -> Session:
    """The session row in `creating`, committed: the gateway's webhooks during create find it."""
    limit = ctx.settings.max_sessions_per_user
    active = await store.count_live_created_by(db, principal.user_id)
    if active >= limit:
        raise Conflict(
            f"you already have {active} sessions; at most {limit} per user "
            "(delete one or raise ZAPSYNC_MAX_SESSIONS_PER_USER)"
        )
    if keys:
        taken = await store.session_with_gateway_key(db, principal.organization_id, keys)
        if taken is not None:
            raise Conflict(f"this gateway instance is already session {taken} of your organization")
    session = Session(
        organization_id=principal.organization_id,
        created_by=principal.user_id,
        name=name.strip() or provider,
        provider=provider,
        gateway_key=keys[0] if keys else None,
        config_encrypted=ctx.cipher.encrypt_json(clean),
        status=SessionStatus.CREATING.value,
        status_reason="waiting for the gateway to create the instance",
        check_failures=0,
        heal_attempts=0,
    )
    new_secrets(ctx.cipher, session)
    try:
        await store.add_session(db, session)
        if not keys:
            session.gateway_key = gateway_key(provider, clean, str(session.id))
        await db.commit()
    except IntegrityError:
        await db.rollback()
        raise Conflict("this gateway instance was just added as another session") from None
    return session


async def _undo_create(db: AsyncSession, session_id: int) -> None:
    await db.rollback()
    await store.delete_session(db, session_id)
    await db.commit()


async def create_session(
    ctx: AppContext,
    db: AsyncSession,
    principal: Principal,
    *,
    name: str,
    provider: str,
    config: dict[str, Any],
    webhook_url: WebhookUrl,
) -> Created:
    """Store the session as `creating`, then ask the gateway; the row is deleted again if
    the gateway refuses, so a refusal leaves nothing behind."""
    clean = validate_config(provider, config)
    await check_base_url(url_policy(ctx.settings), clean)
    await release(db)
    identity = await _identity(ctx, provider, clean)
    keys = [] if provider == "sandbox" else [gateway_key(provider, clean, "")]
    if identity:
        keys.insert(0, identity_key(provider, identity))
    session = await _insert_creating(
        ctx, db, principal, name=name, provider=provider, clean=clean, keys=keys
    )
    gateway = gateway_for(ctx, session)
    target = webhook_target(ctx, session, webhook_url)
    foreign: ForeignWebhook | None = None
    try:
        foreign = await _foreign_webhook(gateway, target)
        info = await gateway.create_instance(target)
    except GatewayError as exc:
        await _undo_create(db, session.id)
        await _put_back(gateway, target, foreign)
        log.info("gateway refused a new session", provider=provider, reason=exc.reason)
        raise gateway_failed("create the instance", exc) from None
    except BaseException:
        await _undo_create(db, session.id)
        raise
    await db.refresh(session)
    if info.identity and not identity:
        session.gateway_key = identity_key(provider, info.identity)
    secret = _keep_forward(ctx, session, foreign) if foreign else None
    # Webhooks during the create may have moved it on; the answer's QR is still to scan
    # unless one said the phone is already connected.
    if session.status == SessionStatus.CREATING.value or (
        info.status is SessionStatus.QR_PENDING and session.status != SessionStatus.CONNECTED.value
    ):
        record_status(db, ctx.bus, session, info.status, StatusSource.MANUAL, reason="created")
    session.status_checked_at = utcnow()
    if info.qr and info.qr.code:
        publish_qr(ctx, db, session, info.qr)
    await db.commit()
    return Created(session, info.qr, foreign.url if foreign else None, secret)


async def _foreign_webhook(gateway: Gateway, target: WebhookTarget) -> ForeignWebhook | None:
    try:
        return await gateway.foreign_webhook(target)
    except InstanceGone:
        return None  # a new instance: nothing to replace


async def _put_back(
    gateway: Gateway, target: WebhookTarget, foreign: ForeignWebhook | None
) -> None:
    """A create that failed after attaching may have replaced the team's webhook already."""
    if foreign is None:
        return
    try:
        await gateway.remove_webhook(target, foreign)
    except GatewayError as exc:
        log.warning("could not put the instance's webhook back", url=foreign.url, reason=exc.reason)


def _keep_forward(ctx: AppContext, session: Session, foreign: ForeignWebhook) -> str:
    """Keep the team's webhook that ours replaced: relayed to, and restored on removal."""
    secret = new_webhook_secret()
    session.forward_to = foreign.url
    session.forward_encrypted = ctx.cipher.encrypt_json(
        {"config": foreign.config, "secret": secret}
    )
    log.warning(
        "replaced the instance's webhook; its events are relayed there",
        session_id=session.id,
        previous_url=foreign.url,
    )
    return secret


def forward_of(ctx: AppContext, session: Session) -> tuple[ForeignWebhook, str] | None:
    """The team's webhook and the secret relayed events are signed with, when there is one."""
    if not session.forward_to or not session.forward_encrypted:
        return None
    kept = ctx.cipher.decrypt_json(session.forward_encrypted)
    return ForeignWebhook(session.forward_to, dict(kept["config"])), str(kept["secret"])


def publish_qr(ctx: AppContext, db: AsyncSession, session: Session, qr: QrCode) -> None:
    """`qr_updated` once `db` commits, like every event: never for a change rolled back."""
    publish_on_commit(
        db,
        Event(
            "qr_updated",
            session.organization_id,
            {"session_id": session.id, "code": qr.code, "pairing_code": qr.pairing_code},
        ),
    )


async def live_status(ctx: AppContext, db: AsyncSession, session: Session) -> LiveState:
    """Ask the gateway now; writes nothing (but that the instance is gone, when it is)."""
    gateway = gateway_for(ctx, session)
    return await call_gateway(ctx, db, session, "report the status", gateway.get_state)


def ensure_pairable(session: Session) -> None:
    ensure_active(session)
    if is_gone(session):
        raise gone_conflict(session)
    if session.status == SessionStatus.CREATING.value:
        raise Conflict(f"session {session.id} is still being created at the gateway")


async def connect_session(ctx: AppContext, db: AsyncSession, session: Session) -> QrCode | None:
    """Start (or restart) pairing; returns the QR when the phone must scan one. The one way
    a logged-out session comes back."""
    ensure_pairable(session)
    gateway = gateway_for(ctx, session)

    async def connect() -> tuple[QrCode | None, LiveState]:
        qr = await gateway.connect()
        state = await gateway.get_state()
        if (qr is None or not (qr.code or qr.pairing_code)) and (
            state.status is SessionStatus.QR_PENDING
        ):
            qr = await gateway.get_qr()
        return qr, state

    qr, state = await call_gateway(ctx, db, session, "connect", connect)
    status = state.status
    if qr and (qr.code or qr.pairing_code) and status is not SessionStatus.CONNECTED:
        status = SessionStatus.QR_PENDING
    await db.refresh(session)
    session.heal_attempts = 0
    session.next_heal_at = None
    record_status(db, ctx.bus, session, status, StatusSource.MANUAL, phone=state.phone)
    session.status_checked_at = utcnow()
    if qr and qr.code:
        publish_qr(ctx, db, session, qr)
    await db.commit()
    return qr


class NotPairing(Conflict):
    """The session is logged out: only connecting it pairs a phone again."""

    def __init__(self, session_id: int) -> None:
        super().__init__(f"session {session_id} is logged out; connect it to pair a phone again")
        self.session_id = session_id


class NoQrYet(GatewayFailed):
    """The gateway shows no QR now: connecting the session starts pairing."""

    def __init__(self, session_id: int) -> None:
        super().__init__("the gateway has no QR code to show now; connecting starts pairing")
        self.session_id = session_id


async def session_qr(ctx: AppContext, db: AsyncSession, session: Session) -> QrCode:
    """The QR the gateway shows now. Reading never starts pairing: `connect` does."""
    ensure_pairable(session)
    if session.status == SessionStatus.LOGGED_OUT.value:
        raise NotPairing(session.id)
    gateway = gateway_for(ctx, session)
    qr = await call_gateway(ctx, db, session, "give a QR code", gateway.get_qr)
    if not qr.code and not qr.pairing_code:
        raise NoQrYet(session.id)
    return qr


async def logout_session(ctx: AppContext, db: AsyncSession, session: Session) -> None:
    ensure_active(session)
    if is_gone(session):
        raise gone_conflict(session)
    gateway = gateway_for(ctx, session)
    await call_gateway(ctx, db, session, "log out", gateway.logout)
    await db.refresh(session)
    record_status(
        db, ctx.bus, session, SessionStatus.LOGGED_OUT, StatusSource.MANUAL, reason="logged out"
    )
    session.heal_attempts = 0
    session.next_heal_at = None
    await db.commit()


@dataclass
class Archived:
    at_gateway: AtGateway
    done: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def archive_session(
    ctx: AppContext,
    db: AsyncSession,
    session: Session,
    *,
    reason: str,
    source: StatusSource,
    webhook_url: WebhookUrl,
    at_gateway: AtGateway = "keep",
) -> Archived:
    """Free the user's slot and keep conversations and messages readable. At the gateway
    (best effort, errors reported): `keep` the instance and remove only zapsync's webhook,
    putting back the team's one it replaced; `logout` its phone too; or `delete` it. A
    sandbox session's simulated phone exists for the session only and is always deleted.
    The caller commits."""
    if session.provider == "sandbox":
        at_gateway = "delete"
    outcome = Archived(at_gateway)
    gateway = gateway_for(ctx, session)
    target = webhook_target(ctx, session, webhook_url)
    kept = forward_of(ctx, session)
    restore = kept[0] if kept else None
    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
    if at_gateway in ("logout", "delete"):
        steps.append(("logged the phone out", gateway.logout))
    if at_gateway == "delete":
        steps.append(("deleted the instance", gateway.delete))
    else:

        async def remove() -> None:
            await gateway.remove_webhook(target, restore)

        what = f"put back the webhook to {restore.url}" if restore else "removed zapsync's webhook"
        steps.append((what, remove))
    await release(db)
    gone = is_gone(session)
    for what, step in steps:
        if gone:
            break
        try:
            await step()
            outcome.done.append(what)
        except InstanceGone:
            gone = True
        except GatewayError as exc:
            outcome.errors.append(f"{what.split(' ', 1)[0]}: {exc.reason}")
    if gone:
        outcome.done.append("nothing: the instance no longer exists at the gateway")
    await db.refresh(session)
    if at_gateway != "keep":
        record_status(db, ctx.bus, session, SessionStatus.LOGGED_OUT, source, reason=reason)
    session.archived_at = utcnow()
    session.gateway_key = None
    publish_on_commit(
        db,
        Event(
            "session_status", session.organization_id, {"session_id": session.id, "archived": True}
        ),
    )
    return outcome


def ensure_active(session: Session) -> None:
    if session.archived_at is not None:
        raise Conflict(f"session {session.id} is archived; create a new session to reconnect")


async def restore_sandbox_instances(ctx: AppContext, webhook_url: WebhookUrl) -> int:
    """The sandbox world lives in memory: after a restart, give each sandbox session its
    simulated phone back (showing a QR, as a real gateway would after losing its store)."""
    async with ctx.db.session() as db:
        rows = await store.live_sessions(db, provider="sandbox")
    for session in rows:
        await gateway_for(ctx, session).create_instance(webhook_target(ctx, session, webhook_url))
    return len(rows)
