"""What a real Evolution 2.3.6 does that its documentation does not say, reproduced by the
sandbox's Evolution dialect over real HTTP and handled by the adapter: `logout.instance` with
`data: null`, a one-sided `messageTimestamp` filter that is ignored, permanent errors answered
as 500, saved names only in `findContacts`, read receipts for `@lid` chats."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.conftest import Tenant
from tests.support.gateways import control, serving_dialect
from tests.support.receiver import Receiver
from tests.support.sessions import insert_session
from zapsync.providers.base import WebhookTarget
from zapsync.providers.evolution import EvolutionGateway
from zapsync.sandbox.dialects.evolution import GLOBAL_API_KEY
from zapsync.services.context import AppContext
from zapsync.store.models import Session

SECRET = "s3cr3t-for-tests"
PHONE = "5511900000001"
CUSTOMER = "5511988887777@s.whatsapp.net"
HOOK_SECRET = {"X-Zapsync-Token": "hook-secret"}  # the one `insert_session` stores


@pytest.fixture
def sandbox() -> Iterator[str]:
    with serving_dialect("evolution", retry_delay=0.01) as url:
        yield url


@pytest.fixture
async def gw(sandbox: str) -> AsyncIterator[EvolutionGateway]:
    gateway = EvolutionGateway(sandbox, GLOBAL_API_KEY, "vendas", timeout=2.0)
    yield gateway
    await gateway.aclose()


@pytest.fixture
async def raw(sandbox: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox, headers={"apikey": GLOBAL_API_KEY}) as client:
        yield client


async def paired(
    gw: EvolutionGateway, raw: httpx.AsyncClient, hook: str = "http://127.0.0.1:9/none"
) -> None:
    await gw.create_instance(WebhookTarget(hook, SECRET))
    await control(raw, "/instances/vendas/scan", {"phone": PHONE, "push_name": "Loja Centro"})


# --- logout.instance ---------------------------------------------------------------------


async def test_a_logout_is_announced_with_null_data_and_stored_as_logged_out(
    gw: EvolutionGateway,
    raw: httpx.AsyncClient,
    receiver: Receiver,
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
) -> None:
    sid = await insert_session(ctx, tenant, "evolution", status="connected")
    await paired(gw, raw, receiver.url)
    await gw.logout()
    [logout] = await receiver.wait_for("logout.instance")
    assert logout.doc["data"] is None and logout.doc["instance"] == "vendas"

    # Refused with a 400, Evolution would never send it again: it must be taken.
    resp = await client.post(
        f"/api/v1/webhooks/evolution/{sid}", content=logout.body, headers=HOOK_SECRET
    )
    assert resp.status_code == 200, resp.text
    async with ctx.db.session() as db:
        session = await db.get_one(Session, sid)
        assert (session.status, session.status_reason) == ("logged_out", "gateway reports logout")
