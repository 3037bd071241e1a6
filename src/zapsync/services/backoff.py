"""Kept for the services that import the backoff from here; the rule itself is pure and lives in
`zapsync.domain.backoff`, where connectors (a layer below services) can use it too."""

from zapsync.domain.backoff import MAX_DELAY_SECONDS, backoff, nominal_delay

__all__ = ["MAX_DELAY_SECONDS", "backoff", "nominal_delay"]
