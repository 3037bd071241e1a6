"""`/api/v1/media/{name}`: files uploaded to send. Opened by the signed URL zapsync gave the
gateway (which carries no token), or with a token of the organization that uploaded it."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from zapsync.api.deps import Ctx, get_principal
from zapsync.api.openapi import BINARY
from zapsync.api.problems import problem_responses
from zapsync.api.routing import ROLE_KEY, ApiRoute, Role
from zapsync.services import media
from zapsync.services.errors import NotFound, Unauthorized

router = APIRouter(prefix="/api/v1/media", tags=["media"], route_class=ApiRoute)
_bearer = HTTPBearer(auto_error=False)
INLINE = frozenset().union(*media.ALLOWED.values())  # types WhatsApp plays; no SVG, no HTML


def file_responses(*problems: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answers of a route serving a kept file (`file_response`), and its problems."""
    served = ("image/*", "video/*", "audio/*", "application/*")
    return {
        200: {
            "description": "the file: as what WhatsApp plays, anything else as a download",
            "content": {t: {"schema": BINARY} for t in served},
        },
        **problem_responses(*problems),
    }


# A signed URL or a token of the organization: checked by hand, so the role is stated here.
@router.get(
    "/{name}",
    response_class=FileResponse,
    openapi_extra={ROLE_KEY: Role.AGENT.value},
    responses=file_responses(401, 403, 404, 410, 422),
)
async def get_media(
    name: str,
    ctx: Ctx,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    # Any text: a signature that is not one (non-ASCII included) is a 403 with the reason.
    sig: Annotated[
        str | None,
        Query(max_length=500, description="the signature of a URL zapsync issued"),
    ] = None,
) -> FileResponse:
    organization_id = await signed_or_token(ctx, creds, name, sig)
    if organization_id is not None and media.owner_of(name) != organization_id:
        raise NotFound(f"no media called {name!r}")
    path = media.path_of(ctx.settings, name)
    return file_response(path, mimetypes.guess_type(path.name)[0] or "application/octet-stream")


async def signed_or_token(
    ctx: Ctx, creds: HTTPAuthorizationCredentials | None, signed_name: str, sig: str | None
) -> int | None:
    """None when `sig` proves zapsync issued the URL of `signed_name`; else the organization of
    the caller's token, which opens the file whatever the sig says (an agent opening an old
    link from the conversation); else the signature's refusal (401 without either)."""
    refused = (
        media.signature_refusal(
            ctx.settings.resolved_secret_key(),
            signed_name,
            sig,
            media.url_lifetime_seconds(ctx.settings),
        )
        if sig is not None
        else Unauthorized("a signed media URL or an Authorization: Bearer <token> is required")
    )
    if refused is None:
        return None
    if creds is None:
        raise refused
    return (await get_principal(ctx, creds)).organization_id


def file_response(path: Path, mime: str, file_name: str | None = None) -> FileResponse:
    """A kept file: inline as what WhatsApp plays, anything else (HTML, SVG, scripts sent as
    documents) as a download, never rendered on zapsync's origin."""
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
    if mime in INLINE:
        return FileResponse(path, media_type=mime, headers=headers)
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=file_name or path.name,
        headers=headers,
    )
