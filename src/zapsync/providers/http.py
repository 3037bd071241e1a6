"""One way to call a gateway over HTTP: errors become GatewayUnavailable (cannot know) or
GatewayRejected (the gateway said no), with the gateway's own reason when it gave one.

A gateway's URL is the user's to choose, so what comes back is bounded: at most
`MAX_BODY_BYTES`, within twice the call's timeout in all (a server trickling bytes resets
every read timeout), never a redirect followed, and no more of an error body than the short
reason field a gateway's JSON carries.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import httpx

from zapsync.providers.base import (
    DownloadedMedia,
    GatewayRejected,
    GatewayUnavailable,
    MediaGone,
    MediaTooLarge,
)
from zapsync.providers.permanent_errors import PermanentErrors
from zapsync.security.urls import unsafe_reason

DEFAULT_TIMEOUT = 10.0
MAX_BODY_BYTES = 64 * 1024 * 1024
REASON_CHARS = 300


def _short(text: str) -> str:
    """One line of at most REASON_CHARS: what a gateway's reason field may put in an error."""
    line = " ".join(text.split())
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"


def gateway_reason(resp: httpx.Response, body: bytes | None = None) -> str:
    """The human reason in a gateway's JSON error body (Evolution, WAHA, MegaAPI shapes); a
    body that is not JSON is never echoed (it may be any page the URL points at). `body` is
    the response's, read already (streamed)."""
    fallback = f"HTTP {resp.status_code} {resp.reason_phrase}".strip()
    try:
        data = json.loads(resp.content if body is None else body)
    except (ValueError, UnicodeDecodeError):
        return fallback
    if isinstance(data, dict):
        response = data.get("response")
        if isinstance(response, dict) and response.get("message"):
            msg = response["message"]
            return _short("; ".join(map(str, msg)) if isinstance(msg, list) else str(msg))
        for key in ("message", "error", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return _short(value)
            if isinstance(value, list) and value:
                return _short("; ".join(map(str, value)))
    return fallback


def transport_failure(exc: httpx.HTTPError, method: str, url: str) -> str:
    # httpx-aiohttp reports a refused connection as ConnectTimeout; tell them apart.
    refused = isinstance(exc.__cause__, aiohttp.ClientConnectorError)
    if isinstance(exc, httpx.TimeoutException) and not refused:
        return f"gateway timed out on {method} {url}"
    return f"gateway unreachable on {method} {url}: {exc or exc.__class__.__name__}"


class _TooLarge(Exception):
    pass


async def _bounded_body(resp: httpx.Response, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in resp.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    expect: type = object,
    timeout: float = DEFAULT_TIMEOUT,
    permanent: PermanentErrors | None = None,
    max_bytes: int | None = None,
    **kwargs: Any,
) -> Any:
    """Send one request and return its JSON body, or raise a GatewayError.

    `expect` (dict or list) is checked so a 200 with the wrong shape counts as unavailable.
    A 5xx the gateway's `permanent` table knows is a refusal (GatewayRejected), not an outage.
    A body past `max_bytes` (the caller's own limit, as for media) is MediaTooLarge.
    """
    try:
        async with asyncio.timeout(2 * timeout):
            async with client.stream(method, url, timeout=timeout, **kwargs) as resp:
                body = await _bounded_body(resp, max_bytes or MAX_BODY_BYTES)
    except TimeoutError:
        raise GatewayUnavailable(f"gateway timed out on {method} {url}") from None
    except _TooLarge:
        if max_bytes is not None:
            raise MediaTooLarge(f"the gateway's answer is larger than {max_bytes} bytes") from None
        raise GatewayUnavailable(
            f"gateway sent more than {MAX_BODY_BYTES // (1024 * 1024)} MB on {method} {url}"
        ) from None
    except httpx.HTTPError as exc:
        refused = unsafe_reason(exc)
        if refused is not None:
            raise GatewayRejected(f"zapsync does not call {url}: {refused}") from None
        raise GatewayUnavailable(transport_failure(exc, method, url)) from None
    if resp.status_code >= 500:
        reason = gateway_reason(resp, body)
        if permanent is not None and permanent.is_permanent(resp.status_code, reason):
            raise GatewayRejected(reason, status_code=resp.status_code)
        raise GatewayUnavailable(
            f"gateway error {resp.status_code}: {reason}", status_code=resp.status_code
        )
    if resp.status_code >= 400:
        raise GatewayRejected(gateway_reason(resp, body), status_code=resp.status_code)
    if resp.is_redirect:
        raise GatewayRejected(
            f"gateway answered {resp.status_code} (a redirect) on {method} {url}; zapsync does "
            "not follow a gateway's redirects: set base_url to where it points",
            status_code=resp.status_code,
        )
    if not body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise GatewayUnavailable(
            f"gateway sent a body that is not JSON on {method} {url}"
        ) from None
    if expect is not object and not isinstance(data, expect):
        raise GatewayUnavailable(
            f"gateway sent {type(data).__name__} where {expect.__name__} was expected"
        )
    return data


def _small(resp: httpx.Response) -> bool:
    declared = resp.headers.get("content-length", "")
    return declared.isdigit() and int(declared) <= 64 * 1024


async def request_file(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    timeout: float = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> DownloadedMedia:
    """GET a file (a gateway's media URL) of at most `max_bytes`: MediaGone on 404/410,
    MediaTooLarge past the limit, and the errors of `request_json` otherwise."""
    try:
        async with asyncio.timeout(2 * timeout):
            async with client.stream("GET", url, timeout=timeout, **kwargs) as resp:
                if resp.status_code < 300:
                    body = await _bounded_body(resp, max_bytes)
                else:
                    # Only an error's short reason is wanted; the rest is never read.
                    body = await resp.aread() if _small(resp) else b""
    except TimeoutError:
        raise GatewayUnavailable(f"gateway timed out on GET {url}") from None
    except _TooLarge:
        raise MediaTooLarge(f"the media is larger than {max_bytes} bytes") from None
    except httpx.HTTPError as exc:
        refused = unsafe_reason(exc)
        if refused is not None:
            raise GatewayRejected(f"zapsync does not call {url}: {refused}") from None
        raise GatewayUnavailable(transport_failure(exc, "GET", url)) from None
    if resp.status_code in (404, 410):
        raise MediaGone(gateway_reason(resp, body), status_code=resp.status_code)
    if resp.status_code >= 500:
        raise GatewayUnavailable(
            f"gateway error {resp.status_code}: {gateway_reason(resp, body)}",
            status_code=resp.status_code,
        )
    if resp.status_code >= 300:
        raise GatewayRejected(gateway_reason(resp, body), status_code=resp.status_code)
    return DownloadedMedia(body, resp.headers.get("content-type"))
