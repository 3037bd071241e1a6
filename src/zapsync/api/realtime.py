"""Socket.IO at `/socket.io`: every change published on the bus, live, to the clients of the
organization it belongs to.

- Connecting needs an API token, as `auth={"token": "…"}` or an `Authorization: Bearer …`
  header; anything else is refused. The token is checked again on every client event.
- A socket whose access ends (its token revoked, its user removed) gets `access_revoked`
  and is disconnected: at once when that happens in this process (the bus event of the same
  name; with a shared bus, on every replica), else at the next re-check of the sockets'
  tokens, every `ZAPSYNC_SOCKET_RECHECK_SECONDS` (a CLI revocation is another process).
- Rooms: `org:{id}` (joined on connect; pass `"org_feed": false` in `auth` to skip it, and
  `join` to enter it later) gets every event of the organization; `conversation:{id}`
  (`join_conversation`) gets the events of one conversation. An event goes out once per
  socket even when it is in both rooms, and never to another organization's rooms.
- Client events `join`, `join_conversation`, `leave_conversation`, `send_message` and
  `mark_as_read` answer with an acknowledgement: `{"ok": true, …}` or
  `{"ok": false, "error": "…", "status": 4xx}`.
- With `REDIS_URL` set, `AsyncRedisManager` carries each emit to the sockets of every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
import structlog
from fastapi.encoders import jsonable_encoder
from redis.asyncio import BlockingConnectionPool, Redis

from zapsync.api.media_urls import inbound_url_of
from zapsync.api.params import MAX_ID
from zapsync.api.problems import answer_to
from zapsync.api.schemas.messages import parse_send_request
from zapsync.bus.events import INTERNAL_EVENTS, Event, conversation_json, message_json
from zapsync.runtime.context import AppContext
from zapsync.security.urls import url_policy
from zapsync.services.accounts import Principal, active_token_ids, authenticate
from zapsync.services.errors import Invalid, ServiceError, Unauthorized
from zapsync.services.inbox import conversations as conv_svc
from zapsync.services.inbox.sending import queue_send
from zapsync.settings import Settings

log = structlog.get_logger(__name__)

Ack = dict[str, Any]


_PLAIN = (str, int, float, bool, type(None))
MESSAGE_EVENTS = frozenset({"new_message", "message_updated"})


def _json_ready(value: Any) -> Any:
    """Event data as JSON values. Event payloads are already plain almost always; FastAPI's
    generic encoder is kept for the rest (it cost more than the emit at hundreds a second)."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return jsonable_encoder(value)


def org_room(organization_id: int) -> str:
    return f"org:{organization_id}"


def conversation_room(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"


def token_of(environ: dict[str, Any], auth: Any) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str) and auth["token"]:
        token: str = auth["token"]
        return token.removeprefix("Bearer ").strip()
    header = str(environ.get("HTTP_AUTHORIZATION") or "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def conversation_id_of(data: Any) -> int:
    value = data.get("conversation_id") if isinstance(data, dict) else data
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid("conversation_id is required")
    try:
        conversation_id = int(value)
    except ValueError:
        raise Invalid("conversation_id must be an integer") from None
    # As the HTTP routes' ids: a number no row can have never reaches a query.
    if not 1 <= conversation_id <= MAX_ID:
        raise Invalid(f"conversation_id must be between 1 and {MAX_ID}")
    return conversation_id


# Publishes to Redis at once, at most: more wait for a connection of the pool.
REDIS_CONNECTIONS = 32
REDIS_WAIT_SECONDS = 10.0


class WaitingRedisManager(socketio.AsyncRedisManager):
    """`AsyncRedisManager` whose publishes wait for a free connection. redis-py's own pool
    refuses the 101st at once (MaxConnectionsError): a burst of webhooks, each emitting its
    events, failed its requests with 500s."""

    def _redis_connect(self) -> None:
        super()._redis_connect()
        pool = BlockingConnectionPool.from_url(
            self.redis_url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_WAIT_SECONDS
        )
        self.redis = Redis(connection_pool=pool)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)


