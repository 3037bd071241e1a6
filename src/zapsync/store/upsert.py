"""One bulk upsert for SQLite and PostgreSQL: `INSERT … ON CONFLICT … DO UPDATE / DO NOTHING`.

Every importer writes through `upsert_many` so a page of rows costs one statement (or a few,
when the page is larger than the engine's bound-parameter limit), never one round trip per row.
On PostgreSQL the rows travel as one array per column (`INSERT … SELECT unnest(…)`); on SQLite
as multi-row VALUES. `insert_missing` is the cheaper write for bulk inserts that need only a
count: no RETURNING, and on SQLite the driver's own executemany.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, ColumnElement, CursorResult, Row, Table, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.schema import Column

from zapsync.store.models import Base
from zapsync.store.text import search_key
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
    rows, update = _with_search_names(table, rows, update)
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


def _with_search_names(
    table: Table, rows: Sequence[Mapping[str, Any]], update: Sequence[str] | None
) -> tuple[Sequence[Mapping[str, Any]], Sequence[str] | None]:
    """A table that searches by `search_name` gets it from `name` on every bulk write, so no
    writer can store a name that search does not find."""
    if "search_name" not in table.c or "name" not in rows[0] or "search_name" in rows[0]:
        return rows, update
    rows = [{**row, "search_name": search_key(row["name"])} for row in rows]
    if update and "name" in update:
        update = [*update, "search_name"]
    return rows, update


async def insert_missing(
    db: AsyncSession,
    target: type[Base] | Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict: Sequence[str],
) -> int:
    """Insert the `rows` (values in `columns` order) that clash with no stored row, nor an
    earlier one of `rows`, on the `conflict` columns (DO NOTHING for the others); return how
    many went in.

    The cheapest bulk write on each engine, for callers that need a count, not the rows (no
    RETURNING, which makes SQLAlchemy rewrite the rows into multi-row VALUES, several times
    dearer per row). SQLite gets the rows through the driver's own executemany. PostgreSQL
    first tries COPY (for 50k message rows, a third less time than an executemany or `unnest`
    arrays), as an import's rows are nearly always all new; a clash undoes that attempt and
    the rows go in as in `upsert_many`, the clashes skipped. The counts are the drivers': an
    executemany's rowcount sums its rows' (`preserve_rowcount` keeps it readable after the
    async drivers close the cursor), COPY's counts the rows copied.
    """
    if not rows:
        return 0
    table = table_of(target)
    columns = tuple(columns)
    dialect = db.get_bind().dialect
    stmt, use_unnest, chunk, _ = _statement(
        table, dialect.name, columns, tuple(conflict), (), None, ()
    )
    if dialect.name == "postgresql":
        copy = _copy_form(table, dialect, columns)
        if copy is not None:
            try:
                async with db.begin_nested():
                    return await _copy(db, copy, rows)
            except Exception as exc:  # psycopg's own error: COPY bypasses SQLAlchemy
                if _sqlstate(exc) != _UNIQUE_VIOLATION:
                    raise
    else:
        direct = _direct_form(stmt, dialect, columns)
        if direct is not None:
            sql, driver_rows = direct
            conn = await db.connection()
            written = await conn.exec_driver_sql(sql, driver_rows.parameters(rows), _KEEP_COUNT)
            return written.rowcount
    return await _insert_chunks(db, stmt, columns, rows, chunk, arrays=use_unnest)


_KEEP_COUNT = {"preserve_rowcount": True}
_UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE


def _sqlstate(exc: BaseException) -> str | None:
    """PostgreSQL's error code, raised by psycopg itself or wrapped by SQLAlchemy."""
    code = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code if isinstance(code, str) else None


async def _insert_chunks(
    db: AsyncSession,
    stmt: Any,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    chunk: int,
    *,
    arrays: bool,
) -> int:
    """Run an insert over `rows` through SQLAlchemy, a chunk at a time (as one array per
    column for `_unnest_source`); the rows inserted. No `_dedupe`: DO NOTHING skips a repeated
    key like a stored one, on both engines."""
    inserted = 0
    for start in range(0, len(rows), chunk):
        batch = rows[start : start + chunk]
        params: Any
        if arrays:
            by_column = zip(*batch, strict=True)
            params = {f"u_{name}": list(a) for name, a in zip(columns, by_column, strict=True)}
        else:
            params = [dict(zip(columns, row, strict=True)) for row in batch]
        result = await db.execute(stmt, params, execution_options=_KEEP_COUNT)
        assert isinstance(result, CursorResult)  # what an INSERT returns
        inserted += result.rowcount
    return inserted


