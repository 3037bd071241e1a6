"""Connecting an organization to Chatwoot: create, change, list and delete integrations.

The credentials are tested against Chatwoot before anything is stored (a failure is refused
with Chatwoot's own reason); the access token and Chatwoot's webhook secret are encrypted at
rest and never shown again; the answer carries the webhook URL to paste into Chatwoot."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.connectors.chatwoot import ChatwootClient, ChatwootError
from zapsync.connectors.chatwoot.client import DEFAULT_API_URL, ConnectionCheck
from zapsync.runtime.context import AppContext
from zapsync.runtime.urls import integration_webhook_url
from zapsync.security.tokens import hash_token
from zapsync.security.urls import UnsafeUrl, url_policy
from zapsync.services.accounts import Principal
from zapsync.services.errors import Conflict, Invalid, NotFound
from zapsync.store import external_refs, integrations
from zapsync.store import sessions as session_store
from zapsync.store.models import Integration

log = structlog.get_logger(__name__)

CHATWOOT = "chatwoot"
PROVIDERS = (CHATWOOT,)
CREATE_INBOX = "create"
INBOX_NAME = "WhatsApp (zapsync)"


@dataclass(frozen=True, slots=True)
class ChatwootConfig:
    """An integration's settings, as stored in `integrations.config` (no secret in here)."""

    account_id: int
    api_url: str
    inbox_id: int | None
    session_ids: tuple[int, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "api_url": self.api_url,
            "inbox_id": self.inbox_id,
            "session_ids": list(self.session_ids),
        }


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    webhook_secret: str | None


@dataclass(frozen=True, slots=True)
class IntegrationView:
    """An integration as its owner may see it: never a secret but the webhook URL's token."""

    integration: Integration
    config: ChatwootConfig
    webhook_url: str
    signed: bool  # a webhook secret is set: deliveries must carry Chatwoot's signature
    connection: ConnectionCheck | None = None  # what the test learned, when one just ran


def config_of(integration: Integration) -> ChatwootConfig:
    raw = integration.config or {}
    inbox = raw.get("inbox_id")
    return ChatwootConfig(
        account_id=int(raw.get("account_id") or 0),
        api_url=str(raw.get("api_url") or DEFAULT_API_URL),
        inbox_id=int(inbox) if isinstance(inbox, int) else None,
        session_ids=tuple(int(s) for s in raw.get("session_ids") or ()),
    )


def credentials_of(ctx: AppContext, integration: Integration) -> Credentials:
    stored = ctx.cipher.decrypt_json(integration.credentials_encrypted)
    return Credentials(str(stored.get("api_key") or ""), stored.get("webhook_secret") or None)


def webhook_token_of(ctx: AppContext, integration: Integration) -> str:
    if integration.webhook_token_encrypted is None:
        return ""
    return ctx.cipher.decrypt_text(integration.webhook_token_encrypted)


def client_for(ctx: AppContext, integration: Integration) -> ChatwootClient:
    """A client of the integration's account over zapsync's guarded HTTP pool."""
    config = config_of(integration)
    return _client(ctx, credentials_of(ctx, integration).api_key, config.account_id, config.api_url)


def _client(ctx: AppContext, api_key: str, account_id: int | str, api_url: str) -> ChatwootClient:
    try:
        return ChatwootClient(
            api_key,
            account_id,
            api_url,
            http=ctx.gateways.client,
            bare_get=ctx.gateways.bare_get,
            timeout=ctx.settings.chatwoot_timeout,
            backoff_base=ctx.settings.chatwoot_backoff_base,
        )
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def view_of(
    ctx: AppContext, integration: Integration, connection: ConnectionCheck | None = None
) -> IntegrationView:
    return IntegrationView(
        integration=integration,
        config=config_of(integration),
        webhook_url=integration_webhook_url(
            ctx.settings, integration.id, webhook_token_of(ctx, integration)
        ),
        signed=credentials_of(ctx, integration).webhook_secret is not None,
        connection=connection,
    )


