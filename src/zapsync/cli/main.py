"""The `zapsync` command."""

from __future__ import annotations

import gc
from typing import Annotated

import typer

from zapsync import __version__
from zapsync.cli import admin, chatwoot, conversations, jobs, sandbox, worker
from zapsync.cli.runner import console, fail, migrate_or_exit, settings_or_exit

# Every module imported here is cheap: the heavy ones (the app, SQLAlchemy, the gateways) are
# imported inside the commands that use them, so `zapsync --help` takes a fraction of a second.

app = typer.Typer(
    help="zapsync keeps WhatsApp connections, conversations and contacts true in one database.\n\n"
    "Start with `zapsync serve`; create access with `zapsync admin --help`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin.app, name="admin")
jobs.register(app)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(chatwoot.app, name="chatwoot")
app.command("sync-conversations")(conversations.sync_conversations)
app.command("worker")(worker.worker)


@app.command()
def version() -> None:
    """Print zapsync's version."""
    print(__version__)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations up to the latest (safe to run again)."""
    migrate_or_exit(settings_or_exit())
    console.print("database is at the latest migration")


def _settle_heap() -> None:
    """Keep the garbage collector's full passes short in a long-running server.

    The modules and the app make ~250k objects that live as long as the process; every full
    collection walked them all and, on the project's machine, stalled the event loop for
    100-200 ms several times a minute under webhook load (the p99 of webhook to Socket.IO).
    Frozen, they are never walked again; the young generation is collected less often, since
    a busy server allocates thousands of short-lived objects per batch."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (ZAPSYNC_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (ZAPSYNC_PORT).")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the sandbox demo organization at start.")
    ] = False,
) -> None:
    """Apply migrations, then serve the API (and the scheduled jobs) over HTTP."""
    import uvicorn

    from zapsync.api.app import create_app
    from zapsync.api.server import server_config

    # --host/--port move the derived public URL along (gateways post to where we listen)
    settings = settings_or_exit().listening_on(host, port)
    if demo:
        settings = settings.model_copy(update={"demo": True})
    try:
        migrate_or_exit(settings)
    except typer.Exit:
        raise
    except Exception as exc:
        raise fail(f"cannot migrate the database: {exc}") from None
    application = create_app(settings)
    _settle_heap()
    uvicorn.Server(server_config(application, settings)).run()


if __name__ == "__main__":
    app()
