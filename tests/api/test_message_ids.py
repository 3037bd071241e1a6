"""Message ids are announced once: the gateway's echo of our own send, folded into our row,
is announced as merged (which id replaces which), and its id never names another message."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from tests.api.test_messaging import CUSTOMER, a_conversation, send
from tests.conftest import Tenant
from tests.support.inbox import collect, customer_writes, instance, messages_of, settle
from zapsync.runtime.context import AppContext
from zapsync.services.outbox.delivery import deliver_due
from zapsync.store.models import OutboxItem


async def test_a_folded_echo_is_announced_as_merged_and_its_id_never_comes_back(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, ctx: AppContext
) -> None:
    conversation_id = await a_conversation(app, client, tenant)
    await app.state.outbox.stop()
    queued = (await send(client, tenant, conversation_id, type="text", content="eco")).json()
    events = collect(ctx, "new_message", "message_merged")
    # The gateway took the message but its answer was lost; its echo came in as a message.
    inst = instance(app, queued["session_id"])
    echo = ctx.world.send(inst, f"{CUSTOMER}@s.whatsapp.net", "eco")
    await settle(app)
    (echo_row,) = [e.data for e in events if e.name == "new_message"]
    assert echo_row["provider_message_id"] == echo.id and echo_row["id"] != queued["id"]
    async with ctx.db.session() as db:
        await db.execute(update(OutboxItem).values(attempts=1))
        await db.commit()

    assert (await deliver_due(ctx)).delivered == 1
    await ctx.bus.drain()

    merged = [e for e in events if e.name == "message_merged"]
    assert [(e.data, e.conversation_id) for e in merged] == [
        (
            {"conversation_id": conversation_id, "id": queued["id"], "replaces": echo_row["id"]},
            conversation_id,
        )
    ]
    # The echo had the highest id; the next message must not be given it again.
    await customer_writes(app, queued["session_id"], CUSTOMER, "recebi, obrigado")
    ids = [m["id"] for m in await messages_of(client, tenant, conversation_id)]
    assert echo_row["id"] not in ids
    newest = [e.data["id"] for e in events if e.name == "new_message"][-1]
    assert newest > echo_row["id"]
