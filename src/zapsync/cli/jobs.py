"""`zapsync status`, `status-sync`, `cleanup-sessions`, `close-inactive`: the jobs from a
terminal, printing Rich tables. They call the same functions as the API and the scheduler."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from zapsync.cli.runner import console, run_with_context
from zapsync.jobs.definitions import JOBS
from zapsync.services.context import AppContext
from zapsync.services.status_sync import dry_run
from zapsync.store.models import Session

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


def _print_json(report: Any) -> None:
    print(json.dumps(report, indent=2, default=str))


def status() -> None:
    """List every session with its stored status (no gateway is contacted)."""

    async def body(ctx: AppContext) -> list[Session]:
        async with ctx.db.session() as db:
            query = select(Session).where(Session.archived_at.is_(None)).order_by(Session.id)
            return list((await db.scalars(query)).all())

    rows = run_with_context(body)
    table = Table(title="WhatsApp sessions")
    for col in ("id", "org", "name", "provider", "status", "reason", "checked at"):
        table.add_column(col)
    for s in rows:
        checked = s.status_checked_at.isoformat(timespec="seconds") if s.status_checked_at else "-"
        table.add_row(
            str(s.id),
            str(s.organization_id),
            s.name,
            s.provider,
            s.status,
            s.status_reason or "",
            checked,
        )
    console.print(table)


def status_sync(
    dry: Annotated[bool, typer.Option("--dry-run", help="Compare only; change nothing.")] = False,
    session: Annotated[int | None, typer.Option("--session", help="Only this session id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile stored statuses with the gateways (every organization)."""
    if dry:
        rows = run_with_context(lambda ctx: dry_run(ctx, organization_id=None, session_id=session))
        if as_json:
            _print_json(rows)
            return
        table = Table(title="Status sync (dry run)")
        for col in ("session", "name", "stored", "live", "needs sync", "error"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                str(r["session_id"]),
                r["name"],
                r["stored_status"],
                r["live_status"] or "?",
                "yes" if r["needs_sync"] else "",
                r["error"] or "",
            )
        console.print(table)
        return

    async def apply(ctx: AppContext) -> dict[str, Any]:
        from zapsync.services.status_sync import apply_status_sync

        report = await apply_status_sync(
            ctx, organization_id=None, session_id=session, trigger="cli"
        )
        return report.as_dict()

    report = run_with_context(apply)
    if as_json:
        _print_json(report)
        return
    _print_status_report(report)


def _print_status_report(report: dict[str, Any]) -> None:
    console.print(
        f"checked [bold]{report['checked']}[/bold], changed {len(report['changed'])}, "
        f"unchanged {report['unchanged']}, errors {len(report['errors'])}"
    )
    if report["changed"] or report["errors"]:
        table = Table()
        for col in ("session", "from", "to", "error"):
            table.add_column(col)
        for c in report["changed"]:
            table.add_row(str(c["session_id"]), c["from"], c["to"], "")
        for e in report["errors"]:
            table.add_row(str(e["session_id"]), "", "", e["error"])
        console.print(table)


def _job_command(name: str, title: str) -> Any:
    def command(as_json: JsonOpt = False) -> None:
        report = run_with_context(lambda ctx: JOBS[name].func(ctx, None, "cli"))
        if as_json:
            _print_json(report)
            return
        table = Table(title=title)
        table.add_column("field")
        table.add_column("value")
        for key, value in report.items():
            table.add_row(
                key, json.dumps(value, default=str) if not isinstance(value, str) else value
            )
        console.print(table)

    command.__doc__ = JOBS[name].description
    return command


cleanup_sessions = _job_command("cleanup-sessions", "Cleanup of old sessions")
close_inactive = _job_command("close-inactive-conversations", "Inactive conversations closed")


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("status-sync")(status_sync)
    app.command("cleanup-sessions")(cleanup_sessions)
    app.command("close-inactive")(close_inactive)
