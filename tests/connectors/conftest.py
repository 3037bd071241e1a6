"""The sandbox's Chatwoot dialect served on a free port, for the connector's tests over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.support.servers import serving_app, serving_zapsync
from zapsync.connectors.chatwoot.client import ChatwootClient
from zapsync.sandbox.dialects.chatwoot.state import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN
from zapsync.sandbox.server import build_sandbox_app
from zapsync.settings import Settings


@dataclass
class ChatwootSandbox:
    url: str
    control: httpx.AsyncClient  # the control API, /_sandbox/chatwoot

    def client(self, **options: Any) -> ChatwootClient:
        """A client of the sandbox account; 429 waits shrunk to milliseconds."""
        settings: dict[str, Any] = {"backoff_base": 0.005, "backoff_cap": 0.05}
        settings.update(options)
        api_key = settings.pop("api_key", SANDBOX_TOKEN)
        account_id = settings.pop("account_id", SANDBOX_ACCOUNT_ID)
        return ChatwootClient(api_key, account_id, self.url, **settings)

    async def toggled(self, display_id: int | None = None) -> list[str]:
        """The statuses zapsync set in the sandbox's Chatwoot (`toggle_status`), in order: of
        every conversation, or of one."""
        path = "/toggle_status" if display_id is None else f"/{display_id}/toggle_status"
        writes = await self.do("GET", "/writes")
        return [w["body"]["status"] for w in writes if w["path"].endswith(path)]

    async def do(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = await self.control.request(method, path, **kwargs)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # 429s and outages waited out in milliseconds, not Chatwoot's real seconds
    return settings.model_copy(update={"chatwoot_backoff_base": 0.002})


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """zapsync served in a process of its own, as Chatwoot's webhooks reach it."""
    with serving_zapsync(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client


@pytest.fixture
async def chatwoot() -> AsyncIterator[ChatwootSandbox]:
    app = build_sandbox_app("chatwoot")
    async with (
        serving_app(app) as url,
        httpx.AsyncClient(base_url=f"{url}/_sandbox/chatwoot", timeout=60) as control,
    ):
        yield ChatwootSandbox(url, control)


class ChatwootTeam:
    """A tenant on zapsync's API beside the sandbox's Chatwoot, connecting an integration."""

    def __init__(self, api: httpx.AsyncClient, tenant: Tenant, chatwoot: ChatwootSandbox) -> None:
        self.api = api
        self.tenant = tenant
        self.chatwoot = chatwoot
        self.integration: dict[str, Any] = {}

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = await self.api.request(method, path, headers=self.tenant.headers, **kwargs)
        assert resp.is_success, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json()

    async def connect(self, inbox_id: int | str, session_ids: list[int] | None = None) -> None:
        """The sandbox account connected, its inbox `inbox_id` ("create": a new one) bridged
        to `session_ids`."""
        config: dict[str, Any] = {
            "account_id": str(SANDBOX_ACCOUNT_ID),
            "api_url": self.chatwoot.url,
            "inbox_id": inbox_id,
        }
        if session_ids is not None:
            config["session_ids"] = session_ids
        self.integration = await self.call(
            "POST",
            "/api/v1/integrations",
            json={"provider": "chatwoot", "api_key": SANDBOX_TOKEN, "config": config},
        )
