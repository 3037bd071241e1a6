"""`zapsync --help`, `version` and `admin …` stay fast: building the command tree imports no
heavy library, and a command that opens an up-to-date database skips Alembic. Guarded by what
is imported, not by timing (bench/cli_startup.py measures the time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each costs a tenth of a second or more of CPU to import (`python -X importtime`); together
# they were the 6-7 s every command paid, `--help` included.
HEAVY = (
    "alembic",
    "aiohttp",
    "apscheduler",
    "fastapi",
    "httpx",
    "limits",
    "pydantic_settings",
    "socketio",
    "sqlalchemy",
    "starlette",
    "structlog",
    "uvicorn",
)


def imported_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages of HEAVY that `code` leaves in sys.modules, in a fresh process."""
    listing = "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\nimport json, sys\n{listing}"
    out = (
        subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env=env,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return set(json.loads(out)) & set(HEAVY)


def test_building_the_command_tree_imports_nothing_heavy() -> None:
    assert imported_after("import zapsync.cli.main") == set()


@pytest.mark.parametrize("args", [["--help"], ["version"], ["admin", "--help"], ["db", "--help"]])
def test_help_and_version_import_nothing_heavy(args: list[str]) -> None:
    code = (
        "from zapsync.cli.main import app\n"
        f"try:\n    app({args!r}, prog_name='zapsync')\nexcept SystemExit:\n    pass"
    )
    assert imported_after(code) == set()


def test_an_admin_command_on_an_up_to_date_database_skips_alembic(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "ZAPSYNC_DATA_DIR": str(tmp_path / "data"),
    }
    create = (
        "from zapsync.cli.main import app\n"
        "try:\n    app(['admin', 'create-org', '{name}'], prog_name='zapsync')\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code"
    )
    # a new database is migrated first ...
    assert "alembic" in imported_after(create.format(name="Acme"), env)
    # ... and once it is at the newest migration, nothing asks Alembic again
    assert "alembic" not in imported_after(create.format(name="Globex"), env)


def test_the_cheap_head_check_agrees_with_alembic() -> None:
    from zapsync.cli import schema_check
    from zapsync.store import migrate

    assert schema_check.head_revision() == migrate.head_revision() is not None


def test_the_cli_knows_the_sandbox_dialects_without_importing_them() -> None:
    from zapsync.cli import sandbox
    from zapsync.sandbox import dialects

    assert sandbox.DIALECTS == dialects.DIALECTS