async def _copy(
    db: AsyncSession, form: tuple[str, _DriverRows], rows: Sequence[Sequence[Any]]
) -> int:
    """COPY the rows in, on the session's own connection and transaction (psycopg)."""
    sql, driver_rows = form
    conn = await db.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # a checked-out connection
    async with driver.cursor() as cursor:
        async with cursor.copy(sql) as copy:
            for values in driver_rows.parameters(rows):
                await copy.write_row(values)
        count: int = cursor.rowcount
    return count


_Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _DriverRows:
    """What turns rows into the values a driver takes for a statement's parameters."""

    order: Callable[[Sequence[Any]], tuple[Any, ...]] | None  # reorders a row, if needed
    processors: tuple[tuple[int, _Processor], ...]  # (position, the column's bind processor)

    def parameters(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """The values SQLAlchemy would bind, through the same column processors, without the
        parameter dict it builds and processes per row of an executemany (most of the Python
        cost of a small row). A value shared by consecutive rows (a batch's timestamp) is
        processed once."""
        processors = self.processors
        seen: list[Any] = [_UNSEEN] * len(processors)
        done: list[Any] = [None] * len(processors)
        out = []
        for row in rows:
            values = list(self.order(row) if self.order else row)
            for k, (position, process) in enumerate(processors):
                value = values[position]
                if value is not seen[k]:
                    seen[k], done[k] = value, process(value)
                values[position] = done[k]
            out.append(tuple(values))
        return out


_UNSEEN = object()


def _driver_rows(
    table: Table, dialect: Dialect, columns: tuple[str, ...], names: Sequence[str]
) -> _DriverRows:
    """For rows in `columns` order, the values of the parameters `names`."""
    order = None
    if tuple(names) != columns:
        order = itemgetter(*(columns.index(name) for name in names))
    processors = []
    for position, name in enumerate(names):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((position, process))
    return _DriverRows(order, tuple(processors))


@lru_cache(maxsize=32)
def _direct_form(
    stmt: Any, dialect: Dialect, columns: tuple[str, ...]
) -> tuple[str, _DriverRows] | None:
    """`stmt` as SQL for the driver's executemany, or None where SQLAlchemy must stay in
    between: named parameters, or parameters the rows do not carry (Python-side defaults)."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
    names = compiled.positiontup
    if not compiled.positional or names is None or sorted(names) != sorted(columns):
        return None
    return compiled.string, _driver_rows(stmt.table, dialect, columns, names)


@lru_cache(maxsize=32)
def _copy_form(
    table: Table, dialect: Dialect, columns: tuple[str, ...]
) -> tuple[str, _DriverRows] | None:
    """`COPY … FROM STDIN` of `columns`, and the rows' values for it; None when a column left
    out has a Python-side default (an INSERT through SQLAlchemy fills it in, COPY would not)."""
    if any(c.default is not None and c.name not in columns for c in table.c):
        return None
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    sql = f"COPY {dialect.identifier_preparer.format_table(table)} ({names}) FROM STDIN"
    return sql, _driver_rows(table, dialect, columns, columns)


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
        stmt = postgresql.insert(table).from_select(list(columns), _unnest_source(table, columns))
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


def _unnest_source(table: Table, columns: tuple[str, ...]) -> Any:
    """`SELECT unnest(:u_a), unnest(:u_b), …`: one array per column. The SQL text is the same
    for any number of rows, so PostgreSQL and psycopg prepare it once; multi-row VALUES text
    changes with the row count and is re-parsed by the driver every time."""
    return select(
        *(
            func.unnest(bindparam(f"u_{name}", type_=postgresql.ARRAY(table.c[name].type)))
            for name in columns
        )
    )


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
