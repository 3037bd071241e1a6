"""Stored credentials under HKDF-derived keys: values from earlier versions (sha256-derived key)
and from a replaced ZAPSYNC_SECRET_KEY still open, and start-up rewrites them under the
current key, so the old secret can then be dropped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr
from sqlalchemy import select, update
from structlog.testing import capture_logs

from tests.conftest import Tenant, make_tenant
from tests.support.gateways import SandboxGateway, create_session, running_sandbox
from zapsync.api.app import create_app
from zapsync.runtime.context import AppContext
from zapsync.security.crypto import Cipher, CredentialsUnreadable, legacy_key
from zapsync.settings import Settings
from zapsync.store.models import Session

SECRET = "test-secret-key"  # the suite's ZAPSYNC_SECRET_KEY
NEW = SecretStr("the-new-key")


@dataclass
class Running:
    ctx: AppContext
    client: httpx.AsyncClient
    logs: list[MutableMapping[str, Any]]

    def rotation(self) -> MutableMapping[str, Any]:
        """The start-up's one line about stored credentials."""
        (line,) = [e for e in self.logs if e["event"] == "stored credentials checked"]
        return line

    async def status_of(self, tenant: Tenant, session_id: int) -> httpx.Response:
        """The live status, asked of the gateway with the session's stored credentials."""
        return await self.client.get(
            f"/api/v1/sessions/{session_id}/status", headers=tenant.headers
        )

    async def stored(self, session_id: int) -> str:
        async with self.ctx.db.session() as db:
            query = select(Session.config_encrypted).where(Session.id == session_id)
            return str(await db.scalar(query))

    async def store(self, session_id: int, token: str) -> None:
        async with self.ctx.db.session() as db:
            await db.execute(
                update(Session).where(Session.id == session_id).values(config_encrypted=token)
            )
            await db.commit()


# encrypted values a session keeps: its gateway config, webhook secret and signing key
SESSION_VALUES = 3


@asynccontextmanager
async def zapsync(settings: Settings, **changes: Any) -> AsyncIterator[Running]:
    """zapsync started with `changes` to the suite's settings, stopped after."""
    app = create_app(settings.model_copy(update=changes))
    with capture_logs() as logs:
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://z.test") as client:
                yield Running(app.state.ctx, client, logs)


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with running_sandbox("evolution") as gw:
        yield gw


async def a_session(settings: Settings, gateway: SandboxGateway) -> tuple[Tenant, int]:
    """A tenant and an Evolution session created through the API."""
    async with zapsync(settings) as z:
        tenant = await make_tenant(z.ctx, "Acme", "admin@acme.test")
        created = await create_session(z.client, tenant, gateway, gateway.new_instance())
        return tenant, created["id"]


async def test_credentials_stored_by_earlier_versions_open_and_are_rewritten_at_start(
    settings: Settings, gateway: SandboxGateway
) -> None:
    tenant, session_id = await a_session(settings, gateway)
    async with zapsync(settings) as z:
        config = z.ctx.cipher.decrypt_json(await z.stored(session_id))
        # What zapsync wrote before HKDF: Fernet under sha256(secret).
        legacy = Fernet(legacy_key(SECRET)).encrypt(json.dumps(config).encode()).decode()
        await z.store(session_id, legacy)

    async with zapsync(settings) as z:
        assert z.rotation()["rotated"] == 1
        assert (await z.status_of(tenant, session_id)).status_code == 200
        fresh = await z.stored(session_id)
        assert fresh != legacy
        with pytest.raises(InvalidToken):
            Fernet(legacy_key(SECRET)).decrypt(fresh.encode())
        assert Cipher(SECRET).decrypt_json(fresh) == config

    async with zapsync(settings) as z:
        # the config and the session's webhook secrets are checked; none needs rewriting
        assert z.rotation()["checked"] >= 2
        assert z.rotation()["rotated"] == 0
        assert await z.stored(session_id) == fresh, "a current value is left alone"


async def test_a_replaced_secret_key_still_opens_until_rotation_makes_it_unneeded(
    settings: Settings, gateway: SandboxGateway
) -> None:
    tenant, session_id = await a_session(settings, gateway)

    async with zapsync(settings, secret_key=NEW) as z:
        # the config, the webhook secret and the signing key
        assert z.rotation()["unreadable"] == SESSION_VALUES, "without the old key it cannot open"

    old = {"secret_key": NEW, "old_secret_keys": SecretStr(f"another-one, {SECRET}")}
    with capture_logs() as everything:
        async with zapsync(settings, **old) as z:
            assert (z.rotation()["rotated"], z.rotation()["unreadable"]) == (SESSION_VALUES, 0)
            assert (await z.status_of(tenant, session_id)).status_code == 200
            stored = await z.stored(session_id)
    assert SECRET not in repr(everything) and stored not in repr(everything)

    async with zapsync(settings, secret_key=NEW) as z:
        assert z.rotation()["rotated"] == 0
        assert (await z.status_of(tenant, session_id)).status_code == 200


def test_a_value_no_configured_key_opens_is_credentials_unreadable() -> None:
    token = Cipher("a-lost-key").encrypt_text("gateway api key")
    cipher = Cipher(SECRET, ["another-old-key"])
    with pytest.raises(CredentialsUnreadable, match="ZAPSYNC_SECRET_KEY"):
        cipher.decrypt_text(token)
    with pytest.raises(CredentialsUnreadable):
        cipher.rotate(token)
    assert Cipher(SECRET, ["a-lost-key"]).decrypt_text(token) == "gateway api key"


def test_the_key_is_derived_per_purpose_not_a_bare_digest() -> None:
    token = Cipher(SECRET).encrypt_text("x")
    with pytest.raises(InvalidToken):
        Fernet(legacy_key(SECRET)).decrypt(token.encode())
    with pytest.raises(CredentialsUnreadable):
        Cipher(SECRET, purpose="webhook-secrets").decrypt_text(token)