async def list_integrations(
    ctx: AppContext, db: AsyncSession, principal: Principal
) -> list[IntegrationView]:
    found = await integrations.integrations_of(db, principal.organization_id)
    return [view_of(ctx, i) for i in found]


async def get_integration(
    db: AsyncSession, principal: Principal, integration_id: int
) -> Integration:
    found = await integrations.integration_of(db, principal.organization_id, integration_id)
    if found is None:
        raise NotFound(f"no integration {integration_id}")
    return found


async def create_integration(
    ctx: AppContext,
    db: AsyncSession,
    principal: Principal,
    *,
    provider: str,
    api_key: str,
    config: Mapping[str, Any],
) -> IntegrationView:
    """Test the credentials, then store the integration (and create its API inbox when
    `inbox_id` is "create"); nothing is stored when Chatwoot refuses."""
    if provider not in PROVIDERS:
        raise Invalid(f"unknown provider {provider!r}; zapsync connects to {', '.join(PROVIDERS)}")
    org = principal.organization_id
    if await integrations.integrations_of(db, org, provider):
        raise Conflict(f"this organization already has a {provider} integration; PATCH it")
    wanted = await _read_config(ctx, db, org, config)
    secret = _secret_of(config)
    client = _client(ctx, _key_of(api_key), wanted.account_id, wanted.api_url)
    check = await _test(client)
    integration, token = await add_tested_integration(
        ctx, db, org, provider, _key_of(api_key), wanted, secret
    )
    inbox = config.get("inbox_id")
    inbox_id = await _inbox_for(ctx, client, check, inbox, integration.id, token)
    integration.config = {**wanted.as_json(), "inbox_id": inbox_id}
    await db.commit()
    log.info("integration created", integration_id=integration.id, provider=provider,
             account_id=wanted.account_id)  # fmt: skip
    return view_of(ctx, integration, check)


async def add_tested_integration(
    ctx: AppContext,
    db: AsyncSession,
    organization_id: int,
    provider: str,
    api_key: str,
    config: ChatwootConfig,
    webhook_secret: str | None,
) -> tuple[Integration, str]:
    """Store an integration whose credentials were tested (or that zapsync serves itself, as
    the demo's): its key encrypted, a new webhook token; the token too. Not committed."""
    token = secrets.token_urlsafe(24)
    integration = await integrations.add_integration(
        db,
        Integration(
            organization_id=organization_id,
            provider=provider,
            credentials_encrypted=ctx.cipher.encrypt_json(
                {"api_key": api_key, "webhook_secret": webhook_secret}
            ),
            config=config.as_json(),
            status="connected",
            webhook_token_encrypted=ctx.cipher.encrypt_text(token),
            webhook_token_hash=hash_token(token),
        ),
    )
    return integration, token


async def update_integration(
    ctx: AppContext,
    db: AsyncSession,
    principal: Principal,
    integration_id: int,
    *,
    api_key: str | None,
    config: Mapping[str, Any],
) -> IntegrationView:
    """Change the sessions, inbox, account or key; the result is tested again first."""
    integration = await get_integration(db, principal, integration_id)
    current = config_of(integration)
    merged = {**current.as_json(), **{k: v for k, v in config.items() if k != "webhook_secret"}}
    wanted = await _read_config(ctx, db, principal.organization_id, merged)
    credentials = credentials_of(ctx, integration)
    key = _key_of(api_key) if api_key is not None else credentials.api_key
    secret = _secret_of(config) if "webhook_secret" in config else credentials.webhook_secret
    client = _client(ctx, key, wanted.account_id, wanted.api_url)
    check = await _test(client)
    token = webhook_token_of(ctx, integration)
    inbox_id = await _inbox_for(ctx, client, check, merged.get("inbox_id"), integration.id, token)
    integration.config = {**wanted.as_json(), "inbox_id": inbox_id}
    integration.credentials_encrypted = ctx.cipher.encrypt_json(
        {"api_key": key, "webhook_secret": secret}
    )
    integration.status = "connected"
    integration.last_error = None
    await db.commit()
    log.info("integration changed", integration_id=integration.id)
    return view_of(ctx, integration, check)


