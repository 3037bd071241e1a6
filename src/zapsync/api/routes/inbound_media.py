"""`/api/v1/messages/{id}/media`: an inbound message's media, fetched through its gateway on
first view and kept (services/inbound_media.py). Opened by the signed URL the message API
gives (an `<img>` carries no token), or with a token of the message's organization."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from zapsync.api.deps import Ctx, Db, get_principal
from zapsync.api.params import PathBigId
from zapsync.api.routes.media import file_response, file_responses
from zapsync.api.routing import ROLE_KEY, ApiRoute, Role
from zapsync.services import inbound_media, media
from zapsync.services.errors import Unauthorized

router = APIRouter(prefix="/api/v1/messages", tags=["media"], route_class=ApiRoute)
_bearer = HTTPBearer(auto_error=False)


# A signed URL or a token of the organization: checked by hand, so the role is stated here.
@router.get(
    "/{message_id}/media",
    response_class=FileResponse,
    openapi_extra={ROLE_KEY: Role.AGENT.value},
    responses=file_responses(401, 403, 404, 410, 413, 422),
)
async def get_inbound_media(
    message_id: PathBigId,
    ctx: Ctx,
    db: Db,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    sig: Annotated[
        str | None,
        Query(max_length=500, description="the signature of a URL zapsync issued"),
    ] = None,
) -> FileResponse:
    """The media of an inbound message. 410 (with the gateway's reason) when the gateway no
    longer has it: the page shows a placeholder; 413 past ZAPSYNC_INBOUND_MEDIA_MAX_MB."""
    refused = (
        media.signature_refusal(
            ctx.settings.resolved_secret_key(),
            inbound_media.signed_name(message_id),
            sig,
            media.url_lifetime_seconds(ctx.settings),
        )
        if sig is not None
        else Unauthorized("a signed media URL or an Authorization: Bearer <token> is required")
    )
    organization_id = None
    if refused is not None:
        if creds is None:
            raise refused
        # A token of the owner opens the file whatever the sig says (an old link).
        organization_id = (await get_principal(ctx, creds)).organization_id
    found = await inbound_media.open_inbound_media(
        ctx, db, message_id, organization_id=organization_id
    )
    return file_response(found.path, found.mime_type, found.file_name)
