"""A send the gateway can never take fails at once with the gateway's reason, even when the
gateway answers it as a 500 (Evolution renders every exception so): no retries for minutes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Tenant
from tests.support.gateways import SandboxGateway, paired_conversation, running_sandbox
from tests.support.inbox import eventually
from tests.support.media_host import media_host
from zapsync.runtime.context import AppContext
from zapsync.settings import Settings
from zapsync.store.models import OutboxItem


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Retries a second apart: a retried refusal would show as attempts > 1 within the test.
    return settings.model_copy(update={"outbox_base_delay": 0.2, "outbox_max_attempts": 5})


@pytest.fixture(scope="module")
def gateway() -> Iterator[SandboxGateway]:
    with running_sandbox("evolution") as gw:
        yield gw


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    with media_host() as url:
        yield url


async def test_an_undecodable_image_fails_at_once_with_the_gateways_reason(
    client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext, gateway: SandboxGateway, files: str
) -> None:
    conversation_id, _ = await paired_conversation(client, tenant, ctx, gateway)
    resp = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers=tenant.headers,
        json={"type": "image", "url": f"{files}/broken.jpg", "caption": "catálogo"},
    )
    assert resp.status_code == 202, resp.text

    async def sent() -> list[dict[str, object]]:
        listed = await client.get(
            f"/api/v1/conversations/{conversation_id}/messages", headers=tenant.headers
        )
        return [m for m in listed.json()["messages"] if m["direction"] == "out"]

    (failed,) = await eventually(sent, lambda out: bool(out) and out[0]["ack"] == "failed", 10)
    assert failed["error"] == "Input buffer contains unsupported image format"
    async with ctx.db.session() as db:
        attempts = (await db.scalars(select(OutboxItem.attempts))).all()
    assert list(attempts) == [1]
