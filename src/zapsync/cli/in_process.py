"""Sessions a CLI process cannot work on: the `sandbox` provider's phone is a simulated world
held in the memory of the running `zapsync serve`; a CLI process has an empty world of its own,
so a check there would find the instance missing and mark a healthy session `failed`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zapsync.store.db import Database

IN_PROCESS_PROVIDERS = ("sandbox",)


async def in_process_sessions(
    database: Database, session_id: int | None = None
) -> dict[int, tuple[int, bool]]:
    """Every live session in scope: id -> (organization id, whether its phone is in-process)."""
    from zapsync.store.sessions import live_session_scope

    async with database.session() as db:
        rows = await live_session_scope(db, session_id)
    return {sid: (org, provider in IN_PROCESS_PROVIDERS) for sid, org, provider in rows}


def cannot_run_here(session_ids: list[int], route: str) -> str:
    """One line: which sessions, why, and what to use instead (`route` has `{id}`)."""
    which = ", ".join(str(i) for i in sorted(session_ids))
    noun = "session" if len(session_ids) == 1 else "sessions"
    example = route.format(id=session_ids[0] if len(session_ids) == 1 else "{id}")
    return (
        f"{noun} {which} skipped: a sandbox session's phone lives inside the running "
        f"`zapsync serve`, not in this command; use {example} on that server, or the inbox"
    )
