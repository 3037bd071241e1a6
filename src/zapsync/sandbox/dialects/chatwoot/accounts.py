"""`/api/v1/profile` (who the token is) and the account's inboxes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from zapsync.sandbox.dialects.chatwoot import shapes
from zapsync.sandbox.dialects.chatwoot.routing import body_of, log_write, route_class_for
from zapsync.sandbox.dialects.chatwoot.state import ChatwootState, Invalid

CHANNEL_TYPES = {
    "api": "Channel::Api",
    "web_widget": "Channel::WebWidget",
    "email": "Channel::Email",
}


def build_router(state: ChatwootState) -> APIRouter:
    router = APIRouter(prefix="/api/v1", route_class=route_class_for(state), tags=["chatwoot"])

    @router.get("/profile")
    async def profile() -> JSONResponse:
        agent = state.agent
        membership = {"id": state.account_id, "name": state.account_name,
                      "role": "administrator", "status": "active", "active_at": None}  # fmt: skip
        return JSONResponse(
            {
                "id": agent.id,
                "name": agent.name,
                "display_name": None,
                "available_name": agent.name,
                "email": agent.email,
                "account_id": state.account_id,
                "role": "administrator",
                "confirmed": True,
                "type": "user",
                "accounts": [membership],
            }
        )

    @router.get("/accounts/{account_id}/inboxes")
    async def list_inboxes(account_id: str) -> JSONResponse:
        return JSONResponse({"payload": [shapes.inbox(i) for i in state.inboxes.values()]})

    @router.post("/accounts/{account_id}/inboxes")
    async def create_inbox(account_id: str, request: Request) -> JSONResponse:
        body = await body_of(request)
        log_write(state, request, body)
        raw_channel = body.get("channel")
        channel: dict[str, Any] = raw_channel if isinstance(raw_channel, dict) else {}
        channel_type = CHANNEL_TYPES.get(str(channel.get("type")))
        errors = []
        if not body.get("name"):
            errors.append(("name", "Name can't be blank"))
        if channel_type is None:
            errors.append(("channel", "Channel must exist"))
        if errors:
            raise Invalid(errors)
        inbox = state.add_inbox(
            str(body["name"]), str(channel_type), channel.get("webhook_url") or None
        )
        return JSONResponse(shapes.inbox(inbox))

    return router
