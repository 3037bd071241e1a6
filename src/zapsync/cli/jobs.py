"""`zapsync status`, `status-sync`, `cleanup-sessions`, `close-inactive`: the jobs from a
terminal, printing Rich tables; `zapsync jobs`: the schedules and, scaled out, the queue. They
call the same functions as the API and the scheduler, imported inside each command so that
building the command tree stays cheap."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zapsync.cli.in_process import cannot_run_here, in_process_sessions
from zapsync.cli.runner import console, err_console, run_with_context

if TYPE_CHECKING:
    from zapsync.runtime.context import AppContext
    from zapsync.store.models import Session

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
STATUS_SYNC_ROUTE = "POST /api/v1/sessions/{id}/status-sync"
EMPTY_REPORT: dict[str, Any] = {"checked": 0, "changed": [], "unchanged": 0, "errors": []}


def _print_json(report: Any) -> None:
    print(json.dumps(report, indent=2, default=str))


def status() -> None:
    """List every session with its stored status (no gateway is contacted)."""
    from rich.table import Table

    async def body(ctx: AppContext) -> list[Session]:
        from zapsync.store.sessions import live_sessions

        async with ctx.db.session() as db:
            return await live_sessions(db)

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


Scope = tuple[int | None, int | None]  # (organization id, session id) of one sync call


async def _scopes(ctx: AppContext, session: int | None) -> tuple[list[Scope], list[int]]:
    """What this process can check, as few sync calls as possible, and the sandbox sessions
    it must leave to the server. Without sandbox sessions: one call over every organization."""
    sessions = await in_process_sessions(ctx.db, session)
    skipped = [sid for sid, (_, in_process) in sessions.items() if in_process]
    if not skipped:
        return [(None, session)], []
    mixed = {sessions[sid][0] for sid in skipped}
    whole = sorted({org for org, _ in sessions.values()} - mixed)
    single = sorted(sid for sid, (org, ip) in sessions.items() if org in mixed and not ip)
    return [(org, None) for org in whole] + [(None, sid) for sid in single], skipped


def _merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Several calls' reports as one: counts added, lists joined, other values (run ids)
    listed."""
    if len(reports) == 1:
        return reports[0]
    merged: dict[str, Any] = {}
    for report in reports:
        for key, value in report.items():
            if isinstance(value, int) and not isinstance(value, bool):
                merged[key] = merged.get(key, 0) + value
            elif isinstance(value, list):
                merged[key] = [*merged.get(key, []), *value]
            else:
                merged.setdefault(key, []).append(value)
    return merged


