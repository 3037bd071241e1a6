"""Request bodies bounded while they stream.

A route reads its body through `receive`; this middleware counts the bytes on their way in
and raises `BodyTooLarge` (a 413 problem) as soon as a body passes its route's limit, or at
the first read when `Content-Length` already says it will. Nothing is read before the route
asks, so a route can refuse a request (an unknown session) without reading its body at all,
and a chunked body without `Content-Length` is never held past the limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapsync.services.errors import TooLarge


class BodyTooLarge(TooLarge):
    """A body past its route's limit, refused while it streams."""


@dataclass(frozen=True, slots=True)
class BodyRule:
    method: str
    path: re.Pattern[str]
    max_bytes: int
    describe: Callable[[int], str]  # the refusal's detail, from the limit in bytes


def megabytes(setting: str) -> Callable[[int], str]:
    return lambda limit: f"the body is larger than {limit / 1024 / 1024:g} MB ({setting})"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, rules: Sequence[BodyRule]) -> None:
        self.app = app
        self.rules = list(rules)

    def _rule(self, scope: Scope) -> BodyRule | None:
        for rule in self.rules:
            if scope["method"] == rule.method and rule.path.fullmatch(scope["path"]):
                return rule
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = self._rule(scope) if scope["type"] == "http" else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            if declared is not None and declared > rule.max_bytes:
                raise BodyTooLarge(rule.describe(rule.max_bytes))
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > rule.max_bytes:
                    raise BodyTooLarge(rule.describe(rule.max_bytes))
            return message

        await self.app(scope, bounded, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None
