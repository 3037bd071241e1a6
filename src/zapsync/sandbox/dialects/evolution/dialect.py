"""What the Evolution dialect's routes share: the world, the global key, what the server stores
per instance, the webhooks, the reconnect loop, and the checks and answers every resource
gives (`auth.guard.ts`, `connectToWhatsapp`, a send on a dead socket)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import Depends, Request

from zapsync.sandbox.dialects import state_of
from zapsync.sandbox.dialects.evolution import shapes
from zapsync.sandbox.dialects.evolution.http import EvoError
from zapsync.sandbox.dialects.evolution.state import EvoInstance, Registry
from zapsync.sandbox.dialects.evolution.webhooks import EvolutionWebhooks
from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import LinkState, SimInstance, SimMessage, World

GLOBAL_API_KEY = "sandbox-global-key"


class EvolutionDialect:
    def __init__(self, world: World, sender: WebhookSender, api_key: str = GLOBAL_API_KEY) -> None:
        self.world = world
        self.api_key = api_key
        self.registry = Registry()
        self.webhooks = EvolutionWebhooks(self.registry, sender)
        self.create_wait = 0.0
        self._looper: asyncio.Task[None] | None = None

    # --- the reconnect loop ---------------------------------------------------

    def start(self, inst: SimInstance, evo: EvoInstance) -> None:
        """Open the socket; from now on Evolution keeps reconnecting it by itself."""
        evo.looping = True
        self.world.start(inst)

    def reconnect_round(self) -> list[str]:
        """One round of every instance's reconnect loop: a closed socket opens again (to
        `open` when a phone is paired), an unscanned QR expires and a fresh one shows."""
        names = []
        for evo in self.registry.all():
            inst = evo.inst
            if not evo.looping or self.world.get(inst.name) is not inst:
                continue
            if inst.state is LinkState.QR:
                self.world.drop(inst, silent=True)
            if inst.state is LinkState.STOPPED:
                self.world.start(inst)
                names.append(inst.name)
        return names

    async def reconnect_every(self, every: Any) -> bool:
        """Run the rounds every `every` seconds from now on (none when it is not positive);
        True when a loop runs."""
        if self._looper is not None:
            self._looper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._looper
            self._looper = None
        if isinstance(every, int | float) and every > 0:
            self._looper = asyncio.get_running_loop().create_task(self._loop(float(every)))
        return self._looper is not None

    async def _loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.reconnect_round()

    # --- guards -----------------------------------------------------------------

    def authorize(self, request: Request, name: str | None) -> None:
        """`auth.guard.ts`: the global key always; an instance's own token on its own routes,
        and on fetchInstances (which then lists only that instance)."""
        key = request.headers.get("apikey")
        if key and key == self.api_key:
            return
        if key and name is not None:
            inst = self.world.get(name)
            if inst is not None and inst.token == key:
                return
        if key and name is None and any(i.token == key for i in self.world.instances.values()):
            return
        raise EvoError(401, "Unauthorized")

    def authorize_global(self, request: Request) -> None:
        if request.headers.get("apikey") != self.api_key:
            raise EvoError(401, "Unauthorized")

    def instance(self, request: Request, name: str) -> tuple[SimInstance, EvoInstance]:
        self.authorize(request, name)
        inst = self.world.get(name)
        if inst is None:
            raise EvoError(404, [f'The "{name}" instance does not exist'])
        return inst, self.registry.of(inst)

    # --- shared answers ---------------------------------------------------------

    @staticmethod
    def state_body(inst: SimInstance) -> dict[str, Any]:
        return {"instance": {"instanceName": inst.name, "state": shapes.live_state(inst)}}

    def connect(self, inst: SimInstance, evo: EvoInstance) -> dict[str, Any]:
        """`connectToWhatsapp`: state when open, the bare QR object while connecting, a socket
        start when closed (`{"count":0}` when that made no QR, as when the phone is paired)."""
        state = shapes.live_state(inst)
        if state == "open":
            return self.state_body(inst)
        if state == "close":
            try:
                self.start(inst, evo)
            except Exception as exc:
                # `connectToWhatsapp` catches everything and answers `error.toString()` with 200.
                return {"error": True, "message": f"Error: {exc}"}
            state = shapes.live_state(inst)
        if state in ("connecting", "open"):
            return shapes.qr_object(inst, with_pairing=bool(evo.number))
        return {
            "instance": {"instanceName": inst.name, "status": state},
            "qrcode": shapes.qr_object(inst, with_pairing=bool(evo.number)),
        }

    def send(self, inst: SimInstance, to: str, body: str | None, **extra: Any) -> SimMessage:
        if inst.state is not LinkState.OPEN or inst.zombie:
            raise EvoError(500, "Connection Closed")
        try:
            return self.world.send(inst, to, body, **extra)
        except ConnectionError as exc:
            raise EvoError(500, str(exc) or "Connection Closed") from None


async def current(request: Request) -> EvolutionDialect:
    return state_of(request, EvolutionDialect)


Dialect = Annotated[EvolutionDialect, Depends(current)]
