"""The WAHA (devlikeapro/waha) adapter: one WAHA session behind the Gateway Protocol.

Status comes from `GET /api/sessions/{s}`, which still answers for a STOPPED session
(the list hides those unless `all=true`). Webhooks are signed with HMAC-SHA512 by WAHA
versions that sign, under the session's signing key; the session secret (a different value:
the key must never travel) goes in a custom header for versions that do not sign (2024 core
ignores `hmac`). A signature that is there and wrong is refused whatever the header says.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from zapsync.domain.gateway import (
    Chat,
    InstanceInfo,
    LiveState,
    Message,
    QrCode,
    SentMessage,
    WebhookEvent,
)
from zapsync.domain.status import SessionStatus, UnknownGatewayStatus
from zapsync.providers.base import (
    UNSIGNED,
    DownloadedMedia,
    ForeignWebhook,
    GatewayRejected,
    GatewayUnavailable,
    InstanceGone,
    MediaGone,
    MediaRef,
    MediaToSend,
    Signature,
    SignatureCheck,
    WebhookRejected,
    WebhookTarget,
    webhook_object,
)
from zapsync.providers.http import DEFAULT_TIMEOUT, request_file, request_json
from zapsync.providers.paging import OffsetPaginator, Page, SeenKeys, paginate
from zapsync.providers.waha import payloads

# `message.any` alone: it carries incoming and own messages, and adding `message` would
# deliver every incoming message twice (WAHA issue 1384).
WEBHOOK_EVENTS = (
    "session.status",
    "message.any",
    "message.ack",
    "message.revoked",
    "message.edited",
    "message.reaction",
)
TOKEN_HEADER = "X-Zapsync-Token"
SIGNATURE_HEADER = "x-webhook-hmac"
ALGORITHM_HEADER = "x-webhook-hmac-algorithm"


def signature(body: bytes, secret: str) -> str:
    """WAHA's `X-Webhook-Hmac`: hex HMAC-SHA512 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


