"""Chatwoot's shapes mapped to zapsync's (contracts/chatwoot samples replayed), the content
fingerprint that decides skip or update, and the check of Chatwoot's webhook signatures."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from zapsync.connectors.chatwoot.mapping import (
    ChatwootMessageKind,
    UnmappableRecord,
    map_contact,
    map_conversation,
    map_message,
)
from zapsync.connectors.chatwoot.signatures import SignatureRefused, verify_signature
from zapsync.domain.gateway import MessageType

FIXTURES = Path(__file__).parent.parent / "fixtures" / "chatwoot"
SECRET = "webhook-secret-from-chatwoot"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value


def test_a_listed_contact_maps_to_the_seeds_fields() -> None:
    raw = fixture("contacts.list.page1.response.json")["payload"][0]
    contact = map_contact(raw)
    assert contact.external_id == "42"
    assert contact.name == "Maria Souza"
    assert contact.email == "maria@example.com"
    assert contact.phone_e164 == "+5511987654321"
    assert contact.custom_fields["chatwoot_id"] == "42"
    assert contact.custom_fields["chatwoot_additional_attributes"] == {"city": "São Paulo"}


def test_a_brazilian_phone_without_the_ninth_digit_becomes_the_whatsapp_key() -> None:
    contact = map_contact({"id": 7, "phone_number": "+551187654321"})
    assert contact.phone_e164 == "+5511987654321"
    assert contact.phone_raw == "+551187654321"


def test_the_fingerprint_ignores_key_order_and_what_zapsync_does_not_keep() -> None:
    raw = fixture("contacts.list.page1.response.json")["payload"][0]
    shuffled = reversed_keys(raw)
    assert list(shuffled) != list(raw)
    assert map_contact(shuffled).fingerprint == map_contact(raw).fingerprint
    later = {**raw, "last_activity_at": raw["last_activity_at"] + 600, "contact_inboxes": []}
    assert map_contact(later).fingerprint == map_contact(raw).fingerprint


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Maria Souza Lima"),
        ("email", "maria.lima@example.com"),
        ("phone_number", "+5511911112222"),
        ("identifier", "crm-42"),
        ("additional_attributes", {"city": "Campinas"}),
    ],
)
def test_the_fingerprint_changes_when_a_mapped_field_changes(field: str, value: Any) -> None:
    raw = fixture("contacts.list.page1.response.json")["payload"][0]
    changed = copy.deepcopy(raw)
    changed[field] = value
    assert map_contact(changed).fingerprint != map_contact(raw).fingerprint


def test_a_contact_updated_webhook_maps_like_the_rest_api() -> None:
    hook = fixture("webhook.contact_updated.json")
    contact = map_contact(hook)
    assert contact.name == "Maria Souza Lima"
    assert contact.custom_fields["chatwoot_additional_attributes"] == {"city": "Campinas"}


def test_a_conversation_keeps_status_inbox_labels_and_display_id() -> None:
    raw = fixture("conversations.list.response.json")["data"]["payload"][0]
    conv = map_conversation(raw)
    assert (conv.display_id, conv.status, conv.inbox_id) == (12, "open", 7)
    assert conv.labels == ("vip",)
    assert conv.contact_external_id == "42"
    assert conv.channel == "Channel::Api"
    snoozed = map_conversation({**raw, "status": "snoozed"})
    assert (snoozed.status, snoozed.chatwoot_status) == ("pending", "snoozed")
    assert snoozed.fingerprint != conv.fingerprint
    later = map_conversation({**raw, "last_activity_at": raw["last_activity_at"] + 60})
    assert later.fingerprint == conv.fingerprint


def test_a_rest_message_has_an_int_type_and_unix_time() -> None:
    raw = fixture("messages.list.response.json")["payload"][0]
    msg = map_message(raw)
    assert msg.kind is ChatwootMessageKind.INCOMING
    assert (msg.direction, msg.sender) == ("in", "client")
    assert msg.created_at == datetime.fromtimestamp(1763647391, UTC)
    assert msg.conversation_display_id == 12
    assert msg.source_id == "WAID:3EB0C431D8F2A1B7"
    assert not msg.reaches_whatsapp


def test_a_webhook_message_has_a_string_type_and_iso_time() -> None:
    msg = map_message(fixture("webhook.message_created.json"))
    assert msg.kind is ChatwootMessageKind.OUTGOING
    assert (msg.direction, msg.sender) == ("out", "agent")
    assert msg.created_at == datetime(2026, 11, 20, 14, 4, 2, tzinfo=UTC)
    assert msg.conversation_display_id == 12
    assert msg.reaches_whatsapp


def test_one_message_read_by_rest_and_by_webhook_has_one_fingerprint() -> None:
    rest = fixture("messages.list.response.json")["payload"][0]
    hook = {
        **rest,
        "message_type": "incoming",
        "created_at": datetime.fromtimestamp(rest["created_at"], UTC).isoformat(),
        "sender": {"id": 42, "name": "Maria Souza"},  # a contact's webhook_data has no type
        "conversation": {"id": 12},
    }
    del hook["conversation_id"]
    assert map_message(hook).fingerprint == map_message(rest).fingerprint


def test_a_private_note_is_flagged_and_never_reaches_whatsapp() -> None:
    note = {**fixture("webhook.message_created.json"), "private": True}
    msg = map_message(note)
    assert msg.private
    assert not msg.reaches_whatsapp


def test_attachments_give_the_message_its_type() -> None:
    raw = {
        **fixture("messages.list.response.json")["payload"][0],
        "attachments": [{"id": 5, "file_type": "file", "data_url": "https://cw/x.pdf",
                         "content_type": "application/pdf", "file_size": 10}],
    }  # fmt: skip
    msg = map_message(raw)
    assert msg.type is MessageType.DOCUMENT
    assert msg.attachments[0].url == "https://cw/x.pdf"


def test_an_activity_line_is_a_system_message_without_direction() -> None:
    msg = map_message({"id": 9, "message_type": 2, "content": "Conversation was resolved"})
    assert (msg.direction, msg.sender) == (None, "system")
    with pytest.raises(UnmappableRecord):
        map_message({"id": 9, "message_type": "bogus"})
    with pytest.raises(UnmappableRecord):
        map_contact({"name": "no id"})


# --- signatures ----------------------------------------------------------------------


def chatwoot_signs(body: bytes, timestamp: int, secret: str = SECRET) -> str:
    """As lib/webhooks/trigger.rb does, written out independently of zapsync's checker."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


