"""The one backoff every retry in zapsync waits out (outbox sends, session healing, webhook
relays, and the Chatwoot connector's 429s): exponential, capped, with jitter.

A pure rule (no I/O), so it lives in `domain/` where services and connectors alike may use it.

Jitter matters when many sessions fail together (a gateway restart, a network cut): without it
they all retry in the same second, in lockstep, for every attempt. "Equal jitter" keeps half of
the exponential delay and draws the other half at random, so retries spread out while never
coming sooner than half the nominal delay (no hammering of a gateway that is down)."""

from __future__ import annotations

import random
from datetime import timedelta

# No retry waits longer than this, whatever the attempt number.
MAX_DELAY_SECONDS = 3600.0

_random = random.SystemRandom()


def nominal_delay(base_seconds: float, attempt: int, cap: float = MAX_DELAY_SECONDS) -> float:
    """`base x 2^(attempt-1)`, capped: the upper bound of the delay after failed `attempt`."""
    exponent = min(max(attempt - 1, 0), 62)  # 2^62 s is far past any cap; avoids overflow
    return float(min(cap, base_seconds * 2**exponent))


def backoff(
    base_seconds: float,
    attempt: int,
    *,
    cap: float = MAX_DELAY_SECONDS,
    rng: random.Random | None = None,
) -> timedelta:
    """How long to wait after failed `attempt` (1 for the first failure): a random delay in
    `[nominal / 2, nominal]`, where nominal is `base x 2^(attempt-1)` capped at `cap`."""
    ceiling = nominal_delay(base_seconds, attempt, cap)
    draw = (rng or _random).uniform(0.5, 1.0)
    return timedelta(seconds=ceiling * draw)
