"""When to import a session's conversations: when it becomes connected (any source: webhook,
status sync, sandbox pairing), when a gateway says history arrived, and on a timer for
imports that found nothing yet."""

from __future__ import annotations

from zapsync.bus.events import Event
from zapsync.runtime.context import AppContext
from zapsync.services.imports.importer import import_conversations, import_pending_retries


def watch_connections(ctx: AppContext) -> None:
    """Import automatically each time a session becomes connected (seed 000's sync on ready)."""

    async def on_event(event: Event) -> None:
        data = event.data
        if event.name != "session_status" or data.get("status") != "connected":
            return
        if data.get("previous") == "connected":
            return
        session_id = int(data["session_id"])
        if ctx.defer_import is not None:  # a worker imports it (scaled out)
            ctx.tasks.spawn(ctx.defer_import(session_id, "connect"), name=f"defer-{session_id}")
            return
        ctx.tasks.spawn(
            import_conversations(ctx, session_id, trigger="connect"),
            name=f"import-{session_id}",
        )

    ctx.bus.subscribe(on_event, names={"session_status"})


def history_arrived(ctx: AppContext, session_id: int) -> None:
    ctx.tasks.spawn(
        import_pending_retries(ctx, session_id=session_id), name=f"import-retry-{session_id}"
    )
