"""`zapsync chatwoot …`: connect an organization to Chatwoot, list its integration, run a sync
with a progress bar, and show the runs. Each command names its organization with `--org`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zapsync.cli.runner import console, err_console, run_with_context

if TYPE_CHECKING:
    from zapsync.runtime.context import AppContext
    from zapsync.services.accounts import Principal
    from zapsync.services.integrations.sync_runs import RunResult

app = typer.Typer(help="Chatwoot: connect, sync contacts, see the runs.", no_args_is_help=True)

OrgOpt = Annotated[str, typer.Option("--org", help="The organization's name.")]


async def _operator(ctx: AppContext, org: str) -> Principal:
    from zapsync.services.accounts import Principal, get_organization_by_name

    async with ctx.db.reads() as db:
        organization = await get_organization_by_name(db, org)
    return Principal.operator(organization.id)


@app.command("connect")
def connect(
    org: OrgOpt,
    api_url: Annotated[str, typer.Option("--api-url", help="Chatwoot's address.")] = (
        "https://app.chatwoot.com"
    ),
    account_id: Annotated[str, typer.Option("--account-id", help="The Chatwoot account.")] = "",
    api_key: Annotated[
        str,
        typer.Option(
            "--api-key",
            envvar="ZAPSYNC_CHATWOOT_API_KEY",
            prompt="Chatwoot access token",
            hide_input=True,
            help="An agent's or bot's access token (prompted; or ZAPSYNC_CHATWOOT_API_KEY).",
        ),
    ] = "",
    inbox_id: Annotated[
        str | None,
        typer.Option("--inbox-id", help="The API inbox mirroring WhatsApp, or 'create'."),
    ] = None,
    session: Annotated[
        list[int] | None, typer.Option("--session", help="A WhatsApp session to bridge.")
    ] = None,
    webhook_secret: Annotated[
        str | None, typer.Option("--webhook-secret", help="The secret Chatwoot signs with.")
    ] = None,
) -> None:
    """Test the credentials against Chatwoot, then store the integration; prints the webhook
    URL to paste into Chatwoot."""

    async def body(ctx: AppContext) -> tuple[int, str]:
        from zapsync.services.integrations.connections import create_integration

        principal = await _operator(ctx, org)
        config: dict[str, Any] = {"account_id": account_id, "api_url": api_url}
        if inbox_id is not None:
            config["inbox_id"] = inbox_id if inbox_id == "create" else int(inbox_id)
        if session:
            config["session_ids"] = list(session)
        if webhook_secret:
            config["webhook_secret"] = webhook_secret
        async with ctx.db.session() as db:
            view = await create_integration(
                ctx, db, principal, provider="chatwoot", api_key=api_key, config=config
            )
        return view.integration.id, view.webhook_url

    integration_id, webhook_url = run_with_context(body)
    console.print(f"chatwoot integration {integration_id} connected")
    console.print(f"webhook URL for Chatwoot: {webhook_url}", highlight=False, soft_wrap=True)


@app.command("list")
def list_integrations(org: OrgOpt) -> None:
    """The organization's Chatwoot integration: account, inbox, bridged sessions, status."""

    async def body(ctx: AppContext) -> list[dict[str, Any]]:
        from zapsync.services.integrations.connections import list_integrations as listed

        principal = await _operator(ctx, org)
        async with ctx.db.reads() as db:
            views = await listed(ctx, db, principal)
        return [
            {"id": v.integration.id, "api_url": v.config.api_url,
             "account": v.config.account_id, "inbox": v.config.inbox_id,
             "sessions": ", ".join(str(s) for s in v.config.session_ids),
             "status": v.integration.status, "webhook_url": v.webhook_url}
            for v in views
        ]  # fmt: skip

    rows = run_with_context(body)
    if not rows:
        console.print(f"{org} has no Chatwoot integration; `zapsync chatwoot connect` makes one")
        return
    _table("Chatwoot integrations", rows)


@app.command("sync")
def sync(
    org: OrgOpt,
    entity: Annotated[str, typer.Option("--entity", help="contacts")] = "contacts",
    direction: Annotated[str, typer.Option("--direction", help="pull or push")] = "pull",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run one sync now, with a progress bar; prints the run's counts."""

    async def body(ctx: AppContext) -> RunResult:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from zapsync.bus.events import Event
        from zapsync.services.integrations.sync import run_sync

        principal = await _operator(ctx, org)
        bar = Progress(
            SpinnerColumn(),
            TextColumn(f"{entity} {direction}"),
            TextColumn("{task.fields[synced]} synced · {task.fields[created]} created · "
                       "{task.fields[updated]} updated · {task.fields[skipped]} skipped"),
            TimeElapsedColumn(),
            console=err_console,
            disable=as_json,
        )  # fmt: skip
        task = bar.add_task("sync", total=None, synced=0, created=0, updated=0, skipped=0)

        async def show(event: Event) -> None:
            counts = {k: event.data.get(k, 0) for k in ("synced", "created", "updated", "skipped")}
            bar.update(task, **counts)

        ctx.bus.subscribe(show, names={"sync_run"})
        with bar:
            return await run_sync(
                ctx, principal, entity_type=entity, direction=direction, trigger="cli"
            )

    result = run_with_context(body)
    summary = {
        "run_id": result.run_id, "status": result.status, "synced": result.synced,
        "created": result.created, "updated": result.updated, "skipped": result.skipped,
        "errors": result.errors, "error_messages": result.error_messages,
    }  # fmt: skip
    if as_json:
        print(json.dumps(summary))
        return
    _table(f"Chatwoot {entity} {direction}", [summary])
    if result.status == "failed":
        raise typer.Exit(1)


@app.command("runs")
def runs(
    org: OrgOpt,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 20,
) -> None:
    """The organization's Chatwoot runs, newest first."""

    async def body(ctx: AppContext) -> list[dict[str, Any]]:
        from zapsync.services.integrations.sync import list_runs

        principal = await _operator(ctx, org)
        async with ctx.db.reads() as db:
            found = await list_runs(db, principal, limit=limit)
        return [
            {"id": r.id, "kind": r.kind, "trigger": r.trigger, "status": r.status,
             "started": r.started_at.isoformat(timespec="seconds"), "created": r.created,
             "updated": r.updated, "skipped": r.skipped, "errors": r.errors}
            for r in found
        ]  # fmt: skip

    rows = run_with_context(body)
    if not rows:
        console.print("no Chatwoot runs yet")
        return
    _table("Chatwoot runs", rows)


def _table(title: str, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) if not isinstance(v, list) else "; ".join(v) for v in row.values()))
    console.print(table)
