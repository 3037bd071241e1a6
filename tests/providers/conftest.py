"""What the adapter tests share: a real receiver for the sandbox's webhooks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.receiver import Receiver, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving("/hook") as rec:
        yield rec