async def delete_integration(db: AsyncSession, principal: Principal, integration_id: int) -> None:
    """Forget the integration and the ids it mapped; zapsync's own rows stay."""
    integration = await get_integration(db, principal, integration_id)
    await external_refs.delete_refs(db, principal.organization_id, integration.provider)
    await integrations.delete_integration(db, integration)
    await db.commit()
    log.info("integration deleted", integration_id=integration_id)


async def _test(client: ChatwootClient) -> ConnectionCheck:
    try:
        return await client.test_connection()
    except ChatwootError as exc:
        log.info("chatwoot connection test failed", reason=exc.reason, status=exc.status)
        raise Invalid(f"Connection test failed: {exc.reason}") from None


async def _inbox_for(
    ctx: AppContext,
    client: ChatwootClient,
    check: ConnectionCheck,
    wanted: Any,
    integration_id: int,
    token: str,
) -> int | None:
    """The API inbox WhatsApp is mirrored into: one of the account's, or a new one."""
    if wanted is None or wanted == "":
        return None
    if wanted == CREATE_INBOX:
        url = integration_webhook_url(ctx.settings, integration_id, token)
        try:
            created = await client.create_api_inbox(INBOX_NAME, webhook_url=url)
        except ChatwootError as exc:
            raise Invalid(f"Connection test failed: creating the inbox: {exc.reason}") from None
        return int(created["id"])
    if not isinstance(wanted, int) or isinstance(wanted, bool):
        raise Invalid('config.inbox_id is an inbox id or "create"')
    inbox = next((i for i in check.inboxes if i.get("id") == wanted), None)
    if inbox is None:
        raise Invalid(
            f"Connection test failed: inbox {wanted} is not in account {check.account_id}"
        )
    if inbox.get("channel_type") not in (None, "Channel::Api"):
        raise Invalid(
            f"inbox {wanted} is a {inbox.get('channel_type')} inbox; WhatsApp is mirrored into an"
            ' API inbox (pass "create" to have one made)'
        )
    return wanted


async def _read_config(
    ctx: AppContext, db: AsyncSession, organization_id: int, config: Mapping[str, Any]
) -> ChatwootConfig:
    account = str(config.get("account_id") or "").strip()
    if not account.isdigit():
        raise Invalid("config.account_id is Chatwoot's account number, like 123")
    api_url = str(config.get("api_url") or DEFAULT_API_URL).strip().rstrip("/")
    try:
        await url_policy(ctx.settings).check(api_url, "config.api_url")
    except UnsafeUrl as exc:
        raise Invalid(str(exc)) from None
    raw_sessions = config.get("session_ids") or []
    if not isinstance(raw_sessions, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in raw_sessions
    ):
        raise Invalid("config.session_ids is a list of session ids")
    session_ids = tuple(dict.fromkeys(raw_sessions))
    for session_id in session_ids:
        session = await session_store.session_by_id(db, session_id)
        if session is None or session.organization_id != organization_id or session.archived_at:
            raise Invalid(f"config.session_ids: no session {session_id} in this organization")
    inbox = config.get("inbox_id")
    return ChatwootConfig(
        account_id=int(account),
        api_url=api_url,
        inbox_id=inbox if isinstance(inbox, int) and not isinstance(inbox, bool) else None,
        session_ids=session_ids,
    )


def _key_of(api_key: str) -> str:
    key = (api_key or "").strip()
    if not key:
        raise Invalid("api_key is the access token of a Chatwoot user (Profile settings)")
    return key


def _secret_of(config: Mapping[str, Any]) -> str | None:
    secret = config.get("webhook_secret")
    if secret is None or secret == "":
        return None
    if not isinstance(secret, str):
        raise Invalid("config.webhook_secret is the secret Chatwoot shows for the webhook")
    return secret
