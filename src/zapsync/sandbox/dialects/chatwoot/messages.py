"""Messages (messages_controller.rb, message_finder.rb, message_builder.rb): the latest 20
ascending, `before=<id>` for the 20 before it, `after=<id>` for up to 100 after, both for up
to 1000 between; create answering the bare message, `incoming` only in API inboxes, files as
multipart `attachments[]`. Each message written fires `message_created`; delete (as Chatwoot's
`destroy`) keeps the row, its content "This message was deleted", `content_attributes.deleted`
true and no attachments, and fires `message_updated` (as an edit does, `edit_message`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from zapsync.sandbox.dialects.chatwoot import shapes
from zapsync.sandbox.dialects.chatwoot.routing import body_of, log_write, route_class_for
from zapsync.sandbox.dialects.chatwoot.state import (
    INCOMING,
    MESSAGE_TYPES,
    ChatwootState,
    Conversation,
    Message,
    NotFound,
    Refused,
)
from zapsync.sandbox.dialects.chatwoot.webhooks import Outgoing

PER_PAGE = 20
AFTER_LIMIT = 100
BETWEEN_LIMIT = 1000
MAX_ATTACHMENTS = 15


def window(messages: list[Message], before: int | None, after: int | None) -> list[Message]:
    if before is not None and after is not None:
        return [m for m in messages if after < m.id < before][-BETWEEN_LIMIT:]
    if before is not None:
        return [m for m in messages if m.id < before][-PER_PAGE:]
    if after is not None:
        return [m for m in messages if m.id > after][:AFTER_LIMIT]
    return messages[-PER_PAGE:]


DELETED_CONTENT = "This message was deleted"  # I18n conversations.messages.deleted


def announce_message(
    state: ChatwootState,
    out: Outgoing,
    message: Message,
    base_url: str,
    event: str = "message_created",
) -> None:
    if shapes.is_webhook_sendable(message):
        data = shapes.message_webhook_data(state, message, base_url)
        out.emit(event, data, state.inboxes.get(message.inbox_id))


def delete_message(state: ChatwootState, message: Message) -> None:
    """messages_controller#destroy: the row stays, marked, its files gone."""
    message.content = DELETED_CONTENT
    message.content_type = "text"
    message.content_attributes = {"deleted": True}
    for attachment in message.attachments:
        state.attachments.pop(attachment.id, None)
    message.attachments = []


def edit_message(message: Message, content: str | None) -> bool:
    """A message's content changed (a channel's edit): whether it did."""
    if message.content == content:
        return False
    message.content = content
    return True


def write_message(state: ChatwootState, conv: Conversation, body: dict[str, Any]) -> Message:
    """MessageBuilder: the message a POST describes, with Chatwoot's refusals."""
    kind_name = str(body.get("message_type") or "outgoing")
    kind = MESSAGE_TYPES.get(kind_name)
    if kind is None or kind_name == "activity":
        raise Refused(422, f"'{kind_name}' is not a valid message_type")
    inbox = state.inboxes[conv.inbox_id]
    if kind == INCOMING and inbox.channel_type != "Channel::Api":
        raise Refused(422, "Incoming messages are only allowed in Api inboxes")
    files = body.get("attachments[]") or []
    if len(files) > MAX_ATTACHMENTS:
        raise Refused(422, f"Too many attachments (maximum is {MAX_ATTACHMENTS})")
    return state.add_message(
        conv,
        content=_text(body.get("content")),
        message_type=kind,
        sender_type="contact" if kind == INCOMING else "user",
        sender_id=conv.contact_id if kind == INCOMING else state.agent.id,
        private=str(body.get("private")).lower() == "true",
        content_type=str(body.get("content_type") or "text"),
        content_attributes=dict(body.get("content_attributes") or {})
        if isinstance(body.get("content_attributes"), dict)
        else {},
        source_id=_text(body.get("source_id")),
        echo_id=_text(body.get("echo_id")),
        attachments=[
            state.new_attachment(
                f.filename or "file", f.content_type or "application/octet-stream", f.data
            )
            for f in files
        ],
    )


def build_router(state: ChatwootState, out: Outgoing) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1/accounts/{account_id}/conversations/{display_id}/messages",
        route_class=route_class_for(state),
        tags=["chatwoot"],
    )

    @router.get("")
    async def list_messages(
        request: Request,
        account_id: str,
        display_id: str,
        before: int | None = None,
        after: int | None = None,
        filter_internal_messages: str | None = None,
    ) -> JSONResponse:
        conv = state.conversation(display_id)
        messages = state.messages_of(conv)
        if filter_internal_messages == "true":
            messages = [m for m in messages if not m.private and m.message_type != 2]
        base = str(request.base_url).rstrip("/")
        contact = state.contacts.get(conv.contact_id)
        meta = {
            "labels": conv.labels,
            "additional_attributes": conv.additional_attributes,
            "contact": shapes.contact(contact) if contact else None,
            "assignee": None,
            "agent_last_seen_at": 0,
            "assignee_last_seen_at": 0,
        }
        payload = [shapes.message(state, m, base) for m in window(messages, before, after)]
        return JSONResponse({"meta": meta, "payload": payload})

    @router.post("")
    async def create(account_id: str, display_id: str, request: Request) -> JSONResponse:
        conv = state.conversation(display_id)
        body = await body_of(request)
        files = []
        for upload in body.get("attachments[]") or []:
            files.append(_File(upload.filename, upload.content_type, await upload.read()))
        if files:
            body["attachments[]"] = files
        log_write(state, request, body)
        message = write_message(state, conv, body)
        base = str(request.base_url).rstrip("/")
        announce_message(state, out, message, base)
        return JSONResponse(shapes.message(state, message, base))

    @router.delete("/{message_id}")
    async def destroy(
        account_id: str, display_id: str, message_id: int, request: Request
    ) -> JSONResponse:
        conv = state.conversation(display_id)
        message = state.messages.get(message_id)
        if message is None or message.conversation_id != conv.display_id:
            raise NotFound()
        log_write(state, request, {})
        delete_message(state, message)
        base = str(request.base_url).rstrip("/")
        announce_message(state, out, message, base, "message_updated")
        return JSONResponse(shapes.message(state, message, base))

    return router


def build_blob_router(state: ChatwootState) -> APIRouter:
    """Where an attachment's `data_url` points (ActiveStorage; unauthenticated, as its signed
    ids are)."""
    router = APIRouter(tags=["chatwoot"])

    @router.get("/rails/active_storage/blobs/redirect/{attachment_id}/{file_name}")
    async def blob(attachment_id: int, file_name: str) -> Response:
        attachment = state.attachments.get(attachment_id)
        if attachment is None or attachment.file_name != file_name:
            return JSONResponse({"error": "Resource could not be found"}, status_code=404)
        return Response(attachment.data, media_type=attachment.content_type)

    return router


class _File:
    def __init__(self, filename: str | None, content_type: str | None, data: bytes) -> None:
        self.filename = filename
        self.content_type = content_type
        self.data = data


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
