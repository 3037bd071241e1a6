"""What the MegaAPI dialect's routes share: the world, the account token, the instances whose
webhook is switched off, and the checks and sends every resource makes."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from zapsync.sandbox.dialects import state_of
from zapsync.sandbox.dialects.megaapi import shapes
from zapsync.sandbox.dialects.megaapi.http import MegaApiError
from zapsync.sandbox.dialects.megaapi.webhooks import payload_of
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import LinkState, SimInstance, WebhookConfig, World, WorldEvent

SANDBOX_TOKEN = "sandbox-megaapi-token"


class MegaApiDialect:
    def __init__(self, world: World, sender: WebhookSender) -> None:
        self.world = world
        self.sender = sender
        # MegaAPI can keep a webhook URL while it is switched off; SimInstance has no such flag.
        self.disabled: set[str] = set()

    def authorize(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        valid = secrets.compare_digest(token.encode(), SANDBOX_TOKEN.encode())
        if scheme.lower() != "bearer" or not valid:
            raise MegaApiError(401, "Unauthorized: invalid or missing bearer token")

    def instance(self, request: Request, key: str) -> SimInstance:
        self.authorize(request)
        inst = self.world.get(key)
        if inst is None:
            raise MegaApiError(404, "instance not found")
        return inst

    def webhook_data(self, inst: SimInstance) -> dict[str, Any]:
        return {
            "webhookUrl": inst.webhook.url if inst.webhook else "",
            "webhookEnabled": inst.webhook is not None and inst.name not in self.disabled,
        }

    def require_logged_out(self, inst: SimInstance) -> None:
        """QR and pairing code exist only for an instance with no paired phone; asking
        for one starts the socket, as the hosted service does."""
        if not inst.logged_out:
            raise MegaApiError(403, "User is already logged in")
        if inst.state is not LinkState.QR:
            self.world.start(inst)

    def configure_webhook(self, inst: SimInstance, url: str, enabled: bool) -> None:
        # The URL is kept byte for byte: zapsync's secret rides in its query string.
        inst.webhook = WebhookConfig(url=url)
        if enabled:
            self.disabled.discard(inst.name)
        else:
            self.disabled.add(inst.name)

    def send(self, inst: SimInstance, to: str, body: str | None, **extra: Any) -> JSONResponse:
        if inst.state is not LinkState.OPEN:
            raise MegaApiError(401, "Instance not logged in")
        try:
            msg = self.world.send(inst, shapes.recipient_jid(to), body, **extra)
        except ConnectionError as exc:
            # A zombie socket: the status says connected but Baileys cannot write.
            raise MegaApiError(500, str(exc)) from None
        return JSONResponse(shapes.sent_body(msg))

    def on_event(self, event: WorldEvent) -> None:
        inst = event.instance
        if inst.webhook is None or inst.name in self.disabled:
            return
        payload = payload_of(event)
        if payload is not None:
            # MegaAPI sends no signature and no custom header: only the URL identifies us.
            self.sender.post(inst.webhook.url, payload)


async def current(request: Request) -> MegaApiDialect:
    return state_of(request, MegaApiDialect)


Dialect = Annotated[MegaApiDialect, Depends(current)]
