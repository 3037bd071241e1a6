"""`/api/v1/contacts`: the people your sessions talk to (one per phone number or lid)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from zapsync.api.deps import CurrentPrincipal, Db
from zapsync.api.params import PathId
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas import ContactDetail, ContactPage, ContactPublic
from zapsync.services.inbox import conversations as svc

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"], route_class=ApiRoute)


@router.get("", response_model=ContactPage)
async def list_contacts(
    db: Db,
    principal: CurrentPrincipal,
    q: Annotated[str | None, Query(max_length=200, description="name, phone or email")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ContactPage:
    """By name; pass `next_cursor` back as `cursor` for the next page."""
    page = await svc.list_contacts(db, principal, q=q, cursor=cursor, limit=limit)
    items = [ContactPublic.of(c) for c in page.items]
    return ContactPage(items=items, next_cursor=page.next_cursor)


@router.get("/{contact_id}", response_model=ContactDetail)
async def get_contact(contact_id: PathId, db: Db, principal: CurrentPrincipal) -> ContactDetail:
    """The contact and its conversations."""
    contact = await svc.get_contact(db, principal, contact_id)
    return ContactDetail.with_conversations(contact, await svc.conversations_of(db, contact))
