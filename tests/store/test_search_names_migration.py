"""Migration 0004 on a database holding data: names get their search form, the rebuilt
SQLite tables keep every row and every row that references them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tests.support.databases import backends
from tests.support.migrations import upgraded_from

NOW = "2026-11-20 11:03:11"


SEED = [
    "INSERT INTO organizations (id, name, created_at) VALUES (1, 'Acme', :now)",
    "INSERT INTO sessions (id, organization_id, name, provider, config_encrypted, webhook_secret,"
    " status, check_failures, heal_attempts, created_at)"
    " VALUES (1, 1, 'Loja', 'sandbox', 'x', 's', 'connected', 0, 0, :now)",
    "INSERT INTO contacts (id, organization_id, phone_e164, name, custom_fields, created_at,"
    " updated_at) VALUES (1, 1, '+5531987651234', 'João Conceição', '{}', :now, :now)",
    "INSERT INTO conversations (id, organization_id, session_id, contact_id, chat_key, chat_jid,"
    " is_group, name, status, unread_count, created_at, updated_at)"
    " VALUES (1, 1, 1, 1, '+5531987651234', '5531987651234@s.whatsapp.net', false,"
    " 'JOÃO', 'open', 0, :now, :now)",
    "INSERT INTO messages (id, organization_id, session_id, conversation_id, provider_message_id,"
    " direction, sender, type, body, is_voice_note, ack, sent_at, created_at)"
    " VALUES (7, 1, 1, 1, 'm7', 'out', 'agent', 'text', 'oi', false, 'pending', :now, :now)",
    "INSERT INTO outbox (id, organization_id, session_id, message_id, kind, payload, status,"
    " attempts, next_attempt_at, created_at, updated_at)"
    " VALUES (1, 1, 1, 7, 'gateway.send', '{}', 'pending', 0, :now, :now, :now)",
]


@pytest.mark.parametrize("backend", backends())
def test_upgrade_backfills_search_names_and_keeps_every_row(backend: str, tmp_path: Path) -> None:
    with (
        upgraded_from(backend, tmp_path, "0001", SEED, {"now": NOW}) as (_, engine),
        engine.connect() as conn,
    ):
        names = conn.execute(text("SELECT search_name FROM contacts")).scalars().all()
        titles = conn.execute(text("SELECT search_name FROM conversations")).scalars()
        outbox = conn.execute(text("SELECT message_id FROM outbox")).scalars().all()
        message = conn.execute(text("SELECT conversation_id FROM messages")).scalars()
        assert names == ["joao conceicao"]
        assert list(titles) == ["joao"]
        assert outbox == [7], "the outbox row survives the messages table's rebuild"
        assert list(message) == [1]