def status_sync(
    dry: Annotated[bool, typer.Option("--dry-run", help="Compare only; change nothing.")] = False,
    session: Annotated[int | None, typer.Option("--session", help="Only this session id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile stored statuses with the gateways (every organization).

    Sandbox sessions are left to the running server (their phone lives there): the command
    names them and exits 1 after checking the others."""

    async def body(ctx: AppContext) -> tuple[list[dict[str, Any]] | dict[str, Any], list[int]]:
        from zapsync.services.sessions.status_sync import apply_status_sync, dry_run

        scopes, skipped = await _scopes(ctx, session)
        if session is not None and skipped:
            return [], skipped  # the one session asked for is the server's
        if dry:
            rows: list[dict[str, Any]] = []
            for org, sid in scopes:
                rows += await dry_run(ctx, organization_id=org, session_id=sid)
            return rows, skipped
        reports = [EMPTY_REPORT] if not scopes else []
        for org, sid in scopes:
            report = await apply_status_sync(
                ctx, organization_id=org, session_id=sid, trigger="cli"
            )
            reports.append(report.as_dict())
        return _merge(reports), skipped

    result, skipped = run_with_context(body)
    if session is None or not skipped:
        if as_json:
            if isinstance(result, dict) and skipped:
                result = {**result, "not_checked": skipped}
            _print_json(result)
        elif isinstance(result, list):
            _print_dry_run(result)
        else:
            _print_status_report(result)
    if skipped:
        err_console.print(
            cannot_run_here(skipped, STATUS_SYNC_ROUTE), highlight=False, soft_wrap=True
        )
        raise typer.Exit(1)


def _print_dry_run(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

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


def _print_status_report(report: dict[str, Any]) -> None:
    from rich.table import Table

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


def _job_command(name: str, title: str, help_text: str) -> Any:
    # `help_text` is written here rather than read from the job's spec: reading it would
    # import the jobs, the scheduler and the services for every `zapsync --help`.
    def command(as_json: JsonOpt = False) -> None:
        from rich.table import Table

        from zapsync.jobs.definitions import JOBS

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

    command.__doc__ = help_text
    return command


cleanup_sessions = _job_command(
    "cleanup-sessions",
    "Cleanup of old sessions",
    "Archive sessions not connected and inactive for ZAPSYNC_SESSION_CLEANUP_DAYS (30) days.",
)
close_inactive = _job_command(
    "close-inactive-conversations",
    "Inactive conversations closed",
    "Resolve conversations with no message for ZAPSYNC_INACTIVE_HOURS (24) hours.",
)


# Procrastinate's job states, in the order a job goes through them.
QUEUE_STATES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborting", "aborted")


def jobs(as_json: JsonOpt = False) -> None:
    """The scheduled jobs and who runs them; scaled out (ZAPSYNC_JOBS=procrastinate), the
    queue's jobs by task and state (queued, running, failed…), as GET /api/v1/jobs/queue."""
    from datetime import UTC, datetime

    from rich.table import Table

    async def body(ctx: AppContext) -> tuple[str, dict[str, Any], list[tuple[str, str, int]]]:
        from zapsync.jobs.definitions import JOBS
        from zapsync.jobs.queue import queue_counts
        from zapsync.jobs.scheduler import next_run_times

        nexts = next_run_times(ctx, None, datetime.now(UTC))
        schedules = {
            name: {"schedule": spec.schedule, "next_run": nexts.get(name)}
            for name, spec in JOBS.items()
        }
        return ctx.settings.jobs, schedules, await queue_counts(ctx)

    mode, schedules, counts = run_with_context(body, migrate=False)
    if as_json:
        queue = [{"task": t, "status": s, "count": n} for t, s, n in counts]
        _print_json({"mode": mode, "schedules": schedules, "jobs": queue})
        return
    runner = (
        "Procrastinate workers (zapsync worker)" if mode == "procrastinate" else "zapsync serve"
    )
    console.print(f"jobs run by [bold]{runner}[/bold] (ZAPSYNC_JOBS={mode})", highlight=False)
    table = Table(title="Scheduled jobs")
    for col in ("job", "schedule", "next run"):
        table.add_column(col)
    for name, row in schedules.items():
        nxt = row["next_run"]
        table.add_row(name, row["schedule"], nxt.isoformat(timespec="minutes") if nxt else "-")
    console.print(table)
    if mode != "procrastinate":
        return
    by_task: dict[str, dict[str, int]] = {}
    for task, state, n in counts:
        by_task.setdefault(task, {})[state] = n
    shown = [s for s in QUEUE_STATES if any(s in states for states in by_task.values())]
    queue_table = Table(title="Job queue")
    queue_table.add_column("task")
    for state in shown or ("todo", "doing", "failed"):
        queue_table.add_column(state, justify="right")
    for task, states in sorted(by_task.items()):
        queue_table.add_row(task, *(str(states.get(s, 0)) for s in shown))
    console.print(queue_table)


def register(app: typer.Typer) -> None:
    app.command("jobs")(jobs)
    app.command("status")(status)
    app.command("status-sync")(status_sync)
    app.command("cleanup-sessions")(cleanup_sessions)
    app.command("close-inactive")(close_inactive)
