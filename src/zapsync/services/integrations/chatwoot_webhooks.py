"""Chatwoot's webhooks for an integration: checked, then applied once.

Proof first, nothing read before it: with a webhook secret the delivery must carry Chatwoot's
signature (`sha256=` HMAC of `"<timestamp>.<body>"`, the timestamp within 5 minutes); without
one, the token of the integration's webhook URL. Then each event:

- `message_created` of an agent (outgoing, not a private note) in a bridged conversation goes to
  WhatsApp through the outbox, attachments included; the message's ref is written with it, so
  the same message delivered twice (Chatwoot issue #11901) is sent once, and the bridge never
  mirrors it back. What zapsync itself wrote into Chatwoot (`source_id` `zapsync:…`) is an echo
  and is ignored.
- `conversation_status_changed` / `conversation_updated`: the bridged conversation takes the
  status (resolved in Chatwoot, resolved in zapsync) and the labels, in one transaction
  (`take_bridged_state`, which the conversations pull uses too). The status zapsync itself
  told Chatwoot (or last learnt it holds), coming back in an event that says the status
  changed, is an echo: ignored ("echo"); nothing new is "unchanged".
- `contact_created` / `contact_updated`: the contact as a pull would write it.
- Of a conversation of Chatwoot's other channels (e-mail, web widget: not the bridged inbox),
  `message_created`, `message_updated`, `conversation_created`, `conversation_updated` and
  `conversation_status_changed` store it as the pull does (`channel_conversations.apply`): the
  customer's and the agents' messages alike, private notes left out; nothing goes to WhatsApp.
  `message_updated` changes the stored message (its new text, or its deletion: Chatwoot's
  `content_attributes.deleted`), or stores it when zapsync never did; the same update twice
  changes it once. A status is taken unless it is the one zapsync told Chatwoot (an echo,
  answered as ignored, "echo", when nothing else the conversation shows changed); a
  conversation event that changes nothing the conversation shows is "unchanged" (its
  fingerprint is cleared all the same). `message_updated` of a bridged conversation is
  ignored.

Out of order: Chatwoot delivers webhooks in no order and sometimes twice (issue #11901). A
conversation's record carries its `updated_at` (a float of unix time), and the conversation's
ref holds the one last applied (`external_refs.take_upstream_time`). A conversation event
whose record is older than that one changes nothing and is answered as ignored ("stale"); an
equal one is the same record again and has one effect (the echo and fingerprint rules above
make it so); a newer one, or one without a time, is applied and its time kept. A message
event of another channel whose conversation record is stale still stores its message; the
conversation keeps its state.

Events of other kinds are answered 202 and ignored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from zapsync.connectors.chatwoot.mapping import (
    CONVERSATION_STATUS,
    PROVIDER,
    UnmappableRecord,
    int_or_none,
    map_contact,
    map_conversation,
    map_message,
    parse_time,
)
from zapsync.connectors.chatwoot.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRefused,
    verify_signature,
)
from zapsync.runtime.context import AppContext
from zapsync.security.tokens import hash_token, secrets_equal
from zapsync.services.errors import Refusal, ServiceError, WebhookRefused
from zapsync.services.integrations import channel_conversations as channels
from zapsync.services.integrations.agent_replies import (
    ECHO,
    STALE,
    UNCHANGED,
    conversation_of,
    is_echo,
    send_reply,
    take_bridged_state,
)
from zapsync.services.integrations.bridge_mirror import (
    MESSAGE,
    written_by_zapsync,
)
from zapsync.services.integrations.connections import config_of, credentials_of, webhook_token_of
from zapsync.services.integrations.contacts_pull import write_contacts
from zapsync.services.integrations.sync_runs import Counts
from zapsync.store import external_refs
from zapsync.store import integrations as store
from zapsync.store.models import Integration

log = structlog.get_logger(__name__)

EVENTS = frozenset(
    {
        "message_created",
        "message_updated",
        "conversation_created",
        "conversation_updated",
        "conversation_status_changed",
        "contact_created",
        "contact_updated",
    }
)
NOT_YOURS = "no integration answers to this webhook URL and token"


@dataclass
class WebhookOutcome:
    event: str
    applied: int = 0
    ignored: list[str] = field(default_factory=list)
    known: bool = True  # False: an event zapsync does not take (answered 202)


async def receive(
    ctx: AppContext,
    *,
    integration_id: int | None,
    token: str | None,
    headers: Mapping[str, str],
    body: bytes,
) -> WebhookOutcome:
    """Check and apply one delivery; WebhookRefused (401, 400) before anything is written."""
    integration = await _integration(ctx, integration_id, token)
    _verify(ctx, integration, token, headers, body)
    payload = _payload(body)
    event = str(payload.get("event") or "")
    outcome = WebhookOutcome(event)
    if event not in EVENTS:
        outcome.known = False
        outcome.ignored.append(event or "(no event)")
        log.info("chatwoot webhook ignored", chatwoot_event=event, integration_id=integration.id)
        return outcome
    try:
        if await _of_another_channel(ctx, integration, event, payload, outcome):
            pass
        elif event == "message_created":
            await _message_created(ctx, integration, payload, outcome)
        elif event in ("conversation_status_changed", "conversation_updated"):
            await _conversation_status(ctx, integration, payload, outcome)
        elif event in ("contact_created", "contact_updated"):
            await _contact(ctx, integration, payload, outcome)
        else:
            outcome.ignored.append(event)
    except UnmappableRecord as exc:
        raise WebhookRefused(Refusal.MALFORMED, f"{event}: {exc}") from None
    log.info("chatwoot webhook", chatwoot_event=event, integration_id=integration.id,
             applied=outcome.applied, ignored=outcome.ignored or None)  # fmt: skip
    return outcome


async def _integration(
    ctx: AppContext, integration_id: int | None, token: str | None
) -> Integration:
    async with ctx.db.session() as db:
        if integration_id is not None:
            found = await db.get(Integration, integration_id)
        elif token:
            found = await store.integration_by_token_hash(db, hash_token(token))
        else:
            found = None
    if found is None or found.provider != PROVIDER:
        raise WebhookRefused(Refusal.UNKNOWN_INTEGRATION, NOT_YOURS)
    return found


def _verify(
    ctx: AppContext,
    integration: Integration,
    token: str | None,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    secret = credentials_of(ctx, integration).webhook_secret
    if secret:
        try:
            verify_signature(
                secret,
                body,
                headers.get(SIGNATURE_HEADER),
                headers.get(TIMESTAMP_HEADER),
                tolerance=ctx.settings.webhook_replay_window,
            )
        except SignatureRefused as exc:
            expired = "from now" in exc.reason
            refusal = Refusal.EXPIRED_SIGNATURE if expired else Refusal.BAD_SIGNATURE
            raise WebhookRefused(refusal, exc.reason) from None
        return
    expected = webhook_token_of(ctx, integration)
    if not token or not expected or not secrets_equal(token, expected):
        raise WebhookRefused(Refusal.WRONG_SECRET, NOT_YOURS)


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused(Refusal.MALFORMED, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRefused(Refusal.MALFORMED, "the body is not a JSON object")
    return payload


_MESSAGE_EVENTS = ("message_created", "message_updated")
_CONVERSATION_EVENTS = (
    "conversation_created",
    "conversation_updated",
    "conversation_status_changed",
)


async def _of_another_channel(
    ctx: AppContext,
    integration: Integration,
    event: str,
    payload: dict[str, Any],
    outcome: WebhookOutcome,
) -> bool:
    """Apply an event of a conversation that is not the bridged inbox's; False for the
    bridge's own events (and the others), which take their usual way."""
    if event in _MESSAGE_EVENTS:
        raw = payload.get("conversation")
        if not isinstance(raw, dict) or "id" not in raw:
            return False
        if raw.get("inbox_id") is None and isinstance(payload.get("inbox"), dict):
            raw = {**raw, "inbox_id": payload["inbox"].get("id")}
    elif event in _CONVERSATION_EVENTS:
        raw = payload
    else:
        return False
    if raw.get("inbox_id") is None:
        return False  # no inbox named: not known to be another channel's
    conversation = map_conversation(raw)
    if channels.is_bridged(config_of(integration).inbox_id, conversation):
        return False
    messages = []
    sender = channels.sender_of(raw)
    if event in _MESSAGE_EVENTS:
        message = map_message(payload)
        if message.private or message.direction is None:
            outcome.ignored.append("private note" if message.private else message.kind.value)
            return True
        messages.append(message)
        author = payload.get("sender")
        # The customer's own message names them in full (a contact's sender has no `type`).
        if message.direction == "in" and isinstance(author, dict):
            sender = author
    # Only an update takes a stored message's new text: a message_created delivered again
    # (late, after an edit) must not take it back.
    applied = await channels.apply(
        ctx, integration, conversation, sender, messages, fingerprint=None,
        updates=event == "message_updated",
    )  # fmt: skip
    if applied.created or applied.messages or applied.changed:
        outcome.applied += 1
    elif event in _MESSAGE_EVENTS:
        outcome.ignored.append("duplicate" if event == "message_created" else UNCHANGED)
    elif applied.stale:
        outcome.ignored.append(STALE)
    elif applied.updated:
        outcome.applied += 1
    elif is_echo(applied.status_told, _says_status_changed(payload), applied.freshness):
        outcome.ignored.append(ECHO)
    else:
        # Nothing the conversation shows changed (its fingerprint is cleared all the same, so
        # the next pull looks again).
        outcome.ignored.append(UNCHANGED)
    return True


