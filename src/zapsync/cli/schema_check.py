"""Whether a database is already at the newest migration, known without importing Alembic:
Alembic costs about a second of CPU, and every CLI command that opens the database would pay
it only to learn there is nothing to do. When in doubt the answer is "no", and Alembic runs."""

from __future__ import annotations

import re
from pathlib import Path

import zapsync.store

VERSIONS = Path(zapsync.store.__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=(.*)$", re.M)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def head_revision() -> str | None:
    """The one revision no other migration builds on, read from the migration files; None
    when there is not exactly one (or a file does not read as expected)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        parents.update(_QUOTED.findall(down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def database_at_head(url: str) -> bool:
    from sqlalchemy.exc import DBAPIError

    from zapsync.store.db import make_sync_engine

    head = head_revision()
    if head is None:
        return False
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:  # a new database, or one out of reach: Alembic creates it or says why
        return False
    finally:
        engine.dispose()
    return [row[0] for row in stored] == [head]
