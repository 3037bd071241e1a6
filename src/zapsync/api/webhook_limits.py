"""The rate limits on webhook deliveries."""

from __future__ import annotations

from zapsync.security.rate_limits import RateLimit


class WebhookLimits:
    """Deliveries per session, and refused deliveries per client address."""

    def __init__(self, per_session: str, refusals_per_client: str) -> None:
        self.per_session = RateLimit("webhook", per_session)
        self.refusals = RateLimit("webhook-refused", refusals_per_client)
