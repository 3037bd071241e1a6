"""HTTP stays at the edge and the store below the services: a route module takes its
database session, context and long-lived parts from `api/deps.py` and calls services; it
never imports `zapsync.store` nor reaches into `app.state` itself."""

from __future__ import annotations

import ast
from pathlib import Path

import zapsync.api.routes

ROUTES = Path(zapsync.api.routes.__file__).parent


def route_modules() -> list[Path]:
    modules = sorted(p for p in ROUTES.glob("*.py") if p.name != "__init__.py")
    assert len(modules) >= 10  # the glob found the routes, not an empty folder
    return modules


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


def test_the_checks_see_what_they_look_for() -> None:
    # The rules above would pass on any source if the parsing were wrong.
    assert "zapsync.store.models" in imported_modules("from zapsync.store.models import Message")
    assert "zapsync.store" in imported_modules("import zapsync.store")
