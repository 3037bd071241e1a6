"""An async client for Chatwoot's Application API (`/api/v1/accounts/{account_id}/...`).

One method per call zapsync makes, returning Chatwoot's JSON with its envelope taken off;
failures raise the typed errors of `errors.py` with Chatwoot's own reason. A 429 is waited out
with zapsync's jittered backoff and retried (Chatwoot sends no Retry-After, CHATWOOT.md §7); a
429 changes nothing upstream, so every method, creates included, retries it safely. Nothing
else is retried here: a create that timed out may have happened, and the caller (the outbox)
decides. The token goes in the `api_access_token` header and never into a log line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import structlog

from zapsync.connectors.chatwoot.errors import (
    ChatwootError,
    ChatwootNotFound,
    ChatwootRateLimited,
    ChatwootUnavailable,
    error_for,
)
from zapsync.connectors.chatwoot.mapping import int_or_none
from zapsync.connectors.chatwoot.paginators import (
    BeforeIdPaginator,
    PageNumberPaginator,
    Params,
    paginate,
    paginate_ahead,
)
from zapsync.domain.backoff import backoff

log = structlog.get_logger(__name__)

DEFAULT_API_URL = "https://app.chatwoot.com"
DEFAULT_TIMEOUT = 15.0
# Rack::Attack counts per minute: the sixth wait of a 1 s base is about half a minute, so the
# retries span the window that throttled us without stalling a run for long.
DEFAULT_MAX_ATTEMPTS = 7
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_CAP = 60.0

CONTACTS_PER_PAGE = 15
CONVERSATIONS_PER_PAGE = 25
MESSAGES_PER_PAGE = 20

# Numbered pages asked for at once: the next is on its way while one is read, and a pull costs
# about the longer of Chatwoot's answers and zapsync's writes. Few, so a pull stays a small
# share of Rack::Attack's 3,000 requests a minute (a 429 is waited out all the same).
PAGES_IN_FLIGHT = 3

CONVERSATION_STATUSES = ("open", "resolved", "pending", "snoozed")

Json = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]
# A GET without httpx's objects over the same pool: (status, body), or None for no answer.
BareGet = Callable[[str, Mapping[str, str], Mapping[str, str]], Awaitable[tuple[int, bytes] | None]]


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to send with a message (multipart `attachments[]`)."""

    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ContactsPage:
    items: list[Json]
    count: int | None  # the total over all pages, as Chatwoot counts it
    current_page: int  # Chatwoot echoes the query param: "2" comes back as a string


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """Who the token is and what it reaches: what a connection test learned."""

    user_id: int | None
    user_name: str | None
    account_id: int
    account_name: str | None
    role: str | None
    inboxes: list[Json]


