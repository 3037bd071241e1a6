"""Chatwoot's JSON, rendered from the sandbox state: the REST API's shapes (jbuilder views,
`message_type` an int, times unix) and the webhooks' (`webhook_data`, `message_type` a string,
`created_at` ISO-8601), as CHATWOOT.md §2-6 and contracts/chatwoot/ show them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from zapsync.sandbox.dialects.chatwoot.state import (
    ACTIVITY,
    Attachment,
    ChatwootState,
    Contact,
    Conversation,
    Inbox,
    Message,
)

Json = dict[str, Any]

_TYPE_NAMES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}


def inbox(box: Inbox) -> Json:
    body: Json = {
        "id": box.id,
        "avatar_url": "",
        "channel_id": box.channel_id,
        "name": box.name,
        "channel_type": box.channel_type,
        "greeting_enabled": False,
        "greeting_message": None,
        "working_hours_enabled": False,
        "enable_email_collect": True,
        "lock_to_single_conversation": False,
    }
    if box.channel_type == "Channel::Api":
        body["webhook_url"] = box.webhook_url
        body["inbox_identifier"] = box.identifier
        body["additional_attributes"] = {}
        # Shown to administrators only; the sandbox's one user is one.
        body["secret"] = box.secret
        body["hmac_token"] = box.hmac_token
    return body


def contact(c: Contact) -> Json:
    return {
        "additional_attributes": c.additional_attributes,
        "availability_status": "offline",
        "email": c.email,
        "id": c.id,
        "name": c.name,
        "phone_number": c.phone_number,
        "blocked": c.blocked,
        "identifier": c.identifier,
        "thumbnail": c.thumbnail,
        "custom_attributes": c.custom_attributes,
        "last_activity_at": c.last_activity_at,
        "created_at": c.created_at,
    }


def contact_with_inboxes(state: ChatwootState, c: Contact) -> Json:
    return {**contact(c), "contact_inboxes": [contact_inbox(state, ci) for ci in state.links_of(c)]}


def contact_inbox(state: ChatwootState, link: Any) -> Json:
    box = state.inboxes.get(link.inbox_id)
    return {"source_id": link.source_id, "inbox": inbox(box) if box else None}


def attachment(state: ChatwootState, a: Attachment, base_url: str) -> Json:
    return {
        "id": a.id,
        "message_id": a.message_id,
        "file_type": a.file_type,
        "account_id": state.account_id,
        "extension": a.extension,
        "content_type": a.content_type,
        "data_url": f"{base_url}/rails/active_storage/blobs/redirect/{a.id}/{a.file_name}",
        "thumb_url": "",
        "file_size": len(a.data),
        "width": None,
        "height": None,
    }


def sender(state: ChatwootState, m: Message) -> Json | None:
    if m.sender_type == "contact" and m.sender_id in state.contacts:
        c = state.contacts[m.sender_id]
        return {**contact(c), "type": "contact"}
    if m.sender_type == "user":
        agent = state.agent
        return {"id": agent.id, "name": agent.name, "available_name": agent.name,
                "avatar_url": "", "type": "user", "availability_status": "online",
                "thumbnail": ""}  # fmt: skip
    return None


def message(state: ChatwootState, m: Message, base_url: str) -> Json:
    body: Json = {
        "id": m.id,
        "content": m.content,
        "inbox_id": m.inbox_id,
        "conversation_id": m.conversation_id,
        "message_type": m.message_type,
        "content_type": m.content_type,
        "status": m.status,
        "content_attributes": m.content_attributes,
        "created_at": m.created_at,
        "private": m.private,
        "source_id": m.source_id,
        "sender": sender(state, m),
    }
    if m.echo_id:
        body["echo_id"] = m.echo_id
    if m.attachments:
        body["attachments"] = [attachment(state, a, base_url) for a in m.attachments]
    return body


def _last_message_brief(state: ChatwootState, conv: Conversation, base_url: str) -> list[Json]:
    last = state.last_message(conv)
    return [message(state, last, base_url)] if last else []


def _conversation_sender(state: ChatwootState, conv: Conversation) -> Json:
    c = state.contacts.get(conv.contact_id)
    if c is None:
        return {"id": conv.contact_id, "type": "contact"}
    return {**contact(c), "type": "contact"}


def conversation(state: ChatwootState, conv: Conversation, base_url: str) -> Json:
    box = state.inboxes.get(conv.inbox_id)
    last = _last_message_brief(state, conv, base_url)
    return {
        "id": conv.display_id,
        "account_id": state.account_id,
        "uuid": conv.uuid,
        "inbox_id": conv.inbox_id,
        "status": conv.status,
        "labels": conv.labels,
        "muted": False,
        "can_reply": True,
        "priority": None,
        "snoozed_until": conv.snoozed_until,
        "sla_policy_id": None,
        "additional_attributes": conv.additional_attributes,
        "custom_attributes": conv.custom_attributes,
        "unread_count": conv.unread_count,
        "last_non_activity_message": last[0] if last else None,
        "messages": last,
        "meta": {
            "sender": _conversation_sender(state, conv),
            "channel": box.channel_type if box else None,
            "assignee": None,
            "assignee_type": None,
            "team": None,
            "hmac_verified": False,
        },
        "agent_last_seen_at": 0,
        "assignee_last_seen_at": 0,
        "contact_last_seen_at": 0,
        "created_at": conv.created_at,
        "timestamp": conv.last_activity_at,
        "last_activity_at": conv.last_activity_at,
        "first_reply_created_at": None,
        "waiting_since": 0,
        "updated_at": conv.updated_at,
    }


# --- webhooks ------------------------------------------------------------------------


def iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def account(state: ChatwootState) -> Json:
    return {"id": state.account_id, "name": state.account_name}


def contact_webhook_data(state: ChatwootState, c: Contact) -> Json:
    """Contact#webhook_data: no `type` key, an `account`."""
    return {
        "account": account(state),
        "additional_attributes": c.additional_attributes,
        "avatar": "",
        "custom_attributes": c.custom_attributes,
        "email": c.email,
        "id": c.id,
        "identifier": c.identifier,
        "name": c.name,
        "phone_number": c.phone_number,
        "thumbnail": c.thumbnail,
        "blocked": c.blocked,
    }


