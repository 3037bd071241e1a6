"""Runs a CLI command's async body with a context, and turns known errors into one red line.

Nothing heavy is imported at module level: every `zapsync` command, `--help` included, imports
this module, and only the commands that open the database pay for SQLAlchemy and the app
(tests/test_cli_startup.py guards it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from zapsync.runtime.context import AppContext
    from zapsync.settings import Settings
    from zapsync.store.db import Database

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red `error:` line; the caller raises what this returns."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def settings_or_exit() -> Settings:
    from zapsync.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        raise fail(str(exc), 2) from None


@contextmanager
def database_errors_as_one_line(url: str) -> Iterator[None]:
    """An unreachable or unopenable database ends the command with one line naming
    DATABASE_URL (password masked), not a traceback.

    Only a failure the database's drivers raised is looked at, and only when a new
    connection fails too: a lock or a constraint is not "unreachable"."""
    try:
        yield
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        from zapsync.cli.database_errors import connection_error, unreachable_message

        if not isinstance(exc, DBAPIError | OSError):
            raise
        refused = connection_error(url)
        if refused is None:
            raise
        raise fail(unreachable_message(url, refused)) from None


def migrate_or_exit(settings: Settings, *, unless_at_head: bool = False) -> None:
    """Apply migrations, or stop with one line when the database cannot be reached.
    `unless_at_head`: first ask the database, cheaply, whether there is anything to do."""
    with database_errors_as_one_line(settings.database_url):
        if unless_at_head:
            from zapsync.cli.schema_check import database_at_head

            if database_at_head(settings.database_url):
                return
        from zapsync.store.migrate import upgrade

        upgrade(settings.database_url)


def _prepare(migrate: bool) -> Settings:
    from zapsync.logs import configure_logging

    settings = settings_or_exit()
    configure_logging(settings.log_format, "WARNING")
    if migrate:
        migrate_or_exit(settings, unless_at_head=True)
    return settings


def _run(settings: Settings, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    import asyncio  # with ssl, a tenth of a second that `--help` need not pay

    from zapsync.services.errors import ServiceError

    try:
        with database_errors_as_one_line(settings.database_url):
            return asyncio.run(main())
    except ServiceError as exc:
        raise fail(exc.detail) from None


def run_with_context(body: Callable[[AppContext], Awaitable[T]], *, migrate: bool = True) -> T:
    """Run `body` with the whole app's context (gateways, bus, cipher) and its subscribers,
    as `serve` wires them: the jobs' commands. What the body set off (the import of a session
    a status sync found connected) is finished before the command ends."""
    settings = _prepare(migrate)

    async def main() -> T:
        from zapsync.runtime.context import AppContext
        from zapsync.runtime.wiring import Runtime

        ctx = AppContext.create(settings)
        runtime = Runtime(ctx, workers=False)
        try:
            await runtime.start()
            result = await body(ctx)
            await runtime.settle()
            return result
        finally:
            await runtime.stop()
            await ctx.aclose()

    return _run(settings, main)


def run_with_database(body: Callable[[Database], Awaitable[T]], *, migrate: bool = True) -> T:
    """Run `body` with the database only: what `zapsync admin …` needs, without the cost of
    importing the gateways and the web app."""
    settings = _prepare(migrate)

    async def main() -> T:
        from zapsync.store.db import Database

        db = Database(settings.database_url)
        try:
            return await body(db)
        finally:
            await db.dispose()

    return _run(settings, main)
