"""`/api/v1/sandbox/sessions/{id}/…`: drive the built-in sandbox phone of one of your
sandbox sessions (scan the QR, drop the link, receive a message). For demos and tests."""

from __future__ import annotations

from fastapi import APIRouter

from zapsync.api.deps import AdminPrincipal, Ctx, CurrentPrincipal, Db
from zapsync.api.params import PathId
from zapsync.api.problems import problem_responses
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas import InboundIn, InboundPublic, PhonePublic, ScanIn
from zapsync.sandbox.control import describe
from zapsync.sandbox.world import SimInstance
from zapsync.services.errors import Conflict, Invalid
from zapsync.services.sessions import lifecycle as svc
from zapsync.services.sessions.gateway import sandbox_instance_name

router = APIRouter(
    prefix="/api/v1/sandbox/sessions",
    tags=["sandbox"],
    route_class=ApiRoute,
    responses=problem_responses(409),  # the phone is gone after a restart
)


async def _instance(ctx: Ctx, db: Db, principal: CurrentPrincipal, session_id: int) -> SimInstance:
    session = await svc.get_session(db, principal, session_id)
    if session.provider != "sandbox":
        raise Invalid("only sandbox sessions have a simulated phone")
    inst = ctx.world.get(sandbox_instance_name(session.id))
    if inst is None:
        raise Conflict("the sandbox phone is gone (the process restarted): connect again")
    return inst


@router.get("/{session_id}", response_model=PhonePublic)
async def phone(session_id: PathId, ctx: Ctx, db: Db, principal: CurrentPrincipal) -> PhonePublic:
    """What the simulated phone holds: its link state, chats, unread chats and what it sent."""
    return PhonePublic.model_validate(describe(await _instance(ctx, db, principal, session_id)))


@router.post("/{session_id}/scan", response_model=PhonePublic)
async def scan(
    session_id: PathId, ctx: Ctx, db: Db, principal: AdminPrincipal, body: ScanIn | None = None
) -> PhonePublic:
    """Scan the session's QR code with the simulated phone."""
    inst = await _instance(ctx, db, principal, session_id)
    try:
        ctx.world.scan(inst, (body or ScanIn()).phone)
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    return PhonePublic.model_validate(describe(inst))


@router.post("/{session_id}/drop", response_model=PhonePublic)
async def drop(session_id: PathId, ctx: Ctx, db: Db, principal: AdminPrincipal) -> PhonePublic:
    """Lose the link to WhatsApp silently (no logout, no event), as real phones do."""
    inst = await _instance(ctx, db, principal, session_id)
    ctx.world.drop(inst, silent=True)
    return PhonePublic.model_validate(describe(inst))


@router.post("/{session_id}/inbound", response_model=InboundPublic)
async def inbound(
    session_id: PathId, body: InboundIn, ctx: Ctx, db: Db, principal: CurrentPrincipal
) -> InboundPublic:
    """A customer sends the session a text message."""
    inst = await _instance(ctx, db, principal, session_id)
    msg = ctx.world.inbound(
        inst, f"{body.from_phone}@s.whatsapp.net", body.body, push_name=body.push_name
    )
    return InboundPublic(id=msg.id, chat_jid=msg.chat_jid)
