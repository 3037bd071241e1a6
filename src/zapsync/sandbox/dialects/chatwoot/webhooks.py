"""Chatwoot's outgoing webhooks (lib/webhooks/trigger.rb, app/listeners/webhook_listener.rb).

Two kinds of target, as in Chatwoot: the account webhook (only its subscribed events, contact
events included) and an API inbox's `webhook_url` (every conversation and message event of that
inbox, no contact events). Each POST gets a fresh `X-Chatwoot-Delivery` id and, when the
target has a secret, `X-Chatwoot-Timestamp` and `X-Chatwoot-Signature` = `sha256=` + hex
HMAC-SHA256 of `"<timestamp>.<body>"`. Chatwoot tries once, with a 5 s timeout, and never
again (issue #15920): so does the sandbox.

The signature is computed here on its own, not with zapsync's checker, so a test that verifies
it proves the two agree."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from zapsync.sandbox.dialects.chatwoot.state import ChatwootState, Inbox
from zapsync.sandbox.webhook_sender import Delivery, WebhookSender

CONTACT_EVENTS = frozenset({"contact_created", "contact_updated"})
INBOX_EVENTS = frozenset(
    {
        "conversation_created",
        "conversation_updated",
        "conversation_status_changed",
        "message_created",
        "message_updated",
    }
)


def signed_headers(secret: str | None, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    headers = {"Accept": "application/json", "X-Chatwoot-Delivery": str(uuid.uuid4())}
    if secret:
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        headers["X-Chatwoot-Timestamp"] = stamp
        headers["X-Chatwoot-Signature"] = "sha256=" + mac.hexdigest()
    return headers


class Outgoing:
    def __init__(self, state: ChatwootState, sender: WebhookSender) -> None:
        self.state = state
        self.sender = sender

    def emit(self, event: str, data: dict[str, Any], inbox: Inbox | None = None) -> None:
        payload = {**data, "event": event}
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        target = self.state.webhook
        if target and (target.subscriptions is None or event in target.subscriptions):
            self._post(target.url, body, target.secret)
        if (
            inbox is not None
            and inbox.channel_type == "Channel::Api"
            and inbox.webhook_url
            and event in INBOX_EVENTS
        ):
            self._post(inbox.webhook_url, body, inbox.secret)

    def _post(self, url: str, body: bytes, secret: str | None) -> Delivery:
        return self.sender.post_raw(url, body, signed_headers(secret, body))
