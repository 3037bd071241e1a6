"""The route class of every API router: what a route needs of the caller is stated once (the
principal it takes), shown in the OpenAPI document as `x-zapsync-role`, and JSON bodies are
checked at the edge (their type and their depth) before anything reads them.

A route that takes `AdminPrincipal` is `admin`; one that takes `CurrentPrincipal` (any member
of the organization, admins included) is `agent`; a route without a token (health, webhooks,
cron) has no role. A route may state its role itself in `openapi_extra` when its check is done
by hand (media: a signed URL or a token)."""

from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Any

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from zapsync.api.deps import get_principal, require_admin
from zapsync.services.errors import Invalid, UnsupportedMedia

ROLE_KEY = "x-zapsync-role"
MAX_JSON_DEPTH = 32  # no body this API takes nests half as deep; json.loads recurses


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"


def role_of(dependant: Dependant) -> Role | None:
    """The role the route's dependencies enforce (admin wins over agent)."""
    calls: set[Any] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        calls.add(current.call)
        stack.extend(current.dependencies)
    if require_admin in calls:
        return Role.ADMIN
    if get_principal in calls:
        return Role.AGENT
    return None


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def depth_of(value: Any) -> int:
    """How deep JSON containers nest (iterative: the value may be deeper than the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            current = list(current.values())
        if isinstance(current, list):
            deepest = max(deepest, depth)
            stack.extend((item, depth + 1) for item in current if isinstance(item, dict | list))
    return deepest


async def read_json(request: Request, *, untyped_is_json: bool = False) -> Any:
    """The request's JSON body (cached on the request, as Starlette does), refused with a 4xx
    when it is not JSON, not valid, or nested deeper than any body this API takes."""
    content_type = request.headers.get("content-type")
    if not (is_json(content_type) or (untyped_is_json and not content_type)):
        raise UnsupportedMedia("send the body as application/json")
    try:
        data = await request.json()
    except RecursionError:
        raise Invalid(f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"the body is not valid JSON: {exc}") from None
    if depth_of(data) > MAX_JSON_DEPTH:
        raise Invalid(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    return data


class ApiRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # Services build most answers as dicts: a key they leave out stays out, as before
        # responses had models (a conversation without a contact has no `contact`).
        # (The router always passes the flag, so it is set here, not defaulted.)
        kwargs["response_model_exclude_unset"] = True
        super().__init__(path, endpoint, **kwargs)
        extra = dict(self.openapi_extra or {})
        role = role_of(self.dependant)
        if role is not None and ROLE_KEY not in extra:
            extra[ROLE_KEY] = role.value
        self.openapi_extra = extra or None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        field = self.body_field
        if field is None or isinstance(field.field_info, params.Form):
            return handler

        async def checked(request: Request) -> Response:
            # An empty body is left to the route (an optional body is then its default).
            if await request.body():
                await read_json(request)
            return await handler(request)

        return checked
