"""MegaAPI adapter: a hosted Baileys gateway (`*.megaapi.com.br`), spoken to over `/rest/...`
with the account's `Authorization: Bearer <token>` (GATEWAYS.md §3).

MegaAPI provisions instances itself, so zapsync never creates one: it attaches to the
instance key it was given. MegaAPI does not sign webhooks and sends no custom header, so the
session secret travels in the webhook URL's query string (`?token=<secret>`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from zapsync.domain.gateway import (
    Ack,
    Chat,
    InstanceInfo,
    LiveState,
    Message,
    QrCode,
    SentMessage,
    WebhookEvent,
)
from zapsync.domain.status import SessionStatus, UnknownGatewayStatus, from_megaapi
from zapsync.providers.baileys import ack_of, phone_of, recipient
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
    SignatureCheck,
    WebhookTarget,
    webhook_object,
)
from zapsync.providers.base64_media import decode_media
from zapsync.providers.http import request_json
from zapsync.providers.megaapi import payloads

SECRET_PARAM = "token"

# zapsync's media kinds to MegaAPI's `mediaUrl` types.
_SEND_TYPES = {"image": "image", "video": "video", "audio": "audio", "ptt": "ptt",
               "voice": "ptt", "document": "document"}  # fmt: skip


# zapsync's message types to the `messageType` downloadMediaMessage decrypts as.
_MEDIA_TYPES = {"image": "image", "video": "video", "audio": "audio", "document": "document",
                "sticker": "sticker"}  # fmt: skip
_MEDIA_WAIT = 20.0  # MegaAPI downloads and decrypts the file before answering
_JSON_SLACK = 64 * 1024


def webhook_url_with_secret(url: str, secret: str) -> str:
    """The webhook URL MegaAPI should call: the caller's own query is kept and the session
    secret added, since MegaAPI has no header or signature to carry it."""
    return str(httpx.URL(url).copy_set_param(SECRET_PARAM, secret))


class MegaApiGateway:
    """One MegaAPI instance, addressed by its instance key."""

    provider = "megaapi"

    def __init__(
        self,
        base_url: str,
        token: str,
        instance_key: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.instance_key = instance_key
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout

    # --- HTTP -----------------------------------------------------------------------

    def _url(self, template: str) -> str:
        return self.base_url + template.format(key=quote(self.instance_key, safe=""))

    async def _call(self, method: str, template: str, **kwargs: Any) -> dict[str, Any]:
        data: dict[str, Any] | None = await request_json(
            self._client,
            method,
            self._url(template),
            expect=dict,
            headers=self._headers,
            timeout=self._timeout,
            **kwargs,
        )
        if data is None:
            raise GatewayUnavailable(f"megaapi sent an empty body on {method} {template}")
        # Some MegaAPI builds report a refusal as HTTP 200 with `error: true`.
        if data.get("error") is True:
            raise GatewayRejected(str(data.get("message") or "megaapi refused the request"))
        return data

    # --- instance -------------------------------------------------------------------

    async def create_instance(self, webhook: WebhookTarget) -> InstanceInfo:
        """Attach to the instance MegaAPI provisioned and point its webhook at zapsync.

        The status call comes first so a wrong token or an unknown key fails with MegaAPI's
        own reason before anything is changed."""
        state = await self.get_state()
        await self.register_webhook(webhook)
        if state.status is SessionStatus.CONNECTED:
            return InstanceInfo(self.instance_key, state.status)
        try:
            qr = await self.get_qr()
        except GatewayRejected:
            # No QR to show (for instance the phone paired meanwhile): the status stands.
            return InstanceInfo(self.instance_key, state.status)
        return InstanceInfo(self.instance_key, SessionStatus.QR_PENDING, qr)

    async def register_webhook(self, webhook: WebhookTarget) -> None:
        url = webhook_url_with_secret(webhook.url, webhook.secret)
        body = {"messageData": {"webhookUrl": url, "webhookEnabled": True}}
        await self._call("POST", "/rest/webhook/{key}/configWebhook", json=body)

    async def foreign_webhook(self, ours: WebhookTarget) -> ForeignWebhook | None:
        return None  # MegaAPI documents no way to read the webhook it has

    async def remove_webhook(self, ours: WebhookTarget, restore: ForeignWebhook | None) -> None:
        body = {"messageData": {"webhookUrl": "", "webhookEnabled": False}}
        await self._call("POST", "/rest/webhook/{key}/configWebhook", json=body)

    async def get_qr(self) -> QrCode:
        """The QR to scan. MegaAPI sends only a PNG data URL; the raw QR string is used when
        the server also sends it (the sandbox does, in `code`). MegaAPI has no read-only
        QR route: asking for one starts an unpaired instance's socket, so zapsync never asks
        for a logged-out session (the sessions service refuses first)."""
        data = await self._call("GET", "/rest/instance/qrcode_base64/{key}")
        code = payloads.qr_code(data)
        if code is None:
            raise GatewayUnavailable("megaapi sent no qrcode")
        return QrCode(code=code)

    async def request_pairing_code(self, phone: str) -> QrCode:
        """A code to type on the phone instead of scanning (MegaAPI `pairingCode`)."""
        params = {"phoneNumber": "".join(ch for ch in phone if ch.isdigit())}
        data = await self._call("GET", "/rest/instance/pairingCode/{key}", params=params)
        code = data.get("pairingCode")
        if not isinstance(code, str) or not code:
            raise GatewayUnavailable("megaapi sent no pairingCode")
        return QrCode(code=None, pairing_code=code)

    async def get_state(self) -> LiveState:
        try:
            data = await self._call("GET", "/rest/instance/{key}")
        except GatewayRejected as exc:
            if exc.status_code == 404:  # "instance not found": removed from the account
                raise InstanceGone(exc.reason, status_code=404) from None
            raise
        instance = data.get("instance")
        status = instance.get("status") if isinstance(instance, dict) else None
        if not isinstance(status, str):
            raise GatewayUnavailable("megaapi status response has no instance.status")
        try:
            mapped = from_megaapi(status)
        except UnknownGatewayStatus as exc:
            # An answer we cannot read says nothing about the session: do not guess.
            raise GatewayUnavailable(str(exc)) from None
        user = instance.get("user") if isinstance(instance, dict) else None
        phone = phone_of(user.get("id")) if isinstance(user, dict) else None
        return LiveState(status=mapped, raw_status=status, phone=phone)

    async def connect(self) -> QrCode | None:
        """MegaAPI has no start route; a restart reopens the socket, which heals a silent
        drop or a stuck session and shows a fresh QR when no phone is paired."""
        await self._call("DELETE", "/rest/instance/{key}/restart")
        return None

    async def identity(self) -> str | None:
        return None  # the instance key is MegaAPI's own id

    async def logout(self) -> None:
        await self._call("DELETE", "/rest/instance/{key}/logout")

    async def delete(self) -> None:
        """The instance belongs to the MegaAPI account and is not deleted here: zapsync
        unpairs the phone and stops MegaAPI from posting to it."""
        with contextlib.suppress(GatewayRejected):  # already logged out: nothing to undo
            await self.logout()
        body = {"messageData": {"webhookUrl": "", "webhookEnabled": False}}
        await self._call("POST", "/rest/webhook/{key}/configWebhook", json=body)

    # --- history --------------------------------------------------------------------

    async def list_chats(self, page_size: int = 100) -> AsyncIterator[list[Chat]]:
        """Yields nothing: MegaAPI's published API (openapi.yaml v6.1) has no route that lists
        chats; its ChatController only sets presence and deletes messages. Chats reach
        zapsync through message webhooks instead."""
        return
        yield  # makes this an async generator

    async def list_messages(
        self, chat_jid: str, since: datetime | None = None, page_size: int = 100
    ) -> AsyncIterator[list[Message]]:
        """Yields nothing: MegaAPI publishes no message-history route (openapi.yaml v6.1).
        Messages reach zapsync only through webhooks, from the moment they are set."""
        return
        yield  # makes this an async generator

    # --- sending --------------------------------------------------------------------

    async def _send(self, route: str, message_data: dict[str, Any]) -> SentMessage:
        data = await self._call("POST", route, json={"messageData": message_data})
        sent = data.get("messageData")
        key = sent.get("key") if isinstance(sent, dict) else data.get("key")
        message_id = key.get("id") if isinstance(key, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise GatewayUnavailable("megaapi accepted the message but returned no key.id")
        ack = ack_of(sent.get("status")) if isinstance(sent, dict) else None
        # PENDING is Baileys' state before the server ack; the gateway has taken it.
        return SentMessage(message_id, ack if ack and ack is not Ack.PENDING else Ack.SENT)

    async def send_text(self, to_jid: str, text: str) -> SentMessage:
        return await self._send(
            "/rest/sendMessage/{key}/text", {"to": recipient(to_jid), "text": text}
        )

    async def send_media(self, to_jid: str, media: MediaToSend) -> SentMessage:
        kind = _SEND_TYPES.get(media.type)
        if kind is None:
            raise GatewayRejected(f"megaapi cannot send media of type {media.type!r}")
        data: dict[str, Any] = {"to": recipient(to_jid), "url": media.url, "type": kind}
        if media.caption:
            data["caption"] = media.caption
        if media.file_name:
            data["fileName"] = media.file_name
        if media.mime_type:
            data["mimeType"] = media.mime_type
        return await self._send("/rest/sendMessage/{key}/mediaUrl", data)

    async def mark_read(self, chat_jid: str, message_ids: Sequence[str]) -> bool:
        return False  # no read-receipt route is documented (see contracts/GATEWAYS.md)

    async def download_media(self, ref: MediaRef, max_bytes: int) -> DownloadedMedia:
        """`downloadMediaMessage`: MegaAPI keeps no message, so it is handed the keys the
        webhook carried (`mediaKey`, the CDN `url` and its `directPath`) and decrypts the file;
        it answers `data` as a `data:` URL. A refusal (400/404) means it cannot any more: the
        CDN dropped the file or the keys do not open it."""
        if not ref.media_key or not ref.media_url:
            raise MediaGone("the message's media keys were not kept; MegaAPI cannot fetch it")
        url = httpx.URL(ref.media_url)
        keys = {
            "mediaKey": ref.media_key,
            "directPath": url.raw_path.decode("ascii", "replace").replace("&mms3=true", ""),
            "url": ref.media_url,
            "mimetype": ref.mime_type or "",
            "messageType": _MEDIA_TYPES.get(ref.type, "document"),
        }
        try:
            data: dict[str, Any] | None = await request_json(
                self._client,
                "POST",
                self._url("/rest/instance/downloadMediaMessage/{key}"),
                expect=dict,
                headers=self._headers,
                timeout=self._timeout + _MEDIA_WAIT,
                max_bytes=max_bytes * 4 // 3 + _JSON_SLACK,
                json={"messageKeys": keys},
            )
        except GatewayRejected as exc:
            if exc.status_code in (400, 404, 410):
                raise MediaGone(exc.reason, status_code=exc.status_code) from None
            raise
        if not data or data.get("error") is True:
            reason = (data or {}).get("message")
            raise MediaGone(str(reason or "megaapi could not download the media"))
        return decode_media(data.get("data"), max_bytes, mime_type=ref.mime_type)

    # --- webhooks -------------------------------------------------------------------

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, signing_key: str
    ) -> SignatureCheck:
        """MegaAPI signs nothing; the receiver checks the `token` in the URL instead."""
        return UNSIGNED

    def parse_webhook(self, body: bytes) -> list[WebhookEvent]:
        """MegaAPI posts one flat Baileys-style object per event, with no envelope."""
        return [payloads.parse_event(webhook_object(body, "megaapi"))]

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