class ChatwootClient:
    """The Application API of one Chatwoot account, reached with one user's access token."""

    def __init__(
        self,
        api_key: str,
        account_id: int | str,
        api_url: str = DEFAULT_API_URL,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_cap: float = DEFAULT_BACKOFF_CAP,
        sleep: Sleep = asyncio.sleep,
        bare_get: BareGet | None = None,
    ) -> None:
        account = str(account_id).strip()
        if not account.isdigit():
            raise ValueError(f"a Chatwoot account id is a number, not {account_id!r}")
        if not api_key:
            raise ValueError("a Chatwoot access token is required")
        self.account_id = int(account)
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self._api_base = f"{self.api_url}/api/v1"
        self._account_base = f"{self._api_base}/accounts/{self.account_id}"
        self._headers = {"api_access_token": api_key, "Accept": "application/json"}
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._bare_get = bare_get
        self.throttled = 0  # 429s answered so far, for a run's report and the tests

    def __repr__(self) -> str:  # never the token
        return f"ChatwootClient({self.api_url!r}, account_id={self.account_id})"

    async def __aenter__(self) -> ChatwootClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    # --- the connection ------------------------------------------------------------

    async def profile(self) -> Json:
        """`GET /api/v1/profile`: the token's user, with the accounts it belongs to."""
        return _object(await self._call("GET", "/profile", scoped=False))

    async def test_connection(self) -> ConnectionCheck:
        """Prove the token and the account before anything is stored: the token must name a
        user (401 `Invalid Access Token` otherwise) and the account must answer to it (404 for
        an unknown one, 401 for one the user is not in). Raises with Chatwoot's reason."""
        user = await self.profile()
        try:
            inboxes = await self.list_inboxes()
        except ChatwootNotFound as exc:
            raise ChatwootNotFound(
                f"Account {self.account_id} not found: {exc.reason}", status=exc.status
            ) from exc
        membership = next(
            (
                a
                for a in user.get("accounts") or []
                if isinstance(a, dict) and str(a.get("id")) == str(self.account_id)
            ),
            {},
        )
        return ConnectionCheck(
            user_id=user.get("id") if isinstance(user.get("id"), int) else None,
            user_name=user.get("name") or user.get("available_name"),
            account_id=self.account_id,
            account_name=membership.get("name"),
            role=membership.get("role"),
            inboxes=inboxes,
        )

    # --- inboxes -------------------------------------------------------------------

    async def list_inboxes(self) -> list[Json]:
        return _payload_list(await self._call("GET", "/inboxes"))

    async def create_api_inbox(self, name: str, webhook_url: str | None = None) -> Json:
        """An API-channel inbox (`Channel::Api`); Chatwoot posts its conversation and message
        events to `webhook_url`."""
        channel: Json = {"type": "api"}
        if webhook_url:
            channel["webhook_url"] = webhook_url
        body = {"name": name, "channel": channel}
        return _object(await self._call("POST", "/inboxes", json=body))

    # --- contacts ------------------------------------------------------------------

    async def list_contacts(
        self, page: int = 1, *, sort: str | None = None, include_contact_inboxes: bool = True
    ) -> ContactsPage:
        """One page of 15 resolved contacts (with an email, phone or identifier)."""
        params: Params = {"page": page}
        if sort:
            params["sort"] = sort
        if not include_contact_inboxes:
            params["include_contact_inboxes"] = "false"
        body = _object(await self._list("/contacts", params))
        meta = _object_or_empty(body.get("meta"))
        return ContactsPage(
            items=_items(body.get("payload")),
            count=int_or_none(meta.get("count")),
            current_page=int_or_none(meta.get("current_page")) or page,
        )

    def contact_pages(
        self, paginator: PageNumberPaginator | None = None, **filters: Any
    ) -> AsyncIterator[Sequence[Json]]:
        """Every page of contacts until an empty one; pass a paginator started at a later page
        to resume, and read `paginator.last_page_done` to know where a run got to."""

        async def fetch(params: Params) -> list[Json]:
            page = await self.list_contacts(int(params["page"]), **filters)
            return page.items

        return paginate_ahead(fetch, paginator or PageNumberPaginator(), in_flight=PAGES_IN_FLIGHT)

    async def get_contact(self, contact_id: int) -> Json:
        return _payload_object(await self._call("GET", f"/contacts/{_id(contact_id)}"))

    async def create_contact(
        self,
        *,
        name: str | None = None,
        email: str | None = None,
        phone_number: str | None = None,
        identifier: str | None = None,
        additional_attributes: Mapping[str, Any] | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
        inbox_id: int | None = None,
        source_id: str | None = None,
    ) -> Json:
        """Create a contact; returns `{"contact": {...}, "contact_inbox": {...}}`. A phone, email
        or identifier held by another contact raises ChatwootContactTaken: find it and link it.
        The phone must be E.164 with its `+` (Chatwoot refuses anything else)."""
        body = _fields(
            name=name,
            email=email,
            phone_number=phone_number,
            identifier=identifier,
            additional_attributes=additional_attributes,
            custom_attributes=custom_attributes,
            inbox_id=inbox_id,
            source_id=source_id,
        )
        return _payload_object(await self._call("POST", "/contacts", json=body))

    async def update_contact(self, contact_id: int, **fields: Any) -> Json:
        """`PUT /contacts/{id}`. Chatwoot merges `additional_attributes` and
        `custom_attributes` into what it has rather than replacing them."""
        body = _fields(**fields)
        return _payload_object(await self._call("PUT", f"/contacts/{_id(contact_id)}", json=body))

    async def search_contacts(self, q: str, page: int = 1) -> tuple[list[Json], bool]:
        """One page of `contacts/search` and whether more follow. Chatwoot throttles search
        at 100 a minute per account and matches substrings: use sparingly, compare exactly."""
        body = _object(await self._call("GET", "/contacts/search", params={"q": q, "page": page}))
        meta = _object_or_empty(body.get("meta"))
        return _items(body.get("payload")), bool(meta.get("has_more"))

    async def find_contact(
        self,
        *,
        phone_number: str | None = None,
        email: str | None = None,
        identifier: str | None = None,
        max_pages: int = 3,
    ) -> Json | None:
        """The contact whose phone, email or identifier is exactly this: what a 422 "already
        taken" was about. One search per value given, a few pages at most."""
        wanted = [
            ("phone_number", phone_number, _same_text),
            ("email", email, _same_email),
            ("identifier", identifier, _same_text),
        ]
        for field, value, same in wanted:
            if not value:
                continue
            for page in range(1, max_pages + 1):
                items, more = await self.search_contacts(value, page)
                for item in items:
                    if same(item.get(field), value):
                        return item
                if not more:
                    break
        return None

    async def create_contact_inbox(self, contact_id: int, inbox_id: int, source_id: str) -> Json:
        """Link a contact to an API inbox under `source_id` (zapsync's stable key for the chat:
        the same chat always gets the same one, so a retry finds instead of duplicating)."""
        body = {"inbox_id": inbox_id, "source_id": source_id}
        path = f"/contacts/{_id(contact_id)}/contact_inboxes"
        return _object(await self._call("POST", path, json=body))

    # --- conversations -------------------------------------------------------------

    async def list_conversations(
        self,
        page: int = 1,
        *,
        status: str = "all",
        inbox_id: int | None = None,
        assignee_type: str = "all",
    ) -> list[Json]:
        """One page of 25 conversations from `data.payload`. Chatwoot's default is `open`
        only; zapsync asks for `all` unless told otherwise."""
        params: Params = {"page": page, "status": status, "assignee_type": assignee_type}
        if inbox_id is not None:
            params["inbox_id"] = inbox_id
        body = _object(await self._list("/conversations", params))
        data = body.get("data")
        return _items(data.get("payload")) if isinstance(data, dict) else []

    def conversation_pages(
        self, paginator: PageNumberPaginator | None = None, **filters: Any
    ) -> AsyncIterator[Sequence[Json]]:
        """Every page of conversations until an empty one (there is no total to trust)."""

        async def fetch(params: Params) -> list[Json]:
            return await self.list_conversations(int(params["page"]), **filters)

        return paginate_ahead(fetch, paginator or PageNumberPaginator(), in_flight=PAGES_IN_FLIGHT)

    async def get_conversation(self, display_id: int) -> Json:
        """By display_id, the per-account number Chatwoot's paths and JSON `id` both use."""
        return _object(await self._call("GET", f"/conversations/{_id(display_id)}"))

    async def create_conversation(
        self,
        *,
        inbox_id: int,
        contact_id: int,
        source_id: str | None = None,
        status: str | None = None,
        additional_attributes: Mapping[str, Any] | None = None,
        custom_attributes: Mapping[str, Any] | None = None,
    ) -> Json:
        body = _fields(
            inbox_id=inbox_id,
            contact_id=contact_id,
            source_id=source_id,
            status=status,
            additional_attributes=additional_attributes,
            custom_attributes=custom_attributes,
        )
        return _object(await self._call("POST", "/conversations", json=body))

    async def toggle_status(
        self, display_id: int, status: str | None = None, *, snoozed_until: int | None = None
    ) -> Json:
        """Set a conversation's status (without one Chatwoot toggles open/resolved); returns
        `{"success", "conversation_id", "current_status", "snoozed_until"}`."""
        if status is not None and status not in CONVERSATION_STATUSES:
            raise ValueError(f"not a Chatwoot conversation status: {status!r}")
        body = _fields(status=status, snoozed_until=snoozed_until)
        path = f"/conversations/{_id(display_id)}/toggle_status"
        return _payload_object(await self._call("POST", path, json=body))

    # --- messages ------------------------------------------------------------------

    async def list_messages(
        self, display_id: int, *, before: int | None = None, after: int | None = None
    ) -> list[Json]:
        """The latest 20 messages, ascending; with `before`, the 20 just before that id."""
        params: Params = {}
        if before is not None:
            params["before"] = before
        if after is not None:
            params["after"] = after
        path = f"/conversations/{_id(display_id)}/messages"
        return _items(_object(await self._list(path, params)).get("payload"))

    def message_pages(
        self, display_id: int, paginator: BeforeIdPaginator | None = None
    ) -> AsyncIterator[Sequence[Json]]:
        """A conversation's whole history, newest page first, each page ascending."""

        async def fetch(params: Params) -> list[Json]:
            return await self.list_messages(display_id, before=params.get("before"))

        return paginate(fetch, paginator or BeforeIdPaginator())

    async def create_message(
        self,
        display_id: int,
        content: str | None,
        *,
        message_type: str = "outgoing",
        private: bool = False,
        source_id: str | None = None,
        content_attributes: Mapping[str, Any] | None = None,
        echo_id: str | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> Json:
        """Write a message into a conversation; `incoming` works only in API inboxes. With
        attachments the call is multipart, as Chatwoot's web app sends it."""
        if message_type not in ("incoming", "outgoing"):
            raise ValueError(f"zapsync writes incoming or outgoing messages, not {message_type!r}")
        path = f"/conversations/{_id(display_id)}/messages"
        fields = _fields(
            content=content,
            message_type=message_type,
            private=private,
            source_id=source_id,
            content_attributes=content_attributes,
            echo_id=echo_id,
        )
        if not attachments:
            return _object(await self._call("POST", path, json=fields))
        form = {k: _form_value(v) for k, v in fields.items() if k != "content_attributes"}
        files = [("attachments[]", (a.filename, a.content, a.mime_type)) for a in attachments]
        return _object(await self._call("POST", path, data=form, files=files))

    # --- the one way out -----------------------------------------------------------

    async def _list(self, path: str, params: Params) -> Any:
        """A page of a list: over the bare GET, the way most pages of a pull go, when there is
        one (see `_call`)."""
        return await self._call("GET", path, params=params, bare=self._bare_get is not None)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
        scoped: bool = True,
        bare: bool = False,
    ) -> Any:
        """With `bare`, each attempt goes over the bare GET first: a 200 of JSON is the answer,
        a 429 is waited out as any other; anything else (an error, no answer) is asked again
        through httpx, whose answer says why."""
        url = (self._account_base if scoped else self._api_base) + path
        attempt = 0
        while True:
            attempt += 1
            status, body = await self._bare(url, params) if bare else (None, None)
            if status == 200 and body is not None:
                return body
            if status != 429:
                try:
                    resp = await self._http.request(
                        method, url, params=params, json=json, data=data, files=files,
                        headers=self._headers,
                    )  # fmt: skip
                except httpx.HTTPError as exc:
                    reason = f"{method} {path}: {type(exc).__name__} {exc}".strip()
                    raise ChatwootUnavailable(reason) from exc
                status = resp.status_code
            if status == 429:
                self.throttled += 1
                if attempt >= self.max_attempts:
                    raise ChatwootRateLimited(
                        f"still throttled after {attempt} attempts", status=429
                    )
                delay = backoff(self.backoff_base, attempt, cap=self.backoff_cap)
                log.info("chatwoot throttled; waiting", path=path, attempt=attempt,
                         seconds=round(delay.total_seconds(), 3))  # fmt: skip
                await self._sleep(delay.total_seconds())
                continue
            if resp.is_success:
                return _json_of(resp, method, path)
            error = error_for(resp)
            log.info("chatwoot refused", method=method, path=path, status=resp.status_code,
                     reason=error.reason)  # fmt: skip
            raise error

    async def _bare(self, url: str, params: Params | None) -> tuple[int | None, Any]:
        """One bare GET: its status and, for a 200 of JSON, the decoded body."""
        assert self._bare_get is not None
        query = {k: str(v) for k, v in (params or {}).items()}
        got = await self._bare_get(url, query, self._headers)
        if got is None:
            return None, None
        status, raw = got
        if status != 200:
            return status, None
        try:
            return status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None, None  # asked again: httpx's answer says what the body is


