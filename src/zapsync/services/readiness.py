"""Whether this process can serve: the database answers and its migrations are at head."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zapsync.runtime.context import AppContext
from zapsync.store.migrate import head_revision, stored_revision


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    checks: dict[str, Any] = field(default_factory=dict)


async def check_ready(ctx: AppContext) -> Readiness:
    """Never raises: whatever fails is the reason it is not ready."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        revision = await stored_revision(ctx.db, timeout=5)
        checks["database"] = "ok"
        head = head_revision()
        checks["migrations"] = {"current": revision, "head": head}
        if revision != head:
            ok = False
            checks["reason"] = "migrations are not at head: run `zapsync db upgrade`"
    except Exception as exc:  # any failure means not ready; the reason is reported
        ok = False
        checks["database"] = "unreachable"
        checks["reason"] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"
    return Readiness(ok, checks)
