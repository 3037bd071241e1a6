"""The sandbox's Chatwoot dialect served on a free port, for the connector's tests over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.servers import serving_app
from zapsync.connectors.chatwoot.client import ChatwootClient
from zapsync.sandbox.dialects.chatwoot.state import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN
from zapsync.sandbox.server import build_sandbox_app


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

    async def do(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = await self.control.request(method, path, **kwargs)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture
async def chatwoot() -> AsyncIterator[ChatwootSandbox]:
    app = build_sandbox_app("chatwoot")
    async with (
        serving_app(app) as url,
        httpx.AsyncClient(base_url=f"{url}/_sandbox/chatwoot", timeout=60) as control,
    ):
        yield ChatwootSandbox(url, control)
