"""Replicas that start together each run the migrations: on PostgreSQL they take turns, and
the later ones find nothing left to do instead of failing on a table the first created."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import psycopg
import pytest
from sqlalchemy import text

from tests.support.databases import PG_ADMIN_URL, backends
from zapsync.store.db import make_sync_engine


@pytest.mark.skipif("postgresql" not in backends(), reason="PostgreSQL's advisory lock")
def test_four_replicas_migrating_one_new_database_at_once_all_succeed() -> None:
    name = f"zapsync_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    env = {**os.environ, "DATABASE_URL": url}
    upgrades: list[subprocess.Popen[str]] = []
    try:
        upgrades += [
            subprocess.Popen(
                [sys.executable, "-m", "zapsync.cli.main", "db", "upgrade"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for process in upgrades:
            _, err = process.communicate(timeout=240)
            assert process.returncode == 0, err
        engine = make_sync_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        engine.dispose()
        assert len(versions) == 1
    finally:
        for process in upgrades:
            process.kill()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
