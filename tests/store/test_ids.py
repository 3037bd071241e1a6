"""Ids clients were told about are never given to another row, on either engine: a message
folded into another, a conversation or contact merged away leave their id unused."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from tests.conftest import Tenant
from tests.support.sessions import insert_session
from zapsync.runtime.context import AppContext
from zapsync.store.models import Contact, Conversation, Message
from zapsync.store.types import utcnow


def row_of(model: type[Any], tenant: Tenant, session_id: int, conversation_id: int, n: int) -> Any:
    org = tenant.organization_id
    if model is Contact:
        return {"organization_id": org, "phone_e164": f"+55119876500{n:02d}", "custom_fields": {}}
    if model is Conversation:
        return {
            "organization_id": org,
            "session_id": session_id,
            "chat_key": f"+55119876500{n:02d}",
            "chat_jid": f"55119876500{n:02d}@s.whatsapp.net",
        }
    return {
        "organization_id": org,
        "session_id": session_id,
        "conversation_id": conversation_id,
        "provider_message_id": f"m{n}",
        "direction": "in",
        "sender": "client",
        "type": "text",
        "body": f"mensagem {n}",
        "sent_at": utcnow(),
    }


@pytest.mark.parametrize("model", [Contact, Conversation, Message], ids=lambda m: m.__name__)
async def test_the_highest_id_deleted_is_not_given_again(
    ctx: AppContext, tenant: Tenant, model: type[Any]
) -> None:
    sid = await insert_session(ctx, tenant, "evolution")
    async with ctx.db.session() as db:
        conversation = Conversation(
            organization_id=tenant.organization_id,
            session_id=sid,
            chat_key="+5511900000000",
            chat_jid="5511900000000@s.whatsapp.net",
        )
        db.add(conversation)
        await db.flush()
        table = model.__table__

        async def add(n: int) -> int:
            stmt = insert(table).values(row_of(model, tenant, sid, conversation.id, n))
            new_id: int = (await db.execute(stmt.returning(table.c.id))).scalar_one()
            return new_id

        await add(1)
        folded = await add(2)
        await db.execute(delete(table).where(table.c.id == folded))
        await db.commit()
        later = await add(3)
        await db.commit()
        assert later > folded
        ids = (await db.scalars(select(table.c.id))).all()
        assert folded not in ids
