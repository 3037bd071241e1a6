"""Databases for the migration tests: an empty one per engine, and one seeded with rows at an
older revision, then upgraded to the head (what a team's upgrade does to its data)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, text

from tests.support.databases import PG_ADMIN_URL
from zapsync.store.db import make_sync_engine
from zapsync.store.migrate import upgrade


@contextmanager
def empty_database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / 'migrated.db'}"
        return
    name = f"zapsync_mig_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def execute_all(engine: Engine, statements: Sequence[str], params: dict[str, Any]) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


@contextmanager
def upgraded_from(
    backend: str, tmp: Path, revision: str, seed: Sequence[str], params: dict[str, Any]
) -> Iterator[tuple[str, Engine]]:
    """(url, engine) of a database migrated to `revision`, given `seed`, then upgraded."""
    with empty_database(backend, tmp) as url:
        upgrade(url, revision)
        engine = make_sync_engine(url)
        try:
            execute_all(engine, seed, params)
            upgrade(url)
            yield url, engine
        finally:
            engine.dispose()
