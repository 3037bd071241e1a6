"""What the WAHA dialect's routes share: the world, the sessions' WAHA-only state, the
webhooks, and the checks and changes every resource makes."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, Request

from zapsync.sandbox.dialects import state_of
from zapsync.sandbox.dialects.waha.http import NOT_EXPECTED, WahaError, nest_error
from zapsync.sandbox.dialects.waha.shapes import ENGINE, STATUS, me_of, raw_content, world_jid
from zapsync.sandbox.dialects.waha.state import WahaSessions
from zapsync.sandbox.dialects.waha.webhooks import WahaWebhooks
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import LinkState, SimInstance, World


class WahaDialect:
    def __init__(self, world: World, sender: WebhookSender) -> None:
        self.world = world
        self.sessions = WahaSessions()
        self.webhooks = WahaWebhooks(self.sessions, sender)

    def session(self, name: str) -> SimInstance:
        inst = self.world.get(name)
        if inst is None:
            raise nest_error(404, "Session not found")
        return inst

    def running(self, name: str, *expected: str) -> SimInstance:
        """A started session in one of the `expected` statuses, else WAHA's refusal."""
        inst = self.world.get(name)
        if inst is None or inst.state is LinkState.STOPPED:
            raise nest_error(
                404,
                f"We didn't find a session with name '{name}'.\n"
                f"Please start it first by using POST /api/sessions/{name}/start request",
            )
        status = STATUS[inst.state]
        if status not in expected:
            body = {"error": NOT_EXPECTED, "session": name, "status": status}
            raise WahaError(422, {**body, "expected": list(expected)})
        return inst

    def render(self, inst: SimInstance, *, with_engine: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": inst.name,
            "status": STATUS[inst.state],
            "config": self.sessions.configs.get(inst.name),
            "me": me_of(inst),
        }
        if with_engine:
            out["engine"] = {} if inst.state is LinkState.STOPPED else {"engine": ENGINE}
        return out

    def start(self, inst: SimInstance) -> None:
        if inst.state is not LinkState.STOPPED:
            return
        # WAHA passes through STARTING before a QR or WORKING; the world jumps straight on.
        inst.state = LinkState.STARTING
        self.webhooks.status_changed(inst, "STARTING")
        self.world.start(inst)

    def stop(self, inst: SimInstance) -> None:
        if inst.state is LinkState.STOPPED:
            return
        inst.state = LinkState.STOPPED
        self.world.emit(inst, "status", state=LinkState.STOPPED.value, reason=None)

    def send(self, body: dict[str, Any], text: str | None, **extra: Any) -> dict[str, Any]:
        session, chat_id = body.get("session"), body.get("chatId")
        if not isinstance(session, str) or not isinstance(chat_id, str):
            raise nest_error(400, "session and chatId are required")
        inst = self.running(session, "WORKING")
        try:
            msg = self.world.send(inst, world_jid(chat_id), text, **extra)
        except ConnectionError as exc:
            raise WahaError(
                500,
                {
                    "statusCode": 500,
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "exception": {"message": str(exc), "name": "Error"},
                },
            ) from None
        # NOWEB answers with the Baileys WebMessageInfo it just sent.
        return {
            "key": {"remoteJid": msg.chat_jid, "fromMe": True, "id": msg.id},
            "message": raw_content(msg),
            "messageTimestamp": str(msg.timestamp),
            "status": "PENDING",
        }


async def current(request: Request) -> WahaDialect:
    return state_of(request, WahaDialect)


Dialect = Annotated[WahaDialect, Depends(current)]
