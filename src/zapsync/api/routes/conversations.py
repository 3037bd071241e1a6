"""`/api/v1/conversations`: the inbox. List, read, resolve, and send (through the outbox)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from starlette.datastructures import UploadFile

from zapsync.api.deps import Ctx, CurrentPrincipal, Db
from zapsync.api.media_urls import url_builder
from zapsync.api.params import PathId, QueryBigId, QueryId
from zapsync.api.problems import problem_responses
from zapsync.api.routing import ApiRoute, read_json
from zapsync.api.schemas import (
    ConversationPage,
    ConversationPublic,
    ConversationUpdate,
    MessageCreate,
    MessagePage,
    MessagePublic,
)
from zapsync.api.schemas.messages import parse_send_request
from zapsync.domain.outgoing import OutgoingMessage
from zapsync.runtime.context import AppContext
from zapsync.security.urls import url_policy
from zapsync.services import media
from zapsync.services.accounts import Principal
from zapsync.services.errors import Conflict, Invalid, TooLarge, UnsupportedMedia
from zapsync.services.inbox import conversations as svc
from zapsync.services.inbox.sending import queue_send, reply_elsewhere

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"], route_class=ApiRoute)

Status = Literal["open", "pending", "resolved"]
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and the other fields of an upload
SEND_PATH = r"/api/v1/conversations/[^/]+/messages"  # the send route, for the body limit
MAX_PAGE = 1_000_000  # an offset past every conversation there is; bounds the SQL OFFSET


SEND_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": MessageCreate.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "type": {
                            "type": "string",
                            "enum": list(media.MEDIA_TYPES),
                            "description": "guessed from the file's type when left out",
                        },
                        "caption": {"type": "string"},
                    },
                }
            },
        },
    }
}


@router.get("", response_model=ConversationPage)
async def list_conversations(
    db: Db,
    principal: CurrentPrincipal,
    session_id: QueryId = None,
    status: Status | None = None,
    q: Annotated[str | None, Query(max_length=200, description="name or phone")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
) -> ConversationPage:
    """Newest activity first, each with its contact, last message preview and unread count.
    Pass `next_cursor` back as `cursor` for the next page."""
    page = await svc.list_conversations(
        db, principal, session_id=session_id, status=status, q=q, cursor=cursor, limit=limit
    )
    items = [ConversationPublic.of(c, contact) for c, contact in page.items]
    return ConversationPage(items=items, next_cursor=page.next_cursor)


@router.get("/{conversation_id}", response_model=ConversationPublic)
async def get_conversation(
    conversation_id: PathId, db: Db, principal: CurrentPrincipal
) -> ConversationPublic:
    conversation = await svc.get_conversation(db, principal, conversation_id, reading_only=True)
    return ConversationPublic.of(*await svc.with_contact(db, conversation))


@router.patch("/{conversation_id}", response_model=ConversationPublic)
async def update_conversation(
    conversation_id: PathId, body: ConversationUpdate, ctx: Ctx, db: Db, principal: CurrentPrincipal
) -> ConversationPublic:
    """Set the status (`open`, `pending`, `resolved`); publishes `conversation_updated`."""
    conversation = await svc.get_conversation(db, principal, conversation_id)
    if body.status is None:
        raise Invalid("nothing to change: give a status (open, pending or resolved)")
    conversation = await svc.set_status(db, ctx.bus, principal, conversation.id, body.status)
    return ConversationPublic.of(*await svc.with_contact(db, conversation))


@router.put("/{conversation_id}/read", response_model=ConversationPublic)
async def mark_read(
    conversation_id: PathId, ctx: Ctx, db: Db, principal: CurrentPrincipal
) -> ConversationPublic:
    """Zero the unread count; publishes `messages_read`."""
    conversation = await svc.mark_read(db, ctx.bus, principal, conversation_id)
    return ConversationPublic.of(*await svc.with_contact(db, conversation))


@router.get("/{conversation_id}/messages", response_model=MessagePage)
async def list_messages(
    conversation_id: PathId,
    ctx: Ctx,
    db: Db,
    principal: CurrentPrincipal,
    before: QueryBigId = None,
    page: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE, description="1 = the newest messages")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MessagePage:
    """Going back in time: oldest first within the page; `next_before` asks for the page
    before it (null when there is none); `before` is a message id: the page before it."""
    conversation = await svc.get_conversation(db, principal, conversation_id, reading_only=True)
    result = await svc.list_messages(db, conversation, before=before, page=page, limit=limit)
    secret_key = ctx.settings.resolved_secret_key()
    return MessagePage(
        messages=[MessagePublic.of(d.message, d.error, secret_key) for d in result.messages],
        next_before=result.next_before,
        has_more=result.has_more,
    )


@router.post(
    "/{conversation_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=SEND_BODY,
    response_model=MessagePublic,
    responses=problem_responses(413, 415),
)
async def send_message(
    conversation_id: PathId, request: Request, ctx: Ctx, db: Db, principal: CurrentPrincipal
) -> MessagePublic:
    """Queue a message: JSON `{"type": "text", "content": …}`, media by URL
    `{"type": "image|video|audio|document", "url": …, "caption"?, "file_name"?,
    "mime_type"?}`, or a multipart upload (`file`, and optionally `type` and `caption`).

    Answers 202 with the message as `ack=pending`; the outbox delivers it and
    `message_updated` follows (`sent`, or `failed` with an `error`)."""
    conversation = await svc.get_conversation(db, principal, conversation_id)  # 404 first
    if conversation.session_id is None:
        # A helpdesk channel's conversation: refused before an upload is stored (409).
        raise Conflict(await reply_elsewhere(db, conversation))
    content_type = request.headers.get("content-type", "").lower()
    stored: media.StoredMedia | None = None
    if content_type.startswith("multipart/form-data"):
        body, stored = await _upload(request, ctx, principal)
    elif content_type.startswith("application/json") or not content_type:
        # A body without a content type has always been taken as JSON here.
        body = parse_send_request(await read_json(request, untyped_is_json=True))
    else:
        raise UnsupportedMedia("send application/json or multipart/form-data")
    try:
        message = await queue_send(
            db, ctx.bus, principal, conversation_id, body, url_policy=url_policy(ctx.settings)
        )
    except BaseException:
        if stored is not None:
            media.discard(ctx.settings, stored.name)
        raise
    return MessagePublic.of(message)


async def _upload(
    request: Request, ctx: AppContext, principal: Principal
) -> tuple[OutgoingMessage, media.StoredMedia]:
    limit = media.max_bytes(ctx.settings)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + MULTIPART_OVERHEAD:
        raise TooLarge(
            f"the upload is larger than the {ctx.settings.max_upload_mb:g} MB limit "
            "(ZAPSYNC_MAX_UPLOAD_MB)"
        )
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("a multipart send needs the file in a field named 'file'")
        file_name = PurePath(upload.filename or "").name[:300] or None
        mime = media.normalize_mime(upload.content_type)
        if mime in (None, "application/octet-stream"):
            mime = media.guess_mime(file_name) or mime
        kind = str(form.get("type") or media.kind_of(mime))
        media.check_type(kind, mime)
        caption = form.get("caption")
        stored = await media.store_upload(
            ctx.settings,
            url_builder(ctx.settings),
            principal.organization_id,
            upload.file,
            kind=kind,
            mime=mime or "application/octet-stream",
            file_name=file_name,
        )
    try:
        body = parse_send_request(
            {
                "type": kind,
                "url": stored.url,
                "caption": caption if isinstance(caption, str) and caption else None,
                "file_name": file_name,
                "mime_type": stored.mime_type,
            }
        )
    except BaseException:
        media.discard(ctx.settings, stored.name)
        raise
    return body, stored
