"""Errors a gateway answers as 5xx although trying again can never help; each gateway keeps
its own table in its package (`providers/evolution/errors.py`).

A 5xx normally means "unavailable, retry later" (`GatewayUnavailable`). Some gateways answer a
request that is wrong in itself the same way: Evolution renders any exception as a 500, so an
image it cannot decode comes back as `500 Input buffer contains unsupported image format` and
would be retried until the outbox gives up, minutes later, with the same answer. A match here
makes it a `GatewayRejected` instead: the send fails at once, with the gateway's reason."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PermanentErrors:
    """Status codes that are always permanent, and reason fragments (matched case-blind) that
    make a 5xx permanent."""

    statuses: frozenset[int] = frozenset()
    reasons: tuple[str, ...] = ()

    def is_permanent(self, status_code: int, reason: str) -> bool:
        if status_code in self.statuses:
            return True
        text = reason.lower()
        return any(fragment in text for fragment in self.reasons)
