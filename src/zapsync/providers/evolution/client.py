"""The Evolution API v2 adapter: one Evolution instance behind the Gateway Protocol.

Status is read from `connectionState` (the live socket), never from `fetchInstances`, whose
`connectionStatus` is a DB column that defaults to `open` and is not written on silent drops.
Evolution does not sign webhooks: the session secret travels in the `X-Zapsync-Token` custom
header, which Evolution sends as given and the receiver checks.

`findMessages` records carry no `status`: the acks of history come from each record's
`MessageUpdate` rows (the status updates Evolution stored), never from the record itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from zapsync.domain.gateway import (
    Ack,
    Chat,
    ContactSeen,
    InstanceInfo,
    LiveState,
    Message,
    QrCode,
    SentMessage,
    WebhookEvent,
)
from zapsync.domain.status import SessionStatus, UnknownGatewayStatus, from_evolution
from zapsync.providers.baileys import recipient
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
)
from zapsync.providers.base64_media import decode_media, str_or_none
from zapsync.providers.evolution import payloads
from zapsync.providers.evolution.errors import PERMANENT_ERRORS
from zapsync.providers.evolution.payloads import event_name, qr_code
from zapsync.providers.http import DEFAULT_TIMEOUT, request_json
from zapsync.providers.paging import (
    OffsetPaginator,
    Page,
    PageNumberPaginator,
    SeenKeys,
    paginate,
)

__all__ = ["TOKEN_HEADER", "WEBHOOK_EVENTS", "EvolutionGateway", "event_name"]

TOKEN_HEADER = "X-Zapsync-Token"
INTEGRATION = "WHATSAPP-BAILEYS"
WEBHOOK_EVENTS = (
    "QRCODE_UPDATED",
    "CONNECTION_UPDATE",
    "MESSAGES_SET",
    "MESSAGES_UPSERT",
    "MESSAGES_UPDATE",
    "MESSAGES_EDITED",
    "MESSAGES_DELETE",
    "SEND_MESSAGE",
    "CONTACTS_UPSERT",
    "CONTACTS_UPDATE",
    "CHATS_SET",
    "CHATS_UPSERT",
    "LOGOUT_INSTANCE",
)
# Evolution holds `create` (with a QR) for 5 s and `connect` for 2 s before answering.
_CREATE_WAIT = 5.0
_CONNECT_WAIT = 2.0
_LAST_STORABLE = datetime.fromtimestamp(2**31 - 1, UTC)
# A download decrypts the file first; and its JSON carries a little beside the base64.
_MEDIA_WAIT = 20.0
_JSON_SLACK = 64 * 1024


def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EvolutionGateway:
    provider = "evolution"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        instance: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.instance = instance
        self.timeout = timeout
        self._client = client
        self._owns_client = False
        self._headers = {"apikey": api_key}

    def _http(self) -> httpx.AsyncClient:
        # Created on first call: a gateway built only to parse a webhook never opens a pool.
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
            self._owns_client = True
        return self._client

    # --- plumbing ---------------------------------------------------------------

    def _path(self, route: str) -> str:
        return f"{self.base_url}/{route}/{quote(self.instance, safe='')}"

    async def _call(
        self,
        method: str,
        url: str,
        *,
        expect: type = dict,
        json: Any = None,
        wait: float = 0.0,
        max_bytes: int | None = None,
    ) -> Any:
        try:
            return await request_json(
                self._http(),
                method,
                url,
                expect=expect,
                headers=self._headers,
                json=json,
                timeout=self.timeout + wait,
                permanent=PERMANENT_ERRORS,
                max_bytes=max_bytes,
            )
        except GatewayRejected as exc:
            # `The "x" instance does not exist`: deleted at the gateway, for good.
            if exc.status_code == 404 and "does not exist" in exc.reason:
                raise InstanceGone(exc.reason, status_code=404) from None
            raise

    def _webhook_config(self, webhook: WebhookTarget) -> dict[str, Any]:
        return {
            "enabled": True,
            "url": webhook.url,
            "headers": {TOKEN_HEADER: webhook.secret},
            "byEvents": False,
            "base64": False,
            "events": list(WEBHOOK_EVENTS),
        }

    async def _connect(self) -> dict[str, Any]:
        """`GET /instance/connect`; its errors come back as `{error:true, message}` with a 200."""
        data: dict[str, Any] = await self._call(
            "GET", self._path("instance/connect"), wait=_CONNECT_WAIT
        )
        if data.get("error") is True:
            reason = data.get("message")
            raise GatewayRejected(
                str(reason) if reason else "Evolution refused to connect", status_code=200
            )
        return data

    # --- instance lifecycle -----------------------------------------------------

    async def create_instance(self, webhook: WebhookTarget) -> InstanceInfo:
        body = {
            "instanceName": self.instance,
            "integration": INTEGRATION,
            "qrcode": True,
            "webhook": self._webhook_config(webhook),
        }
        try:
            data = await self._call(
                "POST", f"{self.base_url}/instance/create", json=body, wait=_CREATE_WAIT
            )
        except GatewayRejected as exc:
            # 2.3 answers a taken name with 403 (older builds 400): the instance is ours to attach.
            if exc.status_code in (400, 403) and "already in use" in exc.reason.lower():
                return await self._attach(webhook)
            raise
        qr = qr_code(data.get("qrcode"))
        instance = data.get("instance") if isinstance(data.get("instance"), dict) else {}
        identity = instance.get("instanceId")
        identity = identity if isinstance(identity, str) and identity else None
        if qr.code:
            return InstanceInfo(self.instance, SessionStatus.QR_PENDING, qr, identity)
        try:
            status = from_evolution(str(instance.get("status")))
        except UnknownGatewayStatus:  # older builds answer "created"
            status = (await self.get_state()).status
        return InstanceInfo(self.instance, status, qr if qr.pairing_code else None, identity)

    async def _attach(self, webhook: WebhookTarget) -> InstanceInfo:
        await self.register_webhook(webhook)
        state = await self.get_state()
        if state.status is SessionStatus.CONNECTING:
            # While connecting, `connect` only reads the current QR: no side effect.
            qr = self._qr_of(await self._connect())
            if qr and (qr.code or qr.pairing_code):
                return InstanceInfo(self.instance, SessionStatus.QR_PENDING, qr)
        return InstanceInfo(self.instance, state.status)

    async def identity(self) -> str | None:
        """The instance's `id` in Evolution's database (`instanceId` everywhere else)."""
        url = f"{self.base_url}/instance/fetchInstances?instanceName={quote(self.instance)}"
        rows = await self._call("GET", url, expect=list)
        for row in rows:
            if isinstance(row, dict) and row.get("name") == self.instance:
                found = row.get("id")
                return str(found) if found else None
        return None

    async def register_webhook(self, webhook: WebhookTarget) -> None:
        await self._call(
            "POST", self._path("webhook/set"), json={"webhook": self._webhook_config(webhook)}
        )

    async def foreign_webhook(self, ours: WebhookTarget) -> ForeignWebhook | None:
        """Evolution keeps one webhook per instance: the team's own (n8n, Typebot) when it
        is neither ours nor another zapsync session's (those carry our token header)."""
        row = await self._call("GET", self._path("webhook/find"), expect=object)
        if not isinstance(row, dict) or row.get("enabled") is not True:
            return None
        url, headers = row.get("url"), row.get("headers")
        headers = headers if isinstance(headers, dict) else None
        if not isinstance(url, str) or not url or url == ours.url:
            return None
        if headers and any(str(k).lower() == TOKEN_HEADER.lower() for k in headers):
            return None
        config: dict[str, Any] = {
            "enabled": True,
            "url": url,
            "byEvents": bool(row.get("webhookByEvents")),
            "base64": bool(row.get("webhookBase64")),
            "events": [str(e) for e in row.get("events") or []],
        }
        if headers is not None:
            config["headers"] = headers
        return ForeignWebhook(url, config)

    async def remove_webhook(self, ours: WebhookTarget, restore: ForeignWebhook | None) -> None:
        # One webhook per instance: putting the team's back is what removes ours.
        hook = restore.config if restore else {"enabled": False, "url": ours.url, "events": []}
        await self._call("POST", self._path("webhook/set"), json={"webhook": hook})

    async def get_qr(self) -> QrCode:
        # `connect` starts a socket when the instance is `close`; only while `connecting`
        # does it just read the current QR. So read the state first and never start one.
        if (await self.get_state()).status is not SessionStatus.CONNECTING:
            return QrCode(code=None)
        return self._qr_of(await self._connect()) or QrCode(code=None)

    @staticmethod
    def _qr_of(data: dict[str, Any]) -> QrCode | None:
        instance = data.get("instance")
        if isinstance(instance, dict) and "state" in instance:
            return None  # already open: nothing to scan
        if isinstance(data.get("qrcode"), dict):  # `refused`: {instance:{status}, qrcode}
            return qr_code(data["qrcode"])
        return qr_code(data)  # the bare QR object, or `{"count":0}` when none could be made

    async def get_state(self) -> LiveState:
        data = await self._call("GET", self._path("instance/connectionState"))
        instance = data.get("instance")
        state = instance.get("state") if isinstance(instance, dict) else None
        if not isinstance(state, str):
            # The instance exists in the DB but not in memory: the state is not known.
            raise GatewayUnavailable("Evolution answered connectionState without a state")
        try:
            status = from_evolution(state)
        except UnknownGatewayStatus as exc:
            raise GatewayUnavailable(str(exc)) from None
        return LiveState(status=status, raw_status=state)

    async def connect(self) -> QrCode | None:
        return self._qr_of(await self._connect())

    async def logout(self) -> None:
        """Log out so the instance stays down. Evolution refuses (400 "is not connected") to
        log out a `close` instance, yet keeps reconnecting it in a loop; so open the socket
        and log out of that: the loop ends only with a logout (or a delete)."""
        try:
            await self._call("DELETE", self._path("instance/logout"))
            return
        except GatewayRejected as exc:
            if exc.status_code != 400 or "not connected" not in exc.reason:
                raise
        await self._connect()
        await self._call("DELETE", self._path("instance/logout"))

    async def delete(self) -> None:
        try:
            await self._call("DELETE", self._path("instance/delete"))
        except GatewayRejected as exc:
            if exc.status_code == 404:  # already gone
                return
            if exc.status_code == 400 and "needs to be disconnected" in exc.reason:
                # Builds before 2.3 refuse to delete an open instance: log out first.
                await self.logout()
                await self._call("DELETE", self._path("instance/delete"))
                return
            raise

    # --- reading ----------------------------------------------------------------

    async def list_chats(self, page_size: int = 100) -> AsyncIterator[list[Chat]]:
        """findChats with take/skip. Only chats with a stored message are listed (the list is
        built from the Message table), so an empty answer right after pairing is normal."""

        async def fetch(params: dict[str, Any]) -> Page[Any]:
            body = {"where": {}, **params}
            path = self._path("chat/findChats")
            return Page(await self._call("POST", path, expect=list, json=body))

        # A build that ignores take/skip answers everything at once, or the same page again.
        paginator = OffsetPaginator(page_size, limit_param="take", offset_param="skip")
        seen = SeenKeys()
        async for page in paginate(fetch, paginator):
            try:
                chats = [payloads.chat(item) for item in page.items]
            except payloads.PayloadError as exc:
                raise GatewayUnavailable(f"Evolution findChats: {exc}") from None
            fresh = seen.fresh(chats, lambda c: c.jid)
            if not fresh:
                return
            yield fresh

    async def list_contacts(self) -> list[ContactSeen]:
        """findContacts: the Contact rows, whose `pushName` is the name saved on the phone
        (findChats shows the Chat row's name instead, often empty or the WhatsApp profile
        name). People only: groups and group members are left out."""
        items = await self._call(
            "POST", self._path("chat/findContacts"), expect=list, json={"where": {}}
        )
        try:
            return [
                payloads.contact(item)
                for item in items
                if isinstance(item, dict) and item.get("type", "contact") == "contact"
            ]
        except payloads.PayloadError as exc:
            raise GatewayUnavailable(f"Evolution findContacts: {exc}") from None

    async def list_messages(
        self, chat_jid: str, since: datetime | None = None, page_size: int = 100
    ) -> AsyncIterator[list[Message]]:
        """findMessages, newest first, page by page until `since` or the last page.

        Records carry no `status` of their own: an outgoing message's acks are its
        `MessageUpdate` rows (the status updates Evolution stored), read by `payloads._ack`."""
        where: dict[str, Any] = {"key": {"remoteJid": chat_jid}}
        if since is not None:
            # Evolution applies the filter only when it has both bounds (a lone `gte` is
            # dropped and every page back to the start is served). The upper bound is open:
            # the last second its 32-bit `messageTimestamp` column holds, whatever its clock.
            where["messageTimestamp"] = {"gte": _iso(since), "lte": _iso(_LAST_STORABLE)}

        async def fetch(params: dict[str, Any]) -> Page[Any]:
            path = self._path("chat/findMessages")
            data = await self._call("POST", path, json={"where": where, **params})
            block = data.get("messages")
            records = block.get("records") if isinstance(block, dict) else None
            if not isinstance(records, list):
                raise GatewayUnavailable("Evolution findMessages answered without records")
            pages = block.get("pages") if isinstance(block, dict) else None
            return Page(records, pages if isinstance(pages, int) else None)

        # `offset` is Evolution's name for the page size.
        paginator = PageNumberPaginator(page_size=page_size, size_param="offset")
        seen = SeenKeys()
        async for page in paginate(fetch, paginator):
            batch: list[Message] = []
            new = 0
            reached_since = False
            try:
                for record in page.items:
                    msg = payloads.shown_message(record)
                    if not seen.first(payloads.record_id(record)):
                        continue
                    new += 1
                    if msg is None:  # an edit or revoke stored as a message
                        continue
                    if since is not None and msg.timestamp < since:
                        reached_since = True
                        continue
                    batch.append(msg)
            except payloads.PayloadError as exc:
                raise GatewayUnavailable(f"Evolution findMessages: {exc}") from None
            if batch:
                yield batch
            # `new == 0`: a build that ignores `page` repeats the same records forever.
            if reached_since or new == 0:
                return

    # --- sending ----------------------------------------------------------------

    @staticmethod
    def _sent(data: dict[str, Any]) -> SentMessage:
        key = data.get("key")
        msg_id = key.get("id") if isinstance(key, dict) else None
        if not isinstance(msg_id, str) or not msg_id:
            raise GatewayUnavailable("Evolution answered a send without a message id")
        return SentMessage(msg_id, payloads.ack_of(data.get("status")) or Ack.SENT)

    async def send_text(self, to_jid: str, text: str) -> SentMessage:
        body = {"number": recipient(to_jid), "text": text}
        return self._sent(await self._call("POST", self._path("message/sendText"), json=body))

    async def send_media(self, to_jid: str, media: MediaToSend) -> SentMessage:
        body: dict[str, Any] = {
            "number": recipient(to_jid),
            "mediatype": media.type,
            "media": media.url,
        }
        if media.mime_type:
            body["mimetype"] = media.mime_type
        if media.caption:
            body["caption"] = media.caption
        if media.file_name:
            body["fileName"] = media.file_name
        return self._sent(await self._call("POST", self._path("message/sendMedia"), json=body))

    async def mark_read(self, chat_jid: str, message_ids: Sequence[str]) -> bool:
        keys = [{"remoteJid": chat_jid, "fromMe": False, "id": i} for i in message_ids]
        if keys:
            await self._call(
                "POST", self._path("chat/markMessageAsRead"), json={"readMessages": keys}
            )
        return True

    async def download_media(self, ref: MediaRef, max_bytes: int) -> DownloadedMedia:
        """`getBase64FromMediaMessage`: Evolution finds the message by its key in its own
        store and downloads (decrypts) the media from WhatsApp. It reports a message it does
        not have, or media WhatsApp no longer serves, as a 400 (BadRequestException)."""
        key = {"id": ref.provider_message_id, "fromMe": ref.from_me}
        if ref.chat_jid:
            key["remoteJid"] = ref.chat_jid
        body = {"message": {"key": key}, "convertToMp4": False}
        try:
            data = await self._call(
                "POST",
                self._path("chat/getBase64FromMediaMessage"),
                json=body,
                wait=_MEDIA_WAIT,
                max_bytes=max_bytes * 4 // 3 + _JSON_SLACK,
            )
        except InstanceGone:
            raise
        except GatewayRejected as exc:
            if exc.status_code in (400, 404):
                raise MediaGone(exc.reason, status_code=exc.status_code) from None
            raise
        return decode_media(
            data.get("base64"),
            max_bytes,
            mime_type=str_or_none(data.get("mimetype")),
            file_name=str_or_none(data.get("fileName")),
        )

    # --- webhooks ---------------------------------------------------------------

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, signing_key: str
    ) -> SignatureCheck:
        return UNSIGNED  # Evolution does not sign; the receiver checks X-Zapsync-Token instead

    def parse_webhook(self, body: bytes) -> list[WebhookEvent]:
        return payloads.parse_webhook(body)

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None
            self._owns_client = False
