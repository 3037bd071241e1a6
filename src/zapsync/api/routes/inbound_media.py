"""`/api/v1/messages/{id}/media`: an inbound message's media, fetched through its gateway on
first view and kept (services/inbound_media.py). Opened by the signed URL the message API
gives (an `<img>` carries no token), or with a token of the message's organization."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from zapsync.api.deps import Ctx, Db
from zapsync.api.params import PathBigId
from zapsync.api.routes.media import file_response, file_responses, signed_or_token
from zapsync.api.routing import ROLE_KEY, ApiRoute, Role
from zapsync.services import inbound_media

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
    organization_id = await signed_or_token(ctx, creds, inbound_media.signed_name(message_id), sig)
    found = await inbound_media.open_inbound_media(
        ctx, db, message_id, organization_id=organization_id
    )
    return file_response(found.path, found.mime_type, found.file_name)
