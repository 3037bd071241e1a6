"""Runs a CLI command's async body with a context, and turns known errors into one red line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from zapsync.logs import configure_logging
from zapsync.services.context import AppContext
from zapsync.services.errors import ServiceError
from zapsync.settings import Settings, SettingsError, load_settings
from zapsync.store.migrate import upgrade

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def run_with_context(body: Callable[[AppContext], Awaitable[T]], *, migrate: bool = True) -> T:
    settings = settings_or_exit()
    configure_logging(settings.log_format, "WARNING")
    if migrate:
        upgrade(settings.database_url)

    async def main() -> T:
        ctx = AppContext.create(settings)
        try:
            return await body(ctx)
        finally:
            await ctx.aclose()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None
