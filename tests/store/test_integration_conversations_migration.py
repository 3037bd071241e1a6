"""Migration 0016 on a database holding data, both ways: WhatsApp's rows (and what references
them, and the SQLite search triggers) survive the rebuilt tables; a conversation belongs to a
session or to an integration, never both nor neither; a downgrade drops the helpdesk
channels' rows only."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import text

from tests.support.databases import backends
from tests.support.migrations import execute_all, upgraded_from
from zapsync.store.migrate import alembic_config, upgrade

NOW = "2026-12-07 11:03:11"
SEED = [
    "INSERT INTO organizations (id, name, created_at) VALUES (1, 'Acme', :now)",
    "INSERT INTO sessions (id, organization_id, name, provider, config_encrypted,"
    " webhook_secret_encrypted, status, check_failures, heal_attempts, created_at)"
    " VALUES (1, 1, 'Loja', 'sandbox', 'x', 's', 'connected', 0, 0, :now)",
    "INSERT INTO integrations (id, organization_id, provider, credentials_encrypted, config,"
    " status, created_at) VALUES (1, 1, 'chatwoot', 'x', '{}', 'connected', :now)",
    "INSERT INTO contacts (id, organization_id, phone_e164, name, search_name, custom_fields,"
    " created_at, updated_at) VALUES (1, 1, '+5531987651234', 'Ana', 'ana', '{}', :now, :now)",
    "INSERT INTO conversations (id, organization_id, session_id, contact_id, chat_key, chat_jid,"
    " is_group, name, search_name, status, unread_count, last_message_at, created_at,"
    " updated_at) VALUES (1, 1, 1, 1, '+5531987651234', '5531987651234@s.whatsapp.net', false,"
    " 'Loja Ana', 'loja ana', 'open', 0, :now, :now, :now)",
    "INSERT INTO messages (id, organization_id, session_id, conversation_id, provider_message_id,"
    " direction, sender, type, body, is_voice_note, ack, sent_at, created_at)"
    " VALUES (7, 1, 1, 1, 'm7', 'out', 'agent', 'text', 'oi', false, 'pending', :now, :now)",
    "INSERT INTO outbox (id, organization_id, session_id, message_id, kind, payload, status,"
    " attempts, next_attempt_at, created_at, updated_at)"
    " VALUES (1, 1, 1, 7, 'gateway.send', '{}', 'pending', 0, :now, :now, :now)",
]
CHANNEL = [
    "INSERT INTO conversations (id, organization_id, session_id, integration_id, channel,"
    " contact_id, chat_key, chat_jid, is_group, name, search_name, status, unread_count,"
    " last_message_at, created_at, updated_at) VALUES (2, 1, NULL, 1, 'email', 1, 'chatwoot:5',"
    " 'chatwoot:5', false, 'Ana por e-mail', 'ana por e-mail', 'open', 0, :now, :now, :now)",
    "INSERT INTO messages (id, organization_id, session_id, conversation_id, provider_message_id,"
    " direction, sender, type, body, is_voice_note, ack, sent_at, created_at)"
    " VALUES (8, 1, NULL, 2, 'chatwoot:90', 'in', 'client', 'text', 'mail', false, 'delivered',"
    " :now, :now)",
]


def _column(conn: sa.Connection, sql: str) -> list[object]:
    return list(conn.execute(text(sql)).scalars().all())


@pytest.mark.parametrize("backend", backends())
def test_0016_keeps_whatsapps_rows_and_round_trips(backend: str, tmp_path: Path) -> None:
    with upgraded_from(backend, tmp_path, "0015", SEED, {"now": NOW}) as (url, engine):
        execute_all(engine, CHANNEL, {"now": NOW})
        with engine.connect() as conn:
            assert _column(conn, "SELECT id FROM conversations ORDER BY id") == [1, 2]
            assert _column(conn, "SELECT message_id FROM outbox") == [7]
            if backend == "sqlite":
                # the rebuilt table's search triggers were made again (and filled)
                found = "SELECT rowid FROM conversation_search WHERE names MATCH 'ana'"
                assert sorted(int(str(r)) for r in _column(conn, found)) == [1, 2]
        # Neither owner, or both: refused.
        for session_id, integration_id in (("NULL", "NULL"), ("1", "1")):
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO conversations (organization_id, session_id,"
                        " integration_id, chat_key, chat_jid, is_group, status,"
                        " unread_count, last_message_at, created_at, updated_at) VALUES"
                        f" (1, {session_id}, {integration_id}, 'k', 'k', false, 'open', 0,"
                        " :now, :now, :now)"
                    ),
                    {"now": NOW},
                )
        # One zapsync conversation per helpdesk conversation, one message per its id.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(text(CHANNEL[0].replace("(id, ", "(").replace("(2, ", "(")),
                         {"now": NOW})  # fmt: skip
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(text(CHANNEL[1].replace("VALUES (8,", "VALUES (9,")), {"now": NOW})
        engine.dispose()

        command.downgrade(alembic_config(url), "0015")
        with engine.connect() as conn:
            assert _column(conn, "SELECT id FROM conversations") == [1]
            assert _column(conn, "SELECT id FROM messages") == [7]
            assert _column(conn, "SELECT message_id FROM outbox") == [7]
        engine.dispose()
        upgrade(url)
        with engine.connect() as conn:
            assert _column(conn, "SELECT id FROM conversations") == [1]
