"""HTTP stays at the edge and the store below the services: a route module takes its
database session, context and long-lived parts from `api/deps.py` and calls services; it
never imports `zapsync.store` nor reaches into `app.state` itself. A service knows no HTTP
(no FastAPI, no Starlette, no `/api/v1` URL) and builds no SQL: statements live in
`store/`, the one place with dialect branches."""

from __future__ import annotations

import ast
from pathlib import Path

import zapsync
import zapsync.api.routes

SRC = Path(zapsync.__file__).parent
ROUTES = Path(zapsync.api.routes.__file__).parent
# The Socket.IO handlers are routes too.
REALTIME = SRC / "api" / "realtime.py"

# The outbox's gateway delivery keeps its claim/retry SQL until the outbox serves every kind
# (Chatwoot's too) through one claim in `store/outbox.py`; nothing is added here.
SQL_NOT_YET_IN_STORE: frozenset[str] = frozenset()

# What builds SQL: the statement and expression constructors of `sqlalchemy` (and of
# `sqlalchemy.sql`, `sqlalchemy.orm`), and every dialect's own statements.
STATEMENT_BUILDERS = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "text",
        "func",
        "and_",
        "or_",
        "not_",
        "case",
        "exists",
        "bindparam",
        "literal",
        "literal_column",
        "column",
        "table",
        "tuple_",
        "union",
        "union_all",
        "values",
        "cast",
        "true",
        "false",
        "null",
        "distinct",
        "join",
        "outerjoin",
        "aliased",
        "selectinload",
        "joinedload",
        "contains_eager",
    }
)


def route_modules() -> list[Path]:
    modules = sorted(p for p in ROUTES.glob("*.py") if p.name != "__init__.py")
    assert len(modules) >= 10  # the glob found the routes, not an empty folder
    return [*modules, REALTIME]


def layer_modules(*layers: str) -> list[Path]:
    modules = sorted(p for layer in layers for p in (SRC / layer).rglob("*.py"))
    assert len(modules) >= 20  # the glob found the services, not an empty folder
    return modules


def relative(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def sql_builders(source: str) -> set[str]:
    """What of SQLAlchemy's statement building `source` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            # the whole package: `sqlalchemy.select(...)` is a builder too
            found.update(a.name for a in node.names if a.name.split(".")[0] == "sqlalchemy")
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if module.startswith(("sqlalchemy.dialects", "sqlalchemy.sql", "sqlalchemy.future")):
                found.add(module)
            elif module in ("sqlalchemy", "sqlalchemy.orm"):
                found.update(
                    f"{module}.{alias.name}"
                    for alias in node.names
                    if alias.name in STATEMENT_BUILDERS
                )
    return found


def imported_modules(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_route_imports_the_store() -> None:
    offenders = {
        f"{path.name}: {module}"
        for path in route_modules()
        for module in imported_modules(path.read_text())
        if module == "zapsync.store" or module.startswith("zapsync.store.")
    }
    assert not offenders, sorted(offenders)


def test_no_route_reads_app_state() -> None:
    offenders = [
        f"{path.name}:{number}"
        for path in route_modules()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "app.state" in line
    ]
    assert not offenders, offenders


def test_only_the_store_builds_sql() -> None:
    offenders = {
        f"{relative(path)}: {builder}"
        for path in layer_modules("services", "jobs")
        if relative(path) not in SQL_NOT_YET_IN_STORE
        for builder in sql_builders(path.read_text())
    }
    assert not offenders, sorted(offenders)


def test_no_service_knows_http() -> None:
    edge = ("fastapi", "starlette", "zapsync.api")
    offenders = {
        f"{relative(path)}: {module}"
        for path in layer_modules("services")
        for module in imported_modules(path.read_text())
        if module in edge or module.startswith(tuple(f"{e}." for e in edge))
    }
    offenders.update(
        f"{relative(path)}:{number}"
        for path in layer_modules("services")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "/api/v1" in line
    )
    assert not offenders, sorted(offenders)


def test_the_checks_see_what_they_look_for() -> None:
    # The rules above would pass on any source if the parsing were wrong.
    assert "zapsync.store.models" in imported_modules("from zapsync.store.models import Message")
    assert "zapsync.store" in imported_modules("import zapsync.store")
    assert sql_builders("from sqlalchemy import select, Column") == {"sqlalchemy.select"}
    assert sql_builders("from sqlalchemy.dialects import postgresql") == {"sqlalchemy.dialects"}
    assert sql_builders("import sqlalchemy as sa") == {"sqlalchemy"}
    assert sql_builders("from sqlalchemy.orm import aliased") == {"sqlalchemy.orm.aliased"}
    assert not sql_builders("from sqlalchemy.ext.asyncio import AsyncSession")
    assert not sql_builders("from sqlalchemy.exc import IntegrityError")
    # the check of the lanes still moving SQL names modules that exist
    assert all((SRC / name).is_file() for name in SQL_NOT_YET_IN_STORE)
