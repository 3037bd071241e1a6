"""One way to call a gateway over HTTP: errors become GatewayUnavailable (cannot know) or
GatewayRejected (the gateway said no), with the gateway's own reason when it gave one."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import httpx

from zapsync.providers.base import GatewayRejected, GatewayUnavailable
from zapsync.providers.permanent_errors import PermanentErrors

DEFAULT_TIMEOUT = 10.0


def gateway_reason(resp: httpx.Response) -> str:
    """The human reason in a gateway's error body (Evolution, WAHA, MegaAPI shapes)."""
    try:
        data = resp.json()
    except ValueError:
        text = resp.text.strip()
        return text[:200] or resp.reason_phrase
    if isinstance(data, dict):
        response = data.get("response")
        if isinstance(response, dict) and response.get("message"):
            msg = response["message"]
            return "; ".join(map(str, msg)) if isinstance(msg, list) else str(msg)
        for key in ("message", "error", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, list) and value:
                return "; ".join(map(str, value))
    return resp.reason_phrase or f"HTTP {resp.status_code}"


def transport_failure(exc: httpx.HTTPError, method: str, url: str) -> str:
    # httpx-aiohttp reports a refused connection as ConnectTimeout; tell them apart.
    refused = isinstance(exc.__cause__, aiohttp.ClientConnectorError)
    if isinstance(exc, httpx.TimeoutException) and not refused:
        return f"gateway timed out on {method} {url}"
    return f"gateway unreachable on {method} {url}: {exc or exc.__class__.__name__}"


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    expect: type = object,
    permanent: PermanentErrors | None = None,
    **kwargs: Any,
) -> Any:
    """Send one request and return its JSON body, or raise a GatewayError.

    `expect` (dict or list) is checked so a 200 with the wrong shape counts as unavailable.
    A 5xx the gateway's `permanent` table knows is a refusal (GatewayRejected), not an outage.
    """
    try:
        resp = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise GatewayUnavailable(transport_failure(exc, method, url)) from None
    if resp.status_code >= 500:
        reason = gateway_reason(resp)
        if permanent is not None and permanent.is_permanent(resp.status_code, reason):
            raise GatewayRejected(reason, status_code=resp.status_code)
        raise GatewayUnavailable(
            f"gateway error {resp.status_code}: {reason}", status_code=resp.status_code
        )
    if resp.status_code >= 400:
        raise GatewayRejected(gateway_reason(resp), status_code=resp.status_code)
    if not resp.content:
        return None
    try:
        data = resp.json()
    except (ValueError, json.JSONDecodeError):
        raise GatewayUnavailable(
            f"gateway sent a body that is not JSON on {method} {url}"
        ) from None
    if expect is not object and not isinstance(data, expect):
        raise GatewayUnavailable(
            f"gateway sent {type(data).__name__} where {expect.__name__} was expected"
        )
    return data