class Realtime:
    """The Socket.IO server of one app; `attach` it to the context once that exists."""

    def __init__(self, settings: Settings) -> None:
        manager = None
        if settings.redis_url:
            manager = WaitingRedisManager(settings.redis_url, channel=settings.socketio_channel)
        # Their own loggers, not `False`: with `False` each adds a plain-text handler of its
        # own beside zapsync's masked one (their level is set in `logs.py`).
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=manager,
            logger=logging.getLogger("socketio.server"),
            engineio_logger=logging.getLogger("engineio.server"),
        )
        self.ctx: AppContext | None = None
        self._secret_key: str | None = None  # what signs the media URLs of message events
        self.recheck_seconds = settings.socket_recheck_seconds
        # sid -> (token id, user id) of the sockets connected to this process
        self._holders: dict[str, tuple[int, int]] = {}
        self._rechecks: asyncio.Task[None] | None = None
        self._register()

    def asgi_app(self) -> socketio.ASGIApp:
        """To mount at `/socket.io` (routing is left to the mount)."""
        return socketio.ASGIApp(self.sio, socketio_path=None)

    def attach(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._secret_key = ctx.settings.resolved_secret_key()
        ctx.bus.subscribe(self.forward)
        ctx.bus.subscribe(self.on_access_revoked, names={"access_revoked"})
        self._rechecks = asyncio.get_running_loop().create_task(self._recheck_forever())

    async def close(self) -> None:
        if self._rechecks is not None:
            self._rechecks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rechecks
        if self.ctx is not None:
            with contextlib.suppress(ValueError):
                self.ctx.bus.unsubscribe(self.forward)
                self.ctx.bus.unsubscribe(self.on_access_revoked)
        listener = getattr(self.sio.manager, "thread", None)
        if isinstance(listener, asyncio.Task):
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        redis = getattr(self.sio.manager, "redis", None)
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()
        await self.sio.shutdown()

    async def forward(self, event: Event) -> None:
        """Bus subscriber: one emit per event, to its organization (and conversation) room."""
        if event.name in INTERNAL_EVENTS:
            return
        rooms = [org_room(event.organization_id)]
        if event.conversation_id is not None:
            rooms.append(conversation_room(event.conversation_id))
        data = event.data
        if event.name in MESSAGE_EVENTS and self._secret_key is not None:
            # The page opens inbound media by a signed URL, which only this layer may sign.
            data = {**data, "media_view_url": inbound_url_of(self._secret_key, data)}
        await self.sio.emit(event.name, _json_ready(data), to=rooms)

    async def on_access_revoked(self, event: Event) -> None:
        """Bus subscriber: close this process's sockets holding the access that ended."""
        token_ids = set(event.data.get("token_ids") or ())
        user_id = event.data.get("user_id")
        for sid, (token_id, holder) in list(self._holders.items()):
            if token_id in token_ids or (user_id is not None and holder == user_id):
                await self._revoke(sid)

    async def recheck(self) -> None:
        """Close the sockets whose token no longer authenticates (revoked elsewhere)."""
        held = {token_id for token_id, _ in self._holders.values()}
        if not held:
            return
        async with self._context().db.session() as db:
            active = await active_token_ids(db, held)
        # A socket that connected during the query is not judged by it (its connect checked).
        for sid, (token_id, _) in list(self._holders.items()):
            if token_id in held and token_id not in active:
                await self._revoke(sid)

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_seconds)
            try:
                await self.recheck()
            except Exception:  # the database may be down a moment; the next pass retries
                log.exception("socket token re-check failed")

    async def _revoke(self, sid: str) -> None:
        if self._holders.pop(sid, None) is None:
            return  # already closing
        # Out of its rooms first: no event of the organization reaches it from here on.
        for room in self.sio.rooms(sid):
            if room != sid:
                await self.sio.leave_room(sid, room)
        # The socket is this process's: straight to it, not round through Redis, so the
        # notice cannot arrive after the disconnect.
        await self.sio.emit(
            "access_revoked",
            {"reason": "the token is no longer valid"},
            to=sid,
            ignore_queue=True,
        )
        await self.sio.disconnect(sid, ignore_queue=True)
        log.info("socket closed: its access was revoked", sid=sid)

    def _context(self) -> AppContext:
        if self.ctx is None:
            raise Unauthorized("the server is starting; try again")
        return self.ctx

    async def _authenticate(self, token: str) -> Principal:
        async with self._context().db.session() as db:
            return await authenticate(db, token)

    async def _principal(self, sid: str) -> Principal:
        session = await self.sio.get_session(sid)
        try:
            return await self._authenticate(session["token"])
        except Unauthorized:
            # Stop its events now; disconnect once this event's refusal has been answered.
            for room in self.sio.rooms(sid):
                if room != sid:
                    await self.sio.leave_room(sid, room)
            self.sio.start_background_task(self.sio.disconnect, sid)
            raise

    def _register(self) -> None:
        sio = self.sio

        @sio.event
        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            token = token_of(environ, auth)
            if token is None:
                raise socketio.exceptions.ConnectionRefusedError(
                    'an API token is required: auth={"token": "..."} or an Authorization header'
                )
            try:
                principal = await self._authenticate(token)
            except Unauthorized as exc:
                raise socketio.exceptions.ConnectionRefusedError(exc.detail) from None
            await sio.save_session(sid, {"token": token})
            self._holders[sid] = (principal.token_id, principal.user_id)
            if not (isinstance(auth, dict) and auth.get("org_feed") is False):
                await sio.enter_room(sid, org_room(principal.organization_id))
            log.info("socket connected", sid=sid, organization_id=principal.organization_id)

        @sio.event
        async def disconnect(sid: str, *_: Any) -> None:
            self._holders.pop(sid, None)

        def handler(
            name: str, action: Callable[[str, Principal, Any], Awaitable[Ack]]
        ) -> Callable[[str, Any], Awaitable[Ack]]:
            async def run(sid: str, data: Any = None) -> Ack:
                try:
                    return await action(sid, await self._principal(sid), data)
                except ServiceError as exc:
                    return {"ok": False, "error": exc.detail, "status": answer_to(exc).status}
                except Exception:
                    log.exception("socket event failed", event_name=name)
                    return {"ok": False, "error": "an unexpected error occurred", "status": 500}

            sio.on(name, run)
            return run

        async def join(sid: str, principal: Principal, data: Any) -> Ack:
            wanted = data.get("organization_id") if isinstance(data, dict) else None
            if wanted is not None and wanted != principal.organization_id:
                return {
                    "ok": False,
                    "error": "this token belongs to another organization",
                    "status": 403,
                }
            await sio.enter_room(sid, org_room(principal.organization_id))
            return {"ok": True, "organization_id": principal.organization_id, "rooms": rooms(sid)}

        async def join_conversation(sid: str, principal: Principal, data: Any) -> Ack:
            conversation_id = conversation_id_of(data)
            async with self._context().db.session() as db:
                await conv_svc.get_conversation(db, principal, conversation_id)
            await sio.enter_room(sid, conversation_room(conversation_id))
            return {"ok": True, "conversation_id": conversation_id}

        async def leave_conversation(sid: str, principal: Principal, data: Any) -> Ack:
            conversation_id = conversation_id_of(data)
            await sio.leave_room(sid, conversation_room(conversation_id))
            return {"ok": True, "conversation_id": conversation_id}

        async def send_message(sid: str, principal: Principal, data: Any) -> Ack:
            if not isinstance(data, dict):
                raise Invalid('send {"conversation_id": …, "type": …, "content" or "url": …}')
            conversation_id = conversation_id_of(data)
            body = {k: v for k, v in data.items() if k != "conversation_id"}
            request = parse_send_request(body)
            ctx = self._context()
            async with ctx.db.session() as db:
                message = await queue_send(
                    db,
                    ctx.bus,
                    principal,
                    conversation_id,
                    request,
                    url_policy=url_policy(ctx.settings),
                )
            payload = {**message_json(message), "error": None}
            return {"ok": True, "message": jsonable_encoder(payload)}

        async def mark_as_read(sid: str, principal: Principal, data: Any) -> Ack:
            conversation_id = conversation_id_of(data)
            ctx = self._context()
            async with ctx.db.session() as db:
                conversation = await conv_svc.mark_read(db, ctx.bus, principal, conversation_id)
            return {"ok": True, "conversation": conversation_json(conversation)}

        def rooms(sid: str) -> list[str]:
            return sorted(r for r in sio.rooms(sid) if r != sid)

        handler("join", join)
        handler("join_conversation", join_conversation)
        handler("leave_conversation", leave_conversation)
        handler("send_message", send_message)
        handler("mark_as_read", mark_as_read)