def _json_of(resp: httpx.Response, method: str, path: str) -> Any:
    if not resp.content.strip():
        return None  # DELETE answers 200 with an empty body
    try:
        return resp.json()
    except ValueError as exc:
        raise ChatwootUnavailable(
            f"{method} {path}: Chatwoot answered {resp.status_code} with a body that is not JSON",
            status=resp.status_code,
        ) from exc


def _id(value: int | str) -> str:
    """A path segment for an id: a number, never a path of its own."""
    text = str(value)
    if not text.isdigit():
        raise ValueError(f"a Chatwoot id is a number, not {value!r}")
    return quote(text)


def _fields(**values: Any) -> Json:
    kept = {k: v for k, v in values.items() if v is not None}
    return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in kept.items()}


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _object(body: Any) -> Json:
    if not isinstance(body, dict):
        raise ChatwootError("Chatwoot answered with an unexpected shape (not an object)")
    return body


def _payload_object(body: Any) -> Json:
    payload = _object(body).get("payload")
    if not isinstance(payload, dict):
        raise ChatwootError("Chatwoot answered with an unexpected shape (no payload object)")
    return payload


def _object_or_empty(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _payload_list(body: Any) -> list[Json]:
    return _items(_object(body).get("payload"))


def _items(value: Any) -> list[Json]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _same_text(found: Any, wanted: str) -> bool:
    return isinstance(found, str) and found.strip() == wanted.strip()


def _same_email(found: Any, wanted: str) -> bool:
    return isinstance(found, str) and found.strip().casefold() == wanted.strip().casefold()
