"""Refused webhooks, counted: one structured log line per refusal with its reason and the
running counts, so a flood of forged or oversized deliveries shows in the logs."""

from __future__ import annotations

from collections import Counter

import structlog

from zapsync.services.ingest.auth import Refusal

log = structlog.get_logger(__name__)


class RefusalCounter:
    def __init__(self) -> None:
        self.counts: Counter[Refusal] = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def note(
        self, refusal: Refusal, *, provider: str, session_id: int, client: str | None, detail: str
    ) -> int:
        """Count and log one refusal; the running count for its reason."""
        self.counts[refusal] += 1
        log.warning(
            "webhook refused",
            reason=refusal.value,
            provider=provider,
            session_id=session_id,
            client=client,
            detail=detail,
            count=self.counts[refusal],
            refused_total=self.total,
        )
        return self.counts[refusal]
