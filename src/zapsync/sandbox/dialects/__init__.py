"""HTTP front ends that render the sandbox world in one gateway's dialect.

Each dialect is a package, `dialects/<gateway>/`: its routes by resource (`routes/`), the
shapes it answers and posts (`shapes.py`), its webhooks, and the state its routes share (one
object per app, `dialect.py`). Its `front_end.build(world, sender) -> DialectFrontEnd` puts
them together; the app keeps the shared state on `app.state.dialect`, where the routes' one
dependency finds it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import APIRouter, Request

from zapsync.sandbox.webhook_sender import WebhookSender
from zapsync.sandbox.world import World, WorldEvent

S = TypeVar("S")


@dataclass
class DialectFrontEnd:
    name: str
    router: APIRouter
    on_event: Callable[[WorldEvent], None]
    state: object  # what the routes share; the app keeps it on `app.state.dialect`


DIALECTS = ("evolution", "waha", "megaapi", "chatwoot")


def build_dialect(name: str, world: World, sender: WebhookSender) -> DialectFrontEnd:
    if name not in DIALECTS:
        raise ValueError(f"unknown sandbox dialect {name!r}; choose one of {', '.join(DIALECTS)}")
    module = importlib.import_module(f"zapsync.sandbox.dialects.{name}.front_end")
    front: DialectFrontEnd = module.build(world, sender)
    return front


def state_of(request: Request, kind: type[S]) -> S:
    """The dialect state of the app serving `request` (see `build_sandbox_app`)."""
    state = request.app.state.dialect
    if not isinstance(state, kind):
        raise TypeError(f"this app serves no {kind.__name__}")
    return state
