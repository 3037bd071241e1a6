"""Which webhook MegaAPI posts for a world event: a message, a connection change or a new QR;
nothing for the rest (none is documented)."""

from __future__ import annotations

from typing import Any

from zapsync.sandbox.dialects.megaapi.shapes import (
    connection_payload,
    message_payload,
    qr_payload,
)
from zapsync.sandbox.world import LinkState, WorldEvent


def payload_of(event: WorldEvent) -> dict[str, Any] | None:
    inst = event.instance
    if event.kind == "message":
        return message_payload(inst, event.data["message"])
    if event.kind == "status":
        state = event.data.get("state")
        if state == LinkState.OPEN.value:
            return connection_payload(inst, connected=True)
        if state == LinkState.STOPPED.value:
            return connection_payload(inst, connected=False)
        return None
    if event.kind == "qr":
        return qr_payload(inst, event.data["code"])
    return None
