"""Migration 0018 on a database holding refs, both ways: `external_refs.upstream_updated_at`
is added empty (a ref written before it holds no upstream time: its next record is applied),
takes a UTC time to the microsecond, and a downgrade drops it and keeps every ref; the
uniqueness of a ref's natural key survives on SQLite's rebuilt table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import text

from tests.support.databases import backends
from tests.support.migrations import upgraded_from
from zapsync.store.migrate import alembic_config, upgrade

NOW = "2026-12-07 11:03:11"
SEED = [
    "INSERT INTO organizations (id, name, created_at) VALUES (1, 'Acme', :now)",
    "INSERT INTO external_refs (id, organization_id, provider, entity_type, external_id,"
    " internal_id, fingerprint, pushed_fingerprint, updated_at) VALUES"
    " (1, 1, 'chatwoot', 'conversation', '12', 5, NULL, 'resolved', :now),"
    " (2, 1, 'chatwoot', 'channel_conversation', '13', 6, 'f', 'open', :now)",
]
REFS = "SELECT id, external_id, pushed_fingerprint FROM external_refs ORDER BY id"
KEPT = [(1, "12", "resolved"), (2, "13", "open")]


def _columns(engine: sa.Engine) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns("external_refs")}


@pytest.mark.parametrize("backend", backends())
def test_0018_adds_an_empty_upstream_time_and_round_trips(backend: str, tmp_path: Path) -> None:
    with upgraded_from(backend, tmp_path, "0017", SEED, {"now": NOW}) as (url, engine):
        assert "upstream_updated_at" in _columns(engine)
        with engine.begin() as conn:
            assert [tuple(r) for r in conn.execute(text(REFS))] == KEPT
            held = conn.execute(text("SELECT upstream_updated_at FROM external_refs"))
            assert held.scalars().all() == [None, None]
            at = datetime.fromtimestamp(1776333600.123456, UTC)
            bound = at.replace(tzinfo=None) if backend == "sqlite" else at
            conn.execute(
                text("UPDATE external_refs SET upstream_updated_at = :at WHERE id = 1"),
                {"at": bound},
            )
            # An older time compares as older, on either engine (what a stale record is).
            older = conn.execute(
                text("SELECT id FROM external_refs WHERE upstream_updated_at > :at"),
                {"at": at.replace(microsecond=123455).replace(tzinfo=None)
                 if backend == "sqlite" else at.replace(microsecond=123455)},
            )  # fmt: skip
            assert older.scalars().all() == [1]
        engine.dispose()

        command.downgrade(alembic_config(url), "0017")
        assert "upstream_updated_at" not in _columns(engine)
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(text(REFS))] == KEPT
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO external_refs (organization_id, provider, entity_type,"
                    " external_id, internal_id, updated_at) VALUES"
                    " (1, 'chatwoot', 'conversation', '12', 9, :now)"
                ),
                {"now": NOW},
            )
        engine.dispose()
        upgrade(url)
        assert "upstream_updated_at" in _columns(engine)
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(text(REFS))] == KEPT
