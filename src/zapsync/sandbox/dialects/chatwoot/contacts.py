"""Contacts (contacts_controller.rb): 15 a page of resolved contacts, `current_page` echoed as
given, search with `has_more`, create answering `{payload: {contact, contact_inbox}}`, PUT
merging attributes, and the per-account uniqueness of email, phone and identifier."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from zapsync.sandbox.dialects.chatwoot import shapes
from zapsync.sandbox.dialects.chatwoot.routing import body_of, log_write, route_class_for
from zapsync.sandbox.dialects.chatwoot.state import ChatwootState, Refused
from zapsync.sandbox.dialects.chatwoot.webhooks import Outgoing

PER_PAGE = 15
SORTABLE = ("email", "name", "phone_number", "last_activity_at", "created_at")


def page_param(raw: str | None) -> tuple[int, Any]:
    """Kaminari's page (1 for anything that is not a positive number) and the echo of it."""
    if raw is None:
        return 1, 1
    number = int(raw) if raw.isdigit() and int(raw) > 0 else 1
    return number, raw


def build_router(state: ChatwootState, out: Outgoing) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1/accounts/{account_id}/contacts",
        route_class=route_class_for(state),
        tags=["chatwoot"],
    )

    def sorted_ids(sort: str | None) -> list[int]:
        ids = state.listed_contacts()
        key = (sort or "").lstrip("-")
        if key not in SORTABLE:
            return ids

        def value(i: int) -> tuple[bool, Any]:
            v = getattr(state.contacts[i], key)
            return (v is None, v if v is not None else 0)

        return sorted(ids, key=value, reverse=(sort or "").startswith("-"))

    @router.get("")
    async def list_contacts(
        account_id: str,
        page: str | None = None,
        sort: str | None = None,
        include_contact_inboxes: str = "true",
    ) -> JSONResponse:
        number, echo = page_param(page)
        ids = sorted_ids(sort)
        chosen = ids[(number - 1) * PER_PAGE : number * PER_PAGE]
        with_inboxes = include_contact_inboxes != "false"
        render = shapes.contact_with_inboxes if with_inboxes else _plain
        payload = [render(state, state.contacts[i]) for i in chosen]
        return JSONResponse({"meta": {"count": len(ids), "current_page": echo}, "payload": payload})

    @router.get("/search")
    async def search(account_id: str, q: str = "", page: str | None = None) -> Response:
        if not q.strip():
            raise Refused(422, "Specify search string with parameter q")
        if not state.search_allowed():
            return PlainTextResponse("Retry later", status_code=429)
        number, echo = page_param(page)
        found = state.search_contacts(q)
        chosen = found[(number - 1) * PER_PAGE : number * PER_PAGE]
        meta = {"count": len(chosen), "current_page": echo,
                "has_more": len(found) > number * PER_PAGE}  # fmt: skip
        payload = [shapes.contact_with_inboxes(state, c) for c in chosen]
        return JSONResponse({"meta": meta, "payload": payload})

    @router.post("")
    async def create(account_id: str, request: Request) -> JSONResponse:
        body = await body_of(request)
        log_write(state, request, body)
        inbox = state.inbox(body["inbox_id"]) if body.get("inbox_id") is not None else None
        contact = state.create_contact(body)
        link = None
        if inbox is not None:
            link = state.contact_inbox(contact, inbox, _text(body.get("source_id")))
        out.emit("contact_created", shapes.contact_webhook_data(state, contact))
        contact_inbox = (
            shapes.contact_inbox(state, link) if link else {"inbox": None, "source_id": None}
        )
        payload = {"contact": shapes.contact(contact), "contact_inbox": contact_inbox}
        return JSONResponse({"payload": payload})

    @router.get("/{contact_id}")
    async def show(account_id: str, contact_id: str) -> JSONResponse:
        contact = state.contact(contact_id)
        return JSONResponse({"payload": shapes.contact_with_inboxes(state, contact)})

    @router.put("/{contact_id}")
    async def update(account_id: str, contact_id: str, request: Request) -> JSONResponse:
        contact = state.contact(contact_id)
        body = await body_of(request)
        log_write(state, request, body)
        changed = state.update_contact(contact, body)
        if changed:
            data = shapes.contact_webhook_data(state, contact)
            out.emit("contact_updated", {**data, "changed_attributes": changed})
        return JSONResponse({"payload": shapes.contact_with_inboxes(state, contact)})

    @router.delete("/{contact_id}")
    async def delete(account_id: str, contact_id: str, request: Request) -> Response:
        contact = state.contact(contact_id)
        log_write(state, request, {})
        state.delete_contact(contact)
        return Response(status_code=200)

    @router.post("/{contact_id}/contact_inboxes")
    async def create_contact_inbox(
        account_id: str, contact_id: str, request: Request
    ) -> JSONResponse:
        contact = state.contact(contact_id)
        body = await body_of(request)
        log_write(state, request, body)
        inbox = state.inbox(body.get("inbox_id"))
        if inbox.channel_type != "Channel::Api":
            raise Refused(422, "Contact Inbox creation is only allowed in API inboxes")
        link = state.contact_inbox(contact, inbox, _text(body.get("source_id")))
        return JSONResponse(shapes.contact_inbox(state, link))

    return router


def _plain(state: ChatwootState, contact: Any) -> dict[str, Any]:
    return shapes.contact(contact)


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