BODY = json.dumps(fixture("webhook.message_created.json"), separators=(",", ":")).encode()
NOW = 1_795_000_000


def test_a_good_signature_is_accepted() -> None:
    signature = chatwoot_signs(BODY, NOW)
    assert verify_signature(SECRET, BODY, signature, str(NOW), now=NOW + 10) == NOW


@pytest.mark.parametrize(
    ("body", "signature", "timestamp", "now", "why"),
    [
        (BODY + b" ", chatwoot_signs(BODY, NOW), str(NOW), NOW, "does not match"),
        (BODY, chatwoot_signs(BODY, NOW, "another-secret"), str(NOW), NOW, "does not match"),
        (BODY, chatwoot_signs(BODY, NOW - 1), str(NOW), NOW, "does not match"),
        (BODY, chatwoot_signs(BODY, NOW), str(NOW), NOW + 301, "more than 300 s"),
        (BODY, chatwoot_signs(BODY, NOW), str(NOW), NOW - 301, "more than 300 s"),
        (BODY, None, str(NOW), NOW, "missing X-Chatwoot-Signature"),
        (BODY, chatwoot_signs(BODY, NOW), None, NOW, "missing X-Chatwoot-Timestamp"),
        (BODY, chatwoot_signs(BODY, NOW)[7:], str(NOW), NOW, "not sha256="),
        (BODY, chatwoot_signs(BODY, NOW), "yesterday", NOW, "not unix seconds"),
        (BODY, "sha256=ção", str(NOW), NOW, "does not match"),
    ],
)
def test_a_bad_or_stale_signature_is_refused(
    body: bytes, signature: str | None, timestamp: str | None, now: int, why: str
) -> None:
    with pytest.raises(SignatureRefused) as refused:
        verify_signature(SECRET, body, signature, timestamp, now=now)
    assert why in refused.value.reason
