"""Session rows made directly in the database, for tests of code after creation."""

from __future__ import annotations

from tests.conftest import Tenant
from zapsync.runtime.context import AppContext
from zapsync.store.models import Session


async def insert_session(
    ctx: AppContext,
    tenant: Tenant,
    provider: str,
    *,
    status: str = "qr_pending",
    config: dict[str, str] | None = None,
    secret: str = "hook-secret",
    signing_key: str | None = None,
    name: str = "Loja",
) -> int:
    """`signing_key` None: a row as written before there were separate signing keys (the
    gateway signs with the secret)."""
    config = (
        config
        or {
            "evolution": {"base_url": "http://127.0.0.1:9", "api_key": "k", "instance": "vendas"},
            "waha": {"base_url": "http://127.0.0.1:9", "api_key": "k", "session": "default"},
            "megaapi": {"base_url": "http://127.0.0.1:9", "token": "k", "instance_key": "m1"},
            "sandbox": {},
        }[provider]
    )
    async with ctx.db.session() as db:
        session = Session(
            organization_id=tenant.organization_id,
            created_by=tenant.user_id,
            name=name,
            provider=provider,
            gateway_key=None,
            config_encrypted=ctx.cipher.encrypt_json(config),
            webhook_secret_encrypted=ctx.cipher.encrypt_text(secret),
            webhook_signing_key_encrypted=ctx.cipher.encrypt_text(signing_key)
            if signing_key
            else None,
            status=status,
            check_failures=0,
            heal_attempts=0,
        )
        db.add(session)
        await db.commit()
        return session.id
