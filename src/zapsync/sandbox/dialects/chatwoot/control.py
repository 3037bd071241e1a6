"""The sandbox Chatwoot's control API, under `/_sandbox/chatwoot` (never throttled, no token):
what a test or the demo does to the helpdesk — throttle the next N requests, seed thousands of
contacts, change contacts as an agent would, open conversations with history, write an agent's
reply, edit or delete a message, or resolve a conversation (each firing Chatwoot's signed
webhooks), point webhooks somewhere, and read back what zapsync wrote and what was
delivered."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from zapsync.sandbox.dialects.chatwoot import shapes
from zapsync.sandbox.dialects.chatwoot.conversations import announce_status
from zapsync.sandbox.dialects.chatwoot.messages import (
    announce_message,
    delete_message,
    edit_message,
)
from zapsync.sandbox.dialects.chatwoot.state import (
    INCOMING,
    OUTGOING,
    STATUSES,
    ChatwootState,
    Invalid,
    Refused,
    WebhookTarget,
)
from zapsync.sandbox.dialects.chatwoot.webhooks import Outgoing
from zapsync.sandbox.webhook_sender import WebhookSender


class ThrottleIn(BaseModel):
    count: int = Field(ge=0, description="How many of the next API requests answer 429.")


class SeedIn(BaseModel):
    count: int = Field(ge=1, le=1_000_000)
    prefix: str = "Seeded"


class TouchIn(BaseModel):
    count: int = Field(ge=1)
    suffix: str = "(changed)"


class ContactIn(BaseModel):
    fields: dict[str, Any]


class ConversationIn(BaseModel):
    contact_id: int
    inbox_id: int | None = None
    source_id: str | None = None
    status: str = "open"
    labels: list[str] = []
    messages: int = Field(0, ge=0, le=100_000, description="History to seed, alternating.")


class AttachmentIn(BaseModel):
    file_name: str
    content_type: str = "application/octet-stream"
    data_base64: str


class AgentMessageIn(BaseModel):
    content: str | None = None
    private: bool = False
    incoming: bool = Field(False, description="Written as the customer instead of the agent.")
    attachments: list[AttachmentIn] = []


class StatusIn(BaseModel):
    status: str


class MessageChangeIn(BaseModel):
    content: str | None = None
    deleted: bool = Field(False, description="Deleted as an agent does (content ignored).")


class WebhookIn(BaseModel):
    url: str | None = None
    secret: str | None = None
    subscriptions: list[str] | None = None


class InboxWebhookIn(BaseModel):
    webhook_url: str | None = None


def build_control_router(state: ChatwootState, out: Outgoing, sender: WebhookSender) -> APIRouter:
    router = APIRouter(prefix="/_sandbox/chatwoot", tags=["sandbox control (chatwoot)"])

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def contact_or_404(contact_id: int) -> Any:
        contact = state.contacts.get(contact_id)
        if contact is None:
            raise HTTPException(404, f"no sandbox contact {contact_id}")
        return contact

    def conversation_or_404(display_id: int) -> Any:
        conv = state.conversations.get(display_id)
        if conv is None:
            raise HTTPException(404, f"no sandbox conversation {display_id}")
        return conv

    @router.get("/state")
    async def describe() -> dict[str, Any]:
        return {
            "account_id": state.account_id,
            "token": state.token,
            "contacts": len(state.contacts),
            "listed_contacts": len(state.listed_contacts()),
            "conversations": len(state.conversations),
            "messages": len(state.messages),
            "inboxes": [shapes.inbox(i) for i in state.inboxes.values()],
            "requests": state.requests,
            "throttled": state.throttled,
            "throttle_next": state.throttle_next,
            "webhook": state.webhook.url if state.webhook else None,
        }

    @router.post("/throttle")
    async def throttle(body: ThrottleIn) -> dict[str, Any]:
        state.throttle_next = body.count
        return {"throttle_next": state.throttle_next, "throttled": state.throttled}

    @router.post("/contacts/seed")
    async def seed(body: SeedIn) -> dict[str, Any]:
        state.seed_contacts(body.count, body.prefix)
        return {"created": body.count, "contacts": len(state.contacts)}

    @router.post("/contacts")
    async def add_contact(body: ContactIn, request: Request) -> dict[str, Any]:
        try:
            contact = state.create_contact(body.fields)
        except Invalid as exc:
            raise HTTPException(422, exc.message) from None
        out.emit("contact_created", shapes.contact_webhook_data(state, contact))
        return shapes.contact(contact)

    @router.patch("/contacts/{contact_id}")
    async def change_contact(contact_id: int, body: ContactIn) -> dict[str, Any]:
        contact = contact_or_404(contact_id)
        try:
            changed = state.update_contact(contact, body.fields)
        except Invalid as exc:
            raise HTTPException(422, exc.message) from None
        if changed:
            data = shapes.contact_webhook_data(state, contact)
            out.emit("contact_updated", {**data, "changed_attributes": changed})
        return shapes.contact(contact)

    @router.post("/contacts/touch")
    async def touch(body: TouchIn) -> dict[str, Any]:
        """Rename the first `count` listed contacts, as agents editing them would."""
        ids = state.listed_contacts()[: body.count]
        for contact_id in ids:
            contact = state.contacts[contact_id]
            state.update_contact(contact, {"name": f"{contact.name or ''} {body.suffix}".strip()})
        return {"changed": ids}

    @router.post("/conversations")
    async def add_conversation(body: ConversationIn, request: Request) -> dict[str, Any]:
        contact = contact_or_404(body.contact_id)
        inbox_id = body.inbox_id or next(iter(state.inboxes))
        inbox = state.inboxes.get(inbox_id)
        if inbox is None:
            raise HTTPException(404, f"no sandbox inbox {inbox_id}")
        if body.status not in STATUSES:
            raise HTTPException(422, f"status must be one of {', '.join(STATUSES)}")
        try:
            link = state.contact_inbox(contact, inbox, body.source_id)
            conv = state.create_conversation(link, {"status": body.status})
        except (Invalid, Refused) as exc:
            raise HTTPException(422, str(exc)) from None
        conv.labels = sorted(body.labels)
        first = conv.created_at - body.messages
        for n in range(body.messages):
            incoming = n % 2 == 0
            state.add_message(
                conv,
                content=f"history {n + 1}",
                message_type=INCOMING if incoming else OUTGOING,
                sender_type="contact" if incoming else "user",
                sender_id=contact.id if incoming else state.agent.id,
                created_at=first + n,
            )
        return shapes.conversation(state, conv, base(request))

    @router.post("/conversations/{display_id}/agent_messages")
    async def agent_message(
        display_id: int, body: AgentMessageIn, request: Request
    ) -> dict[str, Any]:
        """An agent (or, with `incoming`, the customer) writes in Chatwoot's own UI."""
        conv = conversation_or_404(display_id)
        try:
            files = [
                state.new_attachment(a.file_name, a.content_type, base64.b64decode(a.data_base64))
                for a in body.attachments
            ]
        except ValueError:
            raise HTTPException(422, "data_base64 is not base64") from None
        message = state.add_message(
            conv,
            content=body.content,
            message_type=INCOMING if body.incoming else OUTGOING,
            sender_type="contact" if body.incoming else "user",
            sender_id=conv.contact_id if body.incoming else state.agent.id,
            private=body.private,
            attachments=files,
        )
        announce_message(state, out, message, base(request))
        return shapes.message(state, message, base(request))

    @router.patch("/messages/{message_id}")
    async def change_message(
        message_id: int, body: MessageChangeIn, request: Request
    ) -> dict[str, Any]:
        """A message edited (a channel's edit of the customer's text) or deleted in Chatwoot:
        `message_updated` fires when it changed."""
        message = state.messages.get(message_id)
        if message is None:
            raise HTTPException(404, f"no sandbox message {message_id}")
        if body.deleted:
            changed = not message.content_attributes.get("deleted")
            delete_message(state, message)
        else:
            changed = edit_message(message, body.content)
        if changed:
            announce_message(state, out, message, base(request), "message_updated")
        return shapes.message(state, message, base(request))

    @router.post("/conversations/{display_id}/status")
    async def set_status(display_id: int, body: StatusIn, request: Request) -> dict[str, Any]:
        conv = conversation_or_404(display_id)
        if body.status not in STATUSES:
            raise HTTPException(422, f"status must be one of {', '.join(STATUSES)}")
        previous = state.set_status(conv, body.status)
        announce_status(state, out, conv, previous, base(request))
        return shapes.conversation(state, conv, base(request))

    @router.post("/webhook")
    async def set_webhook(body: WebhookIn) -> dict[str, Any]:
        """The account webhook (Settings → Integrations → Webhooks); no url removes it."""
        if not body.url:
            state.webhook = None
            return {"webhook": None}
        subscriptions = frozenset(body.subscriptions) if body.subscriptions is not None else None
        state.webhook = WebhookTarget(body.url, body.secret, subscriptions)
        return {"webhook": body.url, "signed": bool(body.secret)}

    @router.post("/inboxes/{inbox_id}/webhook")
    async def set_inbox_webhook(inbox_id: int, body: InboxWebhookIn) -> dict[str, Any]:
        inbox = state.inboxes.get(inbox_id)
        if inbox is None:
            raise HTTPException(404, f"no sandbox inbox {inbox_id}")
        inbox.webhook_url = body.webhook_url or None
        return shapes.inbox(inbox)

    @router.get("/writes")
    async def writes() -> list[dict[str, Any]]:
        """Every create, update and toggle zapsync sent, in order."""
        return state.writes

    @router.get("/deliveries")
    async def deliveries() -> list[dict[str, Any]]:
        """Every webhook POSTed, with its headers and how it was answered."""
        listed = []
        for d in sender.deliveries:
            try:
                event = json.loads(d.body).get("event")
            except ValueError:
                event = None
            listed.append({"url": d.url, "event": event, "headers": d.headers,
                           "attempts": d.attempts, "status": d.last_status})  # fmt: skip
        return listed

    @router.get("/conversations/{display_id}/messages")
    async def conversation_messages(display_id: int, request: Request) -> list[dict[str, Any]]:
        """A conversation's whole history at once (what an agent sees), no paging."""
        conv = conversation_or_404(display_id)
        return [shapes.message(state, m, base(request)) for m in state.messages_of(conv)]

    return router
