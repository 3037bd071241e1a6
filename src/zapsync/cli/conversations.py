"""`zapsync sync-conversations SESSION`: import a session's chats and history now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from zapsync.cli.in_process import cannot_run_here, in_process_sessions
from zapsync.cli.runner import console, err_console, run_with_context

if TYPE_CHECKING:
    from rich.table import Table

    from zapsync.runtime.context import AppContext
    from zapsync.services.imports.importer import ImportProgress, ImportReport

IMPORT_ROUTE = "POST /api/v1/sessions/{id}/sync-conversations"


def sync_conversations(
    session_id: Annotated[int, typer.Argument(help="The session's id.", metavar="SESSION")],
) -> None:
    """Import a session's chats and their messages (resumes an import that was interrupted).

    What is admitted follows ZAPSYNC_SKIP_GROUPS, ZAPSYNC_IMPORT_SKIP_EMPTY and
    ZAPSYNC_IMPORT_HISTORY_DAYS. Running it again writes only what is new.
    """

    async def body(ctx: AppContext) -> ImportReport | None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        from zapsync.services.imports.importer import import_conversations

        scope = await in_process_sessions(ctx.db, session_id)
        if scope.get(session_id, (0, False))[1]:
            return None  # its phone is the server's
        bar = Progress(
            SpinnerColumn(),
            TextColumn("importing chats"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[messages]} new messages"),
            TimeElapsedColumn(),
            console=err_console,
        )
        task = bar.add_task("import", total=None, messages=0, start=False)

        def show(progress: ImportProgress) -> None:
            # Shown from the first chat on, so an unknown session prints only its error.
            if not bar.live.is_started:
                bar.start()
                bar.start_task(task)
            # The total grows page by page: gateways list chats without a count.
            bar.update(
                task,
                total=progress.chats_listed,
                completed=progress.chats_done,
                messages=progress.messages_created,
            )

        try:
            return await import_conversations(ctx, session_id, trigger="cli", progress=show)
        finally:
            bar.stop()

    report = run_with_context(body)
    if report is None:
        err_console.print(
            cannot_run_here([session_id], IMPORT_ROUTE), highlight=False, soft_wrap=True
        )
        raise typer.Exit(1)
    console.print(_summary(report))
    if report.error_messages:
        for message in report.error_messages:
            err_console.print(f"[red]error:[/red] {message}")
    if report.status in ("failed", "interrupted"):
        err_console.print(
            "the import stopped; run the command again to resume where it stopped"
            if report.status == "interrupted"
            else "the import failed"
        )
        raise typer.Exit(1)
    if report.status == "empty":
        err_console.print(
            "[yellow]the gateway listed no chat with history yet[/yellow]; "
            "zapsync retries when history arrives"
        )


def _summary(report: ImportReport) -> Table:
    from rich.table import Table

    table = Table(title=f"import of session {report.session_id}: {report.status}")
    table.add_column("")
    table.add_column("chats", justify="right")
    table.add_column("messages", justify="right")
    table.add_row("listed", str(report.chats_listed), str(report.messages.get("fetched", 0)))
    table.add_row("created", str(report.created), str(report.messages.get("created", 0)))
    table.add_row("updated", str(report.updated), str(report.messages.get("updated", 0)))
    skipped = ", ".join(f"{k} {v}" for k, v in report.skipped_by_reason.items())
    table.add_row(
        "skipped",
        f"{report.skipped}" + (f" ({skipped})" if skipped else ""),
        str(report.messages.get("already_stored", 0)),
    )
    table.add_row("errors", str(report.errors), "")
    return table
