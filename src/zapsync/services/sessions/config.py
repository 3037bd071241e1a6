"""Per-gateway session config: what each provider needs, and which instance it names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from zapsync.providers.registry import PROVIDERS
from zapsync.security.urls import UnsafeUrl, UrlPolicy
from zapsync.services.errors import Invalid

REQUIRED: dict[str, tuple[str, ...]] = {
    "evolution": ("base_url", "api_key", "instance"),
    "waha": ("base_url", "api_key", "session"),
    "megaapi": ("base_url", "token", "instance_key"),
    "sandbox": (),
}

# The config field that names the gateway-side instance, for the one-instance-once rule.
INSTANCE_FIELD = {"evolution": "instance", "waha": "session", "megaapi": "instance_key"}


def validate_config(provider: str, config: Mapping[str, Any]) -> dict[str, str]:
    if provider not in PROVIDERS:
        raise Invalid(f"unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}")
    missing = [k for k in REQUIRED[provider] if not str(config.get(k) or "").strip()]
    if missing:
        raise Invalid(f"{provider} config needs {', '.join(missing)}")
    clean = {k: str(config[k]).strip() for k in REQUIRED[provider]}
    if "base_url" in clean:
        if not clean["base_url"].startswith(("http://", "https://")):
            raise Invalid("config.base_url must start with http:// or https://")
        try:
            netloc = urlsplit(clean["base_url"]).netloc
        except ValueError:
            raise Invalid("config.base_url is not a URL") from None
        if "@" in netloc:
            # The key goes in api_key/token; a user:pw@ would also clash with the gateway's
            # own Authorization header.
            raise Invalid("credentials in base_url are not allowed: give the key in the config")
        clean["base_url"] = clean["base_url"].rstrip("/")
    return clean


async def check_base_url(policy: UrlPolicy, clean: Mapping[str, str]) -> None:
    """422 for a base_url whose host is, or resolves to, an address zapsync never calls
    (cloud metadata, link-local); loopback and LAN gateways pass."""
    if "base_url" in clean:
        try:
            await policy.check(clean["base_url"], "config.base_url")
        except UnsafeUrl as exc:
            raise Invalid(exc.reason) from None


def gateway_key(provider: str, config: Mapping[str, str], session_ref: str) -> str:
    """Identifies the gateway-side instance; two sessions may not share one in an org."""
    if provider == "sandbox":
        return f"sandbox|{session_ref}"
    return f"{provider}|{config['base_url']}|{config[INSTANCE_FIELD[provider]]}"


def identity_key(provider: str, identity: str) -> str:
    """The instance as the gateway itself names it (Evolution's `instanceId`): the same
    instance reached by another URL gets the same key."""
    return f"{provider}|id|{identity}"
