"""Which addresses zapsync lets a user-given URL reach: a session's `base_url` (zapsync calls
it) and a send's media URL (the gateway, beside zapsync, downloads it).

Refused: link-local addresses (169.254.0.0/16, where every cloud answers its metadata
service, and fe80::/10), fd00::/8 (AWS's IPv6 metadata lives there), Alibaba's
100.100.100.200, the unspecified, multicast and reserved ranges, and the metadata host names.
The check is on the addresses a name resolves to, not only on the literal; IPv4 embedded in
IPv6 (::ffff:a.b.c.d, 64:ff9b::a.b.c.d) counts as that IPv4. Loopback and private LANs stay
allowed: self-hosted gateways and the sandbox live there. ZAPSYNC_URL_ALLOW_NETWORKS exempts
networks an operator knows to be safe.

`UrlPolicy.check` answers before anything is stored; `GuardedResolver` and `GuardedTransport`
make the same decision for every connection the gateway client opens, so a name that later
resolves elsewhere (DNS rebinding) is refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx
from aiohttp.abc import ResolveResult

if TYPE_CHECKING:
    from zapsync.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_REFUSED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("169.254.0.0/16", "a link-local address (where cloud metadata services answer)"),
        ("100.100.100.200/32", "a cloud metadata address"),
        ("0.0.0.0/8", "an unspecified address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("fe80::/10", "a link-local address"),
        ("fd00::/8", "a unique-local fd00::/8 address (where cloud metadata services answer)"),
        ("::/128", "an unspecified address"),
        ("ff00::/8", "a multicast address"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
RESOLVE_SECONDS = 5.0


class UnsafeUrl(ValueError):
    """A URL zapsync will not reach; `reason` says why, fit to show the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsafeAddress(OSError):
    """Raised inside a connection attempt (the resolver); carries the same reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _as_ipv4(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """`10.9.0.0/16, fd12::/16` -> networks; ValueError naming the one that is not."""
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP network (like 10.0.0.0/8)") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    allowed: tuple[IPNetwork, ...] = ()

    def refused_as(self, address: str | IPAddress) -> str | None:
        """What kind of refused address `address` is ("a link-local address"), or None."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        plain = _as_ipv4(ip)
        if any(ip in net or plain in net for net in self.allowed):
            return None
        for net, label in _REFUSED:
            if plain.version == net.version and plain in net:
                return label
        return None

    def host_refusal(self, host: str) -> str | None:
        """Why `host` (a name or a literal address) may not be reached, before resolving."""
        name = host.strip("[]").rstrip(".").lower()
        if name in METADATA_HOSTS:
            return f"{name} is a cloud metadata host"
        try:
            ip = ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            return None
        label = self.refused_as(ip)
        return f"{name} is {label}" if label else None

    def resolved_refusal(self, host: str, addresses: Iterable[str]) -> str | None:
        """Why `host` may not be reached, given the addresses it resolved to."""
        for address in addresses:
            label = self.refused_as(address.split("%", 1)[0])
            if label is not None:
                return f"{host} resolves to {address}, {label}"
        return None

    async def check(self, url: str, what: str = "the URL") -> None:
        """UnsafeUrl unless `url` is an http(s) URL whose host and addresses are allowed.

        A name that does not resolve here passes: it reaches nothing from here either, and
        the connection-time check still stands between it and an address that is refused."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise UnsafeUrl(f"{what} is not a valid URL: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise UnsafeUrl(f"{what} must be an http:// or https:// URL with a host")
        reason = self.host_refusal(parsed.host)
        if reason is None:
            reason = self.resolved_refusal(parsed.host, await resolve(parsed.host))
        if reason is not None:
            raise UnsafeUrl(f"zapsync does not reach {what}: {reason}")


def url_policy(settings: Settings) -> UrlPolicy:
    return UrlPolicy(parse_networks(settings.url_allow_networks))


async def resolve(host: str) -> list[str]:
    """The addresses `host` resolves to here; none when it does not resolve (in time)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


class GuardedResolver(aiohttp.ThreadedResolver):
    """aiohttp's resolver, refusing a name that resolves to a refused address."""

    def __init__(self, policy: UrlPolicy) -> None:
        super().__init__()
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        reason = self._policy.host_refusal(host)
        results = [] if reason else await super().resolve(host, port, family)
        reason = reason or self._policy.resolved_refusal(host, (r["host"] for r in results))
        if reason is not None:
            raise UnsafeAddress(reason)
        return results


class GuardedTransport(httpx.AsyncBaseTransport):
    """Refuses a request to a literal address the policy refuses (aiohttp connects to those
    without asking the resolver), then hands it on."""

    def __init__(self, inner: httpx.AsyncBaseTransport, policy: UrlPolicy) -> None:
        self._inner = inner
        self._policy = policy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        reason = self._policy.host_refusal(request.url.host)
        if reason is not None:
            raise httpx.ConnectError(reason, request=request) from UnsafeAddress(reason)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def unsafe_reason(exc: BaseException) -> str | None:
    """The policy's reason when `exc` (an httpx error) comes from a refused address."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, UnsafeAddress):
            return seen.reason
        inner: Any = getattr(seen, "os_error", None)
        if isinstance(inner, UnsafeAddress):
            return inner.reason
        seen = seen.__cause__ or seen.__context__
    return None
