"""Conversations (conversations_controller.rb, conversation_finder.rb): `{data: {meta, payload}}`
25 a page with no page or total field, `open` unless another status (or `all`) is asked, paths
by display_id, create finding or making the contact inbox, and toggle_status."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from zapsync.sandbox.dialects.chatwoot import shapes
from zapsync.sandbox.dialects.chatwoot.contacts import page_param
from zapsync.sandbox.dialects.chatwoot.routing import body_of, log_write, route_class_for
from zapsync.sandbox.dialects.chatwoot.state import (
    STATUSES,
    ChatwootState,
    Conversation,
    Invalid,
    NotFound,
    Refused,
)
from zapsync.sandbox.dialects.chatwoot.webhooks import Outgoing

PER_PAGE = 25


def announce_status(
    state: ChatwootState, out: Outgoing, conv: Conversation, previous: str, base_url: str
) -> None:
    if previous == conv.status:
        return
    changed = [{"status": {"previous_value": previous, "current_value": conv.status}}]
    data = {
        **shapes.conversation_webhook_data(state, conv, base_url),
        "changed_attributes": changed,
    }
    inbox = state.inboxes.get(conv.inbox_id)
    out.emit("conversation_status_changed", data, inbox)
    out.emit("conversation_updated", data, inbox)


def build_router(state: ChatwootState, out: Outgoing) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1/accounts/{account_id}/conversations",
        route_class=route_class_for(state),
        tags=["chatwoot"],
    )

    @router.get("")
    async def list_conversations(
        request: Request,
        account_id: str,
        status: str = "open",
        page: str | None = None,
        inbox_id: str | None = None,
        assignee_type: str = "all",
    ) -> JSONResponse:
        number, _ = page_param(page)
        chosen = [
            c
            for c in state.conversations.values()
            if (status == "all" or c.status == status)
            and (inbox_id is None or str(c.inbox_id) == inbox_id)
        ]
        # last_activity_at_desc, Chatwoot's default: items may shift between pages meanwhile.
        chosen.sort(key=lambda c: (c.last_activity_at, c.display_id), reverse=True)
        window = chosen[(number - 1) * PER_PAGE : number * PER_PAGE]
        base = str(request.base_url).rstrip("/")
        total = len(state.conversations)
        meta = {"mine_count": 0, "assigned_count": 0, "unassigned_count": total,
                "all_count": total}  # fmt: skip
        payload = [shapes.conversation(state, c, base) for c in window]
        return JSONResponse({"data": {"meta": meta, "payload": payload}})

    @router.post("")
    async def create(account_id: str, request: Request) -> JSONResponse:
        body = await body_of(request)
        log_write(state, request, body)
        source_id = _text(body.get("source_id"))
        if body.get("inbox_id") is not None and body.get("contact_id") is not None:
            inbox = state.inbox(body["inbox_id"])
            contact = state.contact(body["contact_id"])
            try:
                link = state.contact_inbox(contact, inbox, source_id)
            except Invalid:
                raise Refused(422, "source_id should be unique") from None
        else:
            found = next(
                (ci for ci in state.contact_inboxes.values() if ci.source_id == source_id), None
            )
            if found is None or source_id is None:
                raise NotFound()
            link = found
        conv = state.create_conversation(link, body)
        base = str(request.base_url).rstrip("/")
        out.emit(
            "conversation_created",
            shapes.conversation_webhook_data(state, conv, base),
            state.inboxes.get(conv.inbox_id),
        )
        return JSONResponse(shapes.conversation(state, conv, base))

    @router.get("/{display_id}")
    async def show(account_id: str, display_id: str, request: Request) -> JSONResponse:
        conv = state.conversation(display_id)
        return JSONResponse(shapes.conversation(state, conv, str(request.base_url).rstrip("/")))

    @router.post("/{display_id}/toggle_status")
    async def toggle_status(account_id: str, display_id: str, request: Request) -> JSONResponse:
        conv = state.conversation(display_id)
        body = await body_of(request)
        log_write(state, request, body)
        wanted = body.get("status")
        if wanted is None:
            wanted = "resolved" if conv.status == "open" else "open"
        if wanted not in STATUSES:
            raise Refused(422, f"'{wanted}' is not a valid status")
        previous = state.set_status(conv, str(wanted))
        snoozed = body.get("snoozed_until") if wanted == "snoozed" else None
        conv.snoozed_until = _unix_or_none(snoozed)
        announce_status(state, out, conv, previous, str(request.base_url).rstrip("/"))
        payload = {"success": True, "conversation_id": conv.display_id,
                   "current_status": conv.status, "snoozed_until": conv.snoozed_until}  # fmt: skip
        return JSONResponse({"meta": {}, "payload": payload})

    @router.get("/{display_id}/labels")
    async def labels(account_id: str, display_id: str) -> JSONResponse:
        return JSONResponse({"payload": state.conversation(display_id).labels})

    @router.post("/{display_id}/labels")
    async def set_labels(account_id: str, display_id: str, request: Request) -> JSONResponse:
        """Replaces the labels (labels_controller.rb), as an agent does in Chatwoot's UI."""
        conv = state.conversation(display_id)
        body = await body_of(request)
        wanted = body.get("labels")
        if not isinstance(wanted, list):
            raise Refused(422, "labels must be a list")
        previous, conv.labels = conv.labels, sorted({str(label) for label in wanted})
        if previous != conv.labels:
            conv.updated_at = time.time()  # the row is saved (its cached_label_list)
            changed = [{"label_list": {"previous_value": previous, "current_value": conv.labels}}]
            data = {
                **shapes.conversation_webhook_data(state, conv, str(request.base_url).rstrip("/")),
                "changed_attributes": changed,
            }
            out.emit("conversation_updated", data, state.inboxes.get(conv.inbox_id))
        return JSONResponse({"payload": conv.labels})

    return router


def _unix_or_none(value: Any) -> int | None:
    text = str(value) if isinstance(value, (int, str)) else ""
    return int(text) if text.isdigit() else None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
