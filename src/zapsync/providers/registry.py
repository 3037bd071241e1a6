"""Builds the Gateway adapter for one session from its provider name and decrypted config."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from zapsync.providers.base import Gateway
from zapsync.sandbox.world import World
from zapsync.security.urls import GuardedResolver, GuardedTransport, UrlPolicy

PROVIDERS = ("evolution", "waha", "megaapi", "sandbox")


class GatewayFactory:
    """Owns the shared HTTP client (one connection pool for every gateway call)."""

    def __init__(
        self,
        world: World,
        timeout: float,
        max_connections: int = 200,
        policy: UrlPolicy | None = None,
    ) -> None:
        self.world = world
        self.timeout = timeout
        guard = policy or UrlPolicy()
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )

        def pool() -> aiohttp.ClientSession:
            # What AiohttpTransport builds by default, with the URL guard as its resolver: every
            # connection to a gateway is checked on the addresses it really goes to.
            connector = aiohttp.TCPConnector(
                limit=max_connections,
                keepalive_timeout=limits.keepalive_expiry,
                ssl=httpx.create_ssl_context(),
                resolver=GuardedResolver(guard),
            )
            return aiohttp.ClientSession(connector=connector)

        # httpcore's pool costs O(connections x waiting requests) per request: ~8 ms of CPU
        # each at 50 in flight on this class of machine. aiohttp's pool behind the same httpx
        # API costs ~1 ms (bench/status_sync.py).
        self._guard = guard
        self._transport = AiohttpTransport(limits=limits, client=pool)
        self.client = httpx.AsyncClient(
            timeout=timeout, transport=GuardedTransport(self._transport, guard), limits=limits
        )

    async def bare_get(
        self, url: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> tuple[int, bytes] | None:
        """A GET over the same pool and guard, without httpx's request and response objects:
        the status and the body, or None when no answer came (the caller asks again through
        `client`, which says why). httpx's objects cost ~1 ms of CPU a request, most of what a
        list page costs a pull (bench/chatwoot_pull.py)."""
        if self._guard.host_refusal(urlsplit(url).hostname or "") is not None:
            return None
        try:
            async with self._session().get(
                url,
                params=params,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                return resp.status, await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError):
            return None

    def _session(self) -> aiohttp.ClientSession:
        """The transport's aiohttp session, made as its first request would make it."""
        transport = self._transport
        if not isinstance(transport.client, aiohttp.ClientSession):
            transport.client = transport.get_client()
        return transport.client

    def build(self, provider: str, config: Mapping[str, str], instance: str) -> Gateway:
        """`instance` names the sandbox instance (zapsync creates one per sandbox session)."""
        if provider == "evolution":
            from zapsync.providers.evolution.client import EvolutionGateway

            return EvolutionGateway(
                config["base_url"],
                config["api_key"],
                config["instance"],
                client=self.client,
                timeout=self.timeout,
            )
        if provider == "waha":
            from zapsync.providers.waha.client import WahaGateway

            return WahaGateway(
                config["base_url"],
                config["api_key"],
                config["session"],
                client=self.client,
                timeout=self.timeout,
            )
        if provider == "megaapi":
            from zapsync.providers.megaapi.client import MegaApiGateway

            return MegaApiGateway(
                config["base_url"],
                config["token"],
                config["instance_key"],
                client=self.client,
                timeout=self.timeout,
            )
        if provider == "sandbox":
            from zapsync.providers.sandbox.adapter import SandboxGateway

            return SandboxGateway(self.world, instance)
        raise ValueError(f"unknown provider {provider!r}")

    async def aclose(self) -> None:
        await self.client.aclose()
