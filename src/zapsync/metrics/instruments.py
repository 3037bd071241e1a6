"""What this process counts as it happens: webhooks, status checks, outbox deliveries.

One `Metrics` per app context, on its own `CollectorRegistry` (never the global one), so two
apps in one process (tests, a CLI beside a server) keep separate figures. Label values come
from zapsync's own vocabulary, never straight from a request, so no caller can grow them."""

from __future__ import annotations

import re
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

from zapsync.providers.registry import PROVIDERS
from zapsync.services.errors import Refusal, ServiceError, WebhookRefused

# No `_created` series beside every counter: they double the scrape and no dashboard reads them.
disable_created_metrics()

# Webhook receipt to commit: most take milliseconds; a batch under load takes longer.
_INGEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def gateway_label(provider: str) -> str:
    return provider if provider in PROVIDERS else "unknown"


# A refused webhook by its kind: every failed credential counts as one (`unauthorized`), so
# the figures say no more than the answer does about which session ids exist.
_REFUSAL_LABELS: dict[Refusal, str] = {
    Refusal.UNKNOWN_SESSION: "unauthorized",
    Refusal.UNKNOWN_INTEGRATION: "unauthorized",
    Refusal.WRONG_SECRET: "unauthorized",
    Refusal.BAD_SIGNATURE: "unauthorized",
    Refusal.EXPIRED_SIGNATURE: "unauthorized",
    Refusal.ARCHIVED: "gone",
    Refusal.MALFORMED: "malformed_webhook",
    Refusal.TOO_LARGE: "payload_too_large",
    Refusal.RATE_LIMITED: "too_many_requests",
}


def refusal_label(error: ServiceError) -> str:
    """`unauthorized`, `malformed_webhook`, …: the refusal's kind (else its class's name)."""
    if isinstance(error, WebhookRefused):
        return _REFUSAL_LABELS[error.refusal]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower() or "refused"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhook_events = Counter(
            "zapsync_webhook_events",
            "Webhook events by gateway, event and outcome (applied, ignored, or the refusal; "
            "a refused delivery counts once, as event `-`).",
            ["gateway", "event", "outcome"],
            registry=self.registry,
        )
        self.webhook_ingest = Histogram(
            "zapsync_webhook_ingest_seconds",
            "From a webhook's arrival to its events being committed.",
            ["gateway"],
            buckets=_INGEST_BUCKETS,
            registry=self.registry,
        )
        self.status_checks = Counter(
            "zapsync_status_checks",
            "Status checks asked of a gateway, by session and result (its live status, or error).",
            ["session_id", "result"],
            registry=self.registry,
        )
        self.outbox_deliveries = Counter(
            "zapsync_outbox_deliveries",
            "Outbox delivery attempts by outcome (delivered, retried, failed, skipped).",
            ["outcome"],
            registry=self.registry,
        )

    def webhook(self, provider: str, received_at: float, outcome: ServiceError | list[str]) -> None:
        """One delivery: refused (the error), or applied with its events' type names
        (`UnknownEvent` ones were ignored). `received_at` is a `time.perf_counter()`."""
        gateway = gateway_label(provider)
        if isinstance(outcome, ServiceError):
            self.webhook_events.labels(gateway, "-", refusal_label(outcome)).inc()
            return
        for event in outcome:
            result = "ignored" if event == "UnknownEvent" else "applied"
            self.webhook_events.labels(gateway, event, result).inc()
        self.webhook_ingest.labels(gateway).observe(time.perf_counter() - received_at)

    def status_checked(self, session_id: int, result: str) -> None:
        self.status_checks.labels(str(session_id), result).inc()

    def outbox_delivery(self, outcome: str) -> None:
        self.outbox_deliveries.labels(outcome).inc()
