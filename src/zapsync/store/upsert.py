"""One bulk upsert for SQLite and PostgreSQL: `INSERT … ON CONFLICT … DO UPDATE / DO NOTHING`.

Every importer writes through `upsert_many` so a page of rows costs one statement (or a few,
when the page is larger than the engine's bound-parameter limit), never one round trip per row.
On PostgreSQL the rows travel as one array per column (`INSERT … SELECT unnest(…)`); on SQLite
as multi-row VALUES.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, ColumnElement, Row, Table, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.schema import Column

from zapsync.store.models import Base
from zapsync.store.types import utcnow

# SQLite before 3.32 allowed 999 bound parameters per statement, newer builds 32766;
# PostgreSQL's wire protocol allows 65535. Python-side defaults count too, so the chunk size
# is computed from the table's column count, not from the keys given.
_SQLITE_LIMIT = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_POSTGRES_LIMIT = 65535
_UNNEST_CHUNK = 5000

Excluded = ReadOnlyColumnCollection[str, Column[Any]]
UpdateWhere = Callable[[Table, Excluded], ColumnElement[bool]]


def table_of(target: type[Base] | Table) -> Table:
    """The Core table of a model, typed as one (for Core statements that skip the ORM)."""
    if isinstance(target, Table):
        return target
    table = target.__table__
    assert isinstance(table, Table)
    return table


def _dedupe(
    rows: Sequence[Mapping[str, Any]], conflict: Sequence[str], last_wins: bool
) -> list[Mapping[str, Any]]:
    """PostgreSQL refuses a DO UPDATE that touches one row twice in a statement."""
    if not conflict:
        return list(rows)
    seen: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        key = tuple(row.get(name) for name in conflict)
        if last_wins or key not in seen:
            seen[key] = row
    return list(seen.values())


async def upsert_many(
    db: AsyncSession,
    target: type[Base] | Table,
    rows: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
    update: Sequence[str] | None = None,
    returning: Sequence[str] | None = None,
    update_where: UpdateWhere | None = None,
) -> list[Row[Any]]:
    """Insert `rows`; on a clash on the `conflict` columns overwrite `update` columns with the
    incoming values (DO UPDATE, optionally only where `update_where(table, excluded)` holds),
    or keep the stored row when `update` is empty (DO NOTHING).

    An empty `conflict` means "any unique constraint" and is only valid with DO NOTHING.
    Every row must have the same keys. Rows sharing a conflict key are collapsed first (the
    last one wins on DO UPDATE). Returns the `returning` columns of the rows inserted or
    updated (not of rows left alone), in no particular order. A table's `updated_at` is set
    on DO UPDATE, as the ORM's onupdate would. Python-side column defaults fill the columns
    the rows leave out (on PostgreSQL evaluated once per statement, not per row).
    """
    if not rows:
        return []
    if update and not conflict:
        raise ValueError("DO UPDATE needs the conflict columns")
    keys = set(rows[0])
    if any(set(row) != keys for row in rows):
        raise ValueError("every row given to upsert_many must have the same keys")

    table = table_of(target)
    dialect = db.get_bind().dialect.name
    unique_rows = _dedupe(rows, conflict, last_wins=bool(update))
    columns = tuple(rows[0])
    stmt, use_unnest, chunk, stamps = _statement(
        table,
        dialect,
        columns,
        tuple(conflict),
        tuple(update or ()),
        update_where,
        tuple(returning or ()),
    )
    # The `updated_at` of a DO UPDATE is a parameter, so the statement can be reused.
    extra = {"u_now": utcnow()} if stamps else {}

    results: list[Row[Any]] = []
    for start in range(0, len(unique_rows), chunk):
        batch = unique_rows[start : start + chunk]
        params: Any
        if use_unnest:
            params = {f"u_{name}": [row[name] for row in batch] for name in columns}
            params.update(extra)
        else:
            params = [{**row, **extra} for row in batch]
            if len(params) == 1:
                params = params[0]
        result = await db.execute(stmt, params)
        if returning:
            results.extend(result.all())
    return results


@lru_cache(maxsize=128)
def _statement(
    table: Table,
    dialect: str,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    update: tuple[str, ...],
    update_where: UpdateWhere | None,
    returning: tuple[str, ...],
) -> tuple[Any, bool, int, bool]:
    """The statement for one shape of upsert, built once: building is a good part of the cost
    of a small page (callers pass module-level `update_where` functions so it is found here)."""
    use_unnest = dialect == "postgresql" and not any(
        isinstance(table.c[c].type, JSON) for c in columns
    )
    if use_unnest:
        # One array per column and `INSERT … SELECT unnest(…)`: the SQL text is the same for
        # any number of rows, so PostgreSQL and psycopg prepare it once. Multi-row VALUES
        # text changes with the row count and is re-parsed by the driver every time.
        source = select(
            *(
                func.unnest(bindparam(f"u_{name}", type_=postgresql.ARRAY(table.c[name].type)))
                for name in columns
            )
        )
        stmt = postgresql.insert(table).from_select(list(columns), source)
        chunk = _UNNEST_CHUNK
    elif dialect in ("sqlite", "postgresql"):
        insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt = insert(table)
        # Executed as an executemany: the statement compiles once (and is cached), and
        # SQLAlchemy's "insertmanyvalues" sends the rows as multi-row VALUES batches. The
        # chunks keep each batch under the engine's bound-parameter limit.
        limit = _SQLITE_LIMIT if dialect == "sqlite" else _POSTGRES_LIMIT
        chunk = max(1, limit // (len(table.columns) + 1))
    else:  # pragma: no cover - zapsync supports only these two
        raise NotImplementedError(f"upsert_many does not support {dialect}")
    stmt = _on_conflict(stmt, table, conflict, update, update_where)
    if returning:
        stmt = stmt.returning(*(table.c[name] for name in returning))
    stamps = bool(update) and "updated_at" in table.c and "updated_at" not in update
    return stmt, use_unnest, chunk, stamps


def _on_conflict(
    stmt: Any,
    table: Table,
    conflict: Sequence[str],
    update: Sequence[str],
    update_where: UpdateWhere | None,
) -> Any:
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=list(conflict) or None)
    set_: dict[str, Any] = {name: stmt.excluded[name] for name in update}
    if "updated_at" in table.c and "updated_at" not in set_:
        set_["updated_at"] = bindparam("u_now", type_=table.c.updated_at.type)
    where = update_where(table, stmt.excluded) if update_where is not None else None
    return stmt.on_conflict_do_update(index_elements=list(conflict), set_=set_, where=where)
