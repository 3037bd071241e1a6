"""Which outbox kinds this zapsync serves, and the use case that serves each: the worker
(`runtime/outbox_worker.py`) takes a pass over every registered kind. A new kind (Chatwoot's)
registers its handler here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from zapsync.runtime.context import AppContext
from zapsync.services.inbox.conversations import SEND_KIND
from zapsync.services.outbox import delivery
from zapsync.services.outbox.delivery import OutboxReport


@dataclass(frozen=True, slots=True)
class OutboxKind:
    kind: str
    # Hand every due item of the kind to where it goes; the report counts them.
    deliver_due: Callable[[AppContext], Awaitable[OutboxReport]]
    # Seconds until the kind's next item is due (0: one is due now), None when none waits.
    seconds_until_next: Callable[[AppContext], Awaitable[float | None]]
    # A session is connected again: hurry its items waiting out a retry; how many were.
    session_back: Callable[[AppContext, int], Awaitable[int]] | None = None
    # Items `deliver_due` takes at most in one pass: a full pass is followed by another at once.
    batch: int = delivery.BATCH
    # Events (by name) after which a pass is due: what the kind delivers was just stored.
    wakes_on: frozenset[str] = frozenset()
    # False when a pass surely finds nothing (one cheap query): scaled out, a wake-up then
    # defers no job, which costs a worker and the database a dozen statements.
    may_have_work: Callable[[AppContext], Awaitable[bool]] | None = None


KINDS: dict[str, OutboxKind] = {}


def register(kind: OutboxKind) -> None:
    KINDS[kind.kind] = kind


def register_builtin() -> None:
    """The kinds zapsync serves: WhatsApp sends, and the Chatwoot bridge's mirror."""
    # Imported here: the bridge builds on the outbox's report, not the other way round.
    from zapsync.services.integrations import bridge_mirror

    register(
        OutboxKind(
            bridge_mirror.KIND,
            deliver_due=bridge_mirror.mirror_due,
            seconds_until_next=bridge_mirror.seconds_until_next,
            batch=10**9,  # a pass mirrors everything due; it is never "full"
            # a message stored; an import's batch committed (its messages announce no event);
            # a conversation resolved or reopened
            wakes_on=frozenset({"new_message", "sync_run", "conversation_updated"}),
            may_have_work=bridge_mirror.any_to_mirror,
        )
    )


register(
    OutboxKind(
        SEND_KIND,
        deliver_due=delivery.deliver_due,
        seconds_until_next=delivery.seconds_until_next,
        session_back=delivery.retry_session_now,
    )
)

register_builtin()
