"""zapsync's own session statuses and the mapping from each gateway's values."""

from __future__ import annotations

from enum import StrEnum


class SessionStatus(StrEnum):
    # Stored before the gateway is called, so webhooks it sends meanwhile find the session.
    CREATING = "creating"
    CONNECTED = "connected"
    CONNECTING = "connecting"
    QR_PENDING = "qr_pending"
    DISCONNECTED = "disconnected"
    LOGGED_OUT = "logged_out"
    FAILED = "failed"


class StatusSource(StrEnum):
    CHECK = "check"
    WEBHOOK = "webhook"
    MANUAL = "manual"
    HEAL = "heal"


_EVOLUTION = {
    "open": SessionStatus.CONNECTED,
    "connecting": SessionStatus.CONNECTING,
    "close": SessionStatus.DISCONNECTED,
    "refused": SessionStatus.FAILED,
}

_WAHA = {
    "WORKING": SessionStatus.CONNECTED,
    "SCAN_QR_CODE": SessionStatus.QR_PENDING,
    "STARTING": SessionStatus.CONNECTING,
    "STOPPED": SessionStatus.DISCONNECTED,
    "FAILED": SessionStatus.FAILED,
    "PASSKEY_REQUIRED": SessionStatus.QR_PENDING,
    "PASSKEY_CONFIRMATION_REQUIRED": SessionStatus.QR_PENDING,
}

_MEGAAPI = {
    "connected": SessionStatus.CONNECTED,
    "disconnected": SessionStatus.DISCONNECTED,
    "connecting": SessionStatus.CONNECTING,
    "qrcode": SessionStatus.QR_PENDING,
}

# Baileys disconnect reasons that end the session: the phone must pair again.
EVOLUTION_LOGGED_OUT_CODES = frozenset({401, 403, 402, 406})


class UnknownGatewayStatus(ValueError):
    """The gateway answered with a status value zapsync has no mapping for."""


def _lookup(table: dict[str, SessionStatus], provider: str, value: str) -> SessionStatus:
    try:
        return table[value]
    except KeyError:
        raise UnknownGatewayStatus(f"{provider} reported an unknown status {value!r}") from None


def from_evolution(state: str, status_reason: int | None = None) -> SessionStatus:
    """Map Evolution's `state` (connectionState or connection.update) to a status.

    A `close` with a logged-out code is final; any other close may reconnect.
    """
    status = _lookup(_EVOLUTION, "evolution", state)
    if status is SessionStatus.DISCONNECTED and status_reason in EVOLUTION_LOGGED_OUT_CODES:
        return SessionStatus.LOGGED_OUT
    return status


def from_waha(status: str) -> SessionStatus:
    return _lookup(_WAHA, "waha", status)


def from_megaapi(status: str) -> SessionStatus:
    return _lookup(_MEGAAPI, "megaapi", status)


def is_live(status: SessionStatus) -> bool:
    """True for statuses where the gateway keeps a socket to WhatsApp open or opening."""
    return status in (SessionStatus.CONNECTED, SessionStatus.CONNECTING, SessionStatus.QR_PENDING)