class WahaGateway:
    provider = "waha"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        session: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.timeout = timeout
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._headers = {"X-Api-Key": api_key, "Accept": "application/json"}

    # --- plumbing -------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}/api/{path}"

    @property
    def _s(self) -> str:
        return quote(self.session, safe="")

    async def _call(self, method: str, path: str, *, expect: type = object, **kw: Any) -> Any:
        return await request_json(
            self._client,
            method,
            self._url(path),
            expect=expect,
            headers=self._headers,
            timeout=self.timeout,
            **kw,
        )

    def _webhook_config(self, webhook: WebhookTarget) -> dict[str, Any]:
        return {
            "url": webhook.url,
            "events": list(WEBHOOK_EVENTS),
            "hmac": {"key": webhook.signing_key} if webhook.signing_key else None,
            "customHeaders": [{"name": TOKEN_HEADER, "value": webhook.secret}],
        }

    def _config_with(self, current: Any, webhook: WebhookTarget) -> dict[str, Any] | None:
        """`current` with our webhook in place of any earlier one of ours; None when it is
        already there as wanted (a PUT restarts a running session, so skip needless ones)."""
        config = dict(current) if isinstance(current, dict) else {}
        hooks = [h for h in config.get("webhooks") or [] if isinstance(h, dict)]
        wanted = self._webhook_config(webhook)
        if any(all(h.get(k) == v for k, v in wanted.items()) for h in hooks):
            return None
        others = [h for h in hooks if h.get("url") != webhook.url and not _is_ours(h)]
        config["webhooks"] = [*others, wanted]
        return config

    # --- instance -------------------------------------------------------------------

    async def _get_session(self) -> dict[str, Any] | None:
        try:
            data = await self._call("GET", f"sessions/{self._s}", expect=dict)
        except GatewayRejected as exc:
            if exc.status_code == 404:
                return None
            raise
        return data if isinstance(data, dict) else None

    async def create_instance(self, webhook: WebhookTarget) -> InstanceInfo:
        session = await self._get_session()
        if session is None:
            body = {
                "name": self.session,
                "start": True,
                "config": {"webhooks": [self._webhook_config(webhook)]},
            }
            try:
                session = await self._call("POST", "sessions", expect=dict, json=body)
            except GatewayRejected as exc:
                # Created meanwhile by someone else: attach to it like any existing one.
                if exc.status_code != 422 or "already exists" not in exc.reason:
                    raise
                session = await self._attach(webhook)
        else:
            session = await self._attach(webhook, session)
        state = self._state(session)
        qr = None
        if state.status is SessionStatus.QR_PENDING:
            try:
                qr = await self.get_qr()
            except GatewayRejected:
                qr = None  # the QR moved on between the two calls; the next check shows it
        return InstanceInfo(instance=self.session, status=state.status, qr=qr)

    async def _attach(
        self, webhook: WebhookTarget, session: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        session = session or await self._get_session()
        if session is None:
            raise GatewayRejected(f"WAHA session {self.session!r} disappeared", status_code=404)
        config = self._config_with(session.get("config"), webhook)
        if config is not None:
            body = {"name": self.session, "config": config}
            session = await self._call("PUT", f"sessions/{self._s}", expect=dict, json=body)
        if session.get("status") == "STOPPED":
            session = await self._call("POST", f"sessions/{self._s}/start", expect=dict)
        return session

    async def register_webhook(self, webhook: WebhookTarget) -> None:
        session = await self._get_session()
        if session is None:
            raise GatewayRejected(f"WAHA has no session {self.session!r}", status_code=404)
        config = self._config_with(session.get("config"), webhook)
        if config is not None:
            body = {"name": self.session, "config": config}
            await self._call("PUT", f"sessions/{self._s}", expect=dict, json=body)

    async def foreign_webhook(self, ours: WebhookTarget) -> ForeignWebhook | None:
        return None  # WAHA keeps a list of webhooks: ours is added beside the others

    async def remove_webhook(self, ours: WebhookTarget, restore: ForeignWebhook | None) -> None:
        session = await self._get_session()
        if session is None:
            return
        config = dict(session.get("config") or {})
        hooks = [h for h in config.get("webhooks") or [] if isinstance(h, dict)]
        kept = [h for h in hooks if h.get("url") != ours.url and not _is_ours(h)]
        if len(kept) != len(hooks):
            config["webhooks"] = kept
            body = {"name": self.session, "config": config}
            await self._call("PUT", f"sessions/{self._s}", expect=dict, json=body)

    async def get_qr(self) -> QrCode:
        data = await self._call("GET", f"{self._s}/auth/qr", expect=dict, params={"format": "raw"})
        value = data.get("value")
        if not isinstance(value, str) or not value:
            raise GatewayUnavailable("WAHA answered the QR request without a code")
        return QrCode(code=value)

    async def request_pairing_code(self, phone: str) -> QrCode:
        """Pair by code instead of QR (`phone` in digits, country code first)."""
        body = {"phoneNumber": phone}
        data = await self._call("POST", f"{self._s}/auth/request-code", expect=dict, json=body)
        code = data.get("code")
        if not isinstance(code, str) or not code:
            raise GatewayUnavailable("WAHA answered the pairing request without a code")
        return QrCode(code=None, pairing_code=code)

    def _state(self, session: Any) -> LiveState:
        try:
            return payloads.live_state(session)
        except (payloads.BadPayload, UnknownGatewayStatus) as exc:
            raise GatewayUnavailable(f"WAHA session status unreadable: {exc}") from None

    async def get_state(self) -> LiveState:
        try:
            session = await self._call("GET", f"sessions/{self._s}", expect=dict)
        except GatewayRejected as exc:
            if exc.status_code == 404:  # "Session not found": deleted at WAHA
                raise InstanceGone(exc.reason, status_code=404) from None
            raise
        return self._state(session)

    async def identity(self) -> str | None:
        return None  # a WAHA session is its name on its server

    async def connect(self) -> QrCode | None:
        state = await self.get_state()
        action = "start" if state.raw_status == "STOPPED" else "restart"
        await self._call("POST", f"sessions/{self._s}/{action}", expect=dict)
        return None

    async def logout(self) -> None:
        """WAHA logs out and starts the session again, on to a fresh QR that nobody asked
        for; stop it so the logout sticks until someone connects again."""
        await self._call("POST", f"sessions/{self._s}/logout")
        await self._call("POST", f"sessions/{self._s}/stop", expect=dict)

    async def delete(self) -> None:
        try:
            await self._call("DELETE", f"sessions/{self._s}")
        except GatewayRejected as exc:
            if exc.status_code != 404:  # already gone is what was asked
                raise

    # --- chats and messages ----------------------------------------------------------

    async def list_chats(self, page_size: int = 100) -> AsyncIterator[list[Chat]]:
        async def fetch(params: dict[str, Any]) -> Page[Any]:
            # Sorted by id, not by activity: a message arriving mid-scan must not shift
            # the pages and hide a chat.
            query = {**params, "sortBy": "id", "sortOrder": "asc"}
            return Page(await self._call("GET", f"{self._s}/chats", expect=list, params=query))

        seen = SeenKeys()
        async for page in paginate(fetch, OffsetPaginator(page_size)):
            chats = [self._parse(payloads.chat, item) for item in page.items]
            fresh = seen.fresh(chats, lambda c: c.jid)
            if not fresh:  # a gateway that ignores `offset` repeats its first page
                return
            yield fresh

    async def list_messages(
        self, chat_jid: str, since: datetime | None = None, page_size: int = 100
    ) -> AsyncIterator[list[Message]]:
        chat_id = quote(payloads.waha_jid(chat_jid), safe="@")
        path = f"{self._s}/chats/{chat_id}/messages"

        async def fetch(params: dict[str, Any]) -> Page[Any]:
            query: dict[str, Any] = {**params, "downloadMedia": "false"}
            if since is not None:
                query["filter.timestamp.gte"] = int(since.timestamp())
            return Page(await self._call("GET", path, expect=list, params=query))

        seen = SeenKeys()
        async for page in paginate(fetch, OffsetPaginator(page_size)):
            msgs = [self._parse(payloads.message, item) for item in page.items]
            fresh = seen.fresh(msgs, lambda m: m.provider_message_id)
            wanted = [m for m in fresh if since is None or m.timestamp >= since]
            if wanted:
                yield wanted
            # Newest first: once one is older than `since` the rest are too.
            if not fresh or len(wanted) < len(fresh):
                return

    @staticmethod
    def _parse(parse: Any, item: Any) -> Any:
        try:
            return parse(item)
        except payloads.BadPayload as exc:
            raise GatewayUnavailable(f"WAHA sent an unreadable item: {exc}") from None

    # --- sending --------------------------------------------------------------------

    async def _send(self, path: str, chat_id: str, body: dict[str, Any]) -> SentMessage:
        data = await self._call("POST", path, json={"session": self.session, **body})
        try:
            return SentMessage(provider_message_id=payloads.sent_message_id(data, chat_id))
        except payloads.BadPayload as exc:
            raise GatewayUnavailable(f"WAHA send answer unreadable: {exc}") from None

    async def send_text(self, to_jid: str, text: str) -> SentMessage:
        chat_id = payloads.waha_jid(to_jid)
        return await self._send("sendText", chat_id, {"chatId": chat_id, "text": text})

    async def send_media(self, to_jid: str, media: MediaToSend) -> SentMessage:
        chat_id = payloads.waha_jid(to_jid)
        file: dict[str, Any] = {"url": media.url}
        if media.mime_type:
            file["mimetype"] = media.mime_type
        if media.file_name:
            file["filename"] = media.file_name
        body: dict[str, Any] = {"chatId": chat_id, "file": file}
        if media.caption:
            body["caption"] = media.caption
        # WAHA Core sends video and voice only through Plus endpoints; a file always goes.
        path = "sendImage" if media.type == "image" else "sendFile"
        return await self._send(path, chat_id, body)

    async def mark_read(self, chat_jid: str, message_ids: Sequence[str]) -> bool:
        # WAHA reads the chat's unread messages itself; its message ids are its own serialized
        # form, so the chat is what is named.
        chat_id = quote(payloads.waha_jid(chat_jid), safe="@")
        await self._call("POST", f"{self._s}/chats/{chat_id}/messages/read", expect=dict)
        return True

    def file_url(self, media_url: str) -> str:
        """Where zapsync fetches a WAHA file: WAHA names its files by its own idea of its
        host (`WAHA_BASE_URL`, often `http://localhost:3000`), so the path under `/api/files/`
        is taken onto the configured base URL, and the API key never goes to another host."""
        path = httpx.URL(media_url).raw_path.decode("ascii", "replace")
        at = path.find("/api/files/")
        if at < 0:
            raise MediaGone("WAHA's media URL is not one of its files (/api/files/...)")
        return self.base_url + path[at:]

    async def download_media(self, ref: MediaRef, max_bytes: int) -> DownloadedMedia:
        """WAHA keeps the file it downloaded and serves it at `media.url`, behind its key."""
        if not ref.media_url:
            raise MediaGone("WAHA sent no media URL for this message")
        got = await request_file(
            self._client,
            self.file_url(ref.media_url),
            max_bytes=max_bytes,
            headers={"X-Api-Key": self._headers["X-Api-Key"]},
            timeout=self.timeout,
        )
        return DownloadedMedia(got.data, ref.mime_type or got.mime_type)

    # --- webhooks -------------------------------------------------------------------

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, signing_key: str
    ) -> SignatureCheck:
        lowered = {k.lower(): v for k, v in headers.items()}
        given = lowered.get(SIGNATURE_HEADER)
        if given is None:
            return UNSIGNED
        algorithm = lowered.get(ALGORITHM_HEADER, "sha512").strip().lower()
        if algorithm != "sha512" or not signing_key:
            return SignatureCheck(Signature.INVALID)  # presented, and not one we can check
        if not hmac.compare_digest(given.strip().lower(), signature(body, signing_key)):
            return SignatureCheck(Signature.INVALID)
        return SignatureCheck(Signature.VALID, signed_at=payloads.signed_at(body, lowered))

    def parse_webhook(self, body: bytes) -> list[WebhookEvent]:
        envelope = webhook_object(body, "WAHA")
        try:
            return payloads.event(envelope)
        except payloads.BadPayload as exc:
            raise WebhookRejected(f"WAHA webhook malformed: {exc}") from None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _is_ours(hook: dict[str, Any]) -> bool:
    """A webhook zapsync registered earlier (its URL may have changed since)."""
    headers = hook.get("customHeaders") or []
    return any(isinstance(h, dict) and h.get("name") == TOKEN_HEADER for h in headers)