def conversation_webhook_data(state: ChatwootState, conv: Conversation, base_url: str) -> Json:
    """Conversations::EventDataPresenter#webhook_data: no top-level `account`."""
    box = state.inboxes.get(conv.inbox_id)
    link = state.contact_inboxes.get(conv.contact_inbox_id)
    body = conversation(state, conv, base_url)
    body.pop("account_id", None)
    body.pop("last_non_activity_message", None)
    body["channel"] = box.channel_type if box else None
    body["contact_inbox"] = (
        {
            "id": link.id,
            "contact_id": link.contact_id,
            "inbox_id": link.inbox_id,
            "source_id": link.source_id,
            "hmac_verified": False,
            "created_at": iso(link.created_at),
            "updated_at": iso(link.created_at),
            "pubsub_token": None,
        }
        if link
        else None
    )
    return body


def message_webhook_data(state: ChatwootState, m: Message, base_url: str) -> Json:
    """Message#webhook_data: `message_type` a string, `created_at` ISO-8601."""
    conv = state.conversations[m.conversation_id]
    box = state.inboxes.get(m.inbox_id)
    who: Json | None
    if m.sender_type == "contact" and m.sender_id in state.contacts:
        who = contact_webhook_data(state, state.contacts[m.sender_id])
    elif m.sender_type == "user":
        agent = state.agent
        who = {"id": agent.id, "name": agent.name, "email": agent.email, "type": "user"}
    else:
        who = None
    body: Json = {
        "account": account(state),
        "additional_attributes": {},
        "content_attributes": m.content_attributes,
        "content_type": m.content_type,
        "content": m.content,
        "conversation": conversation_webhook_data(state, conv, base_url),
        "created_at": iso(m.created_at),
        "id": m.id,
        "inbox": {"id": m.inbox_id, "name": box.name if box else None},
        "message_type": _TYPE_NAMES.get(m.message_type, "incoming"),
        "private": m.private,
        "sender": who,
        "source_id": m.source_id,
    }
    if m.attachments:
        body["attachments"] = [attachment(state, a, base_url) for a in m.attachments]
    return body


def is_webhook_sendable(m: Message) -> bool:
    """message_created fires for incoming, outgoing and template; private notes included."""
    return m.message_type != ACTIVITY