async def _message_created(
    ctx: AppContext, integration: Integration, payload: dict[str, Any], outcome: WebhookOutcome
) -> None:
    message = map_message(payload)
    org = integration.organization_id
    if written_by_zapsync(message.source_id):
        outcome.ignored.append("echo")
        return
    if not message.reaches_whatsapp:
        outcome.ignored.append("private note" if message.private else message.kind.value)
        return
    async with ctx.db.session() as db:
        conversation_id = await conversation_of(db, org, message.conversation_display_id)
        known = await external_refs.refs_by_external(
            db, org, PROVIDER, MESSAGE, [message.external_id]
        )
    if conversation_id is None:
        outcome.ignored.append("conversation not bridged")
        return
    if message.external_id in known:
        outcome.ignored.append("duplicate")
        return
    try:
        queued = await send_reply(ctx, integration, conversation_id, message)
    except ServiceError as exc:
        raise WebhookRefused(Refusal.MALFORMED, exc.detail) from None
    if queued:
        outcome.applied += queued
    else:
        outcome.ignored.append("duplicate")


async def _conversation_status(
    ctx: AppContext, integration: Integration, payload: dict[str, Any], outcome: WebhookOutcome
) -> None:
    status = CONVERSATION_STATUS.get(str(payload.get("status") or ""))
    display_id = int_or_none(payload.get("id"))
    if status is None or display_id is None:
        outcome.ignored.append("no status")
        return
    labels = payload.get("labels")
    why_not = await take_bridged_state(
        ctx, integration, display_id, status=status,
        labels=labels if isinstance(labels, list) else None,
        updated_at=parse_time(payload.get("updated_at")),
        status_changed=_says_status_changed(payload),
    )  # fmt: skip
    if why_not is None:
        outcome.applied += 1
    else:
        outcome.ignored.append(why_not)


def _says_status_changed(payload: Mapping[str, Any]) -> bool:
    """A conversation event that names a change of status: `conversation_status_changed`, or
    one whose `changed_attributes` list the status."""
    if payload.get("event") == "conversation_status_changed":
        return True
    changed = payload.get("changed_attributes")
    if not isinstance(changed, list):
        return False
    return any(isinstance(item, Mapping) and "status" in item for item in changed)


async def _contact(
    ctx: AppContext, integration: Integration, payload: dict[str, Any], outcome: WebhookOutcome
) -> None:
    contact = map_contact(payload)
    counts = Counts()
    async with ctx.db.session() as db:
        try:
            await write_contacts(db, integration.organization_id, [contact], counts)
            await db.commit()
        except IntegrityError:
            await db.rollback()
            outcome.ignored.append("clashes with a contact stored meanwhile")
            return
    if counts.skipped:
        outcome.ignored.append("unchanged")
    else:
        outcome.applied += 1
