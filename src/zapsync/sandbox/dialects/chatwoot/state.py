"""The sandbox Chatwoot's account: contacts, inboxes, contact inboxes, conversations and
messages, with Chatwoot's own model rules (app/models/contact.rb, conversation.rb, message.rb).

Kept in plain dicts keyed by id with indexes on the unique fields, so 50,000 contacts seed in
a blink and a page of 15 is a slice. Ids only grow, so the id-ordered list of listed contacts
stays sorted as contacts are added."""

from __future__ import annotations

import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

SANDBOX_TOKEN = "sandbox-chatwoot-token"
SANDBOX_ACCOUNT_ID = 1

# Contact#phone_number: E.164 with its `+`; email: Devise's email_regexp.
E164 = re.compile(r"\+[1-9]\d{1,14}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
CONTENT_LIMIT = 150_000
STATUSES = ("open", "resolved", "pending", "snoozed")
INCOMING, OUTGOING, ACTIVITY, TEMPLATE = 0, 1, 2, 3
MESSAGE_TYPES = {"incoming": INCOMING, "outgoing": OUTGOING, "activity": ACTIVITY}


class Invalid(Exception):
    """A model validation failure: 422 `{"message", "attributes"}`."""

    def __init__(self, messages: list[tuple[str, str]]) -> None:
        self.attributes = list(dict.fromkeys(attr for attr, _ in messages))
        self.message = ", ".join(text for _, text in messages)
        super().__init__(self.message)


class Refused(Exception):
    """A controller or builder refusal: `{"error": message}` with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NotFound(Refused):
    def __init__(self) -> None:
        super().__init__(404, "Resource could not be found")


def now() -> int:
    return int(time.time())


@dataclass
class Agent:
    id: int
    name: str
    email: str


@dataclass
class Inbox:
    id: int
    name: str
    channel_type: str = "Channel::Api"
    webhook_url: str | None = None
    channel_id: int = 0
    identifier: str = field(default_factory=lambda: uuid.uuid4().hex[:24])
    # Channel::Api's `secret` signs its webhooks; `hmac_token` is for contact identity only.
    secret: str = field(default_factory=lambda: uuid.uuid4().hex[:24])
    hmac_token: str = field(default_factory=lambda: uuid.uuid4().hex[:24])


@dataclass
class Contact:
    id: int
    name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    identifier: str | None = None
    thumbnail: str = ""
    blocked: bool = False
    additional_attributes: dict[str, Any] = field(default_factory=dict)
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    created_at: int = field(default_factory=now)
    last_activity_at: int | None = None

    @property
    def resolved(self) -> bool:
        """Listed by `GET /contacts`: has an email, a phone or an identifier."""
        return bool(self.email or self.phone_number or self.identifier)


@dataclass
class ContactInbox:
    id: int
    contact_id: int
    inbox_id: int
    source_id: str
    created_at: int = field(default_factory=now)


@dataclass
class Attachment:
    id: int
    message_id: int
    file_type: str
    content_type: str
    file_name: str
    data: bytes

    @property
    def extension(self) -> str | None:
        _, dot, ext = self.file_name.rpartition(".")
        return ext if dot else None


@dataclass
class Message:
    id: int
    conversation_id: int  # the display_id
    inbox_id: int
    content: str | None
    message_type: int
    sender_type: str | None  # "contact" | "user" | None for activity
    sender_id: int | None
    private: bool = False
    content_type: str = "text"
    content_attributes: dict[str, Any] = field(default_factory=dict)
    source_id: str | None = None
    echo_id: str | None = None
    status: str = "sent"
    created_at: int = field(default_factory=now)
    attachments: list[Attachment] = field(default_factory=list)


@dataclass
class Conversation:
    display_id: int
    inbox_id: int
    contact_id: int
    contact_inbox_id: int
    status: str = "open"
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    labels: list[str] = field(default_factory=list)
    additional_attributes: dict[str, Any] = field(default_factory=dict)
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    snoozed_until: int | None = None
    unread_count: int = 0
    created_at: int = field(default_factory=now)
    last_activity_at: int = field(default_factory=now)
    updated_at: float = field(default_factory=time.time)
    message_ids: list[int] = field(default_factory=list)  # ascending


@dataclass
class WebhookTarget:
    url: str
    secret: str | None = None
    subscriptions: frozenset[str] | None = None  # None: every event


@dataclass
class ChatwootState:
    account_id: int = SANDBOX_ACCOUNT_ID
    account_name: str = "Sandbox"
    token: str = SANDBOX_TOKEN
    agent: Agent = field(default_factory=lambda: Agent(1, "Sandbox Agent", "agent@sandbox.test"))
    inboxes: dict[int, Inbox] = field(default_factory=dict)
    contacts: dict[int, Contact] = field(default_factory=dict)
    contact_inboxes: dict[int, ContactInbox] = field(default_factory=dict)
    conversations: dict[int, Conversation] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    attachments: dict[int, Attachment] = field(default_factory=dict)
    webhook: WebhookTarget | None = None
    # The next N Application API requests answer 429 `Retry later`.
    throttle_next: int = 0
    throttled: int = 0
    search_limit_per_minute: int = 100
    requests: int = 0
    writes: list[dict[str, Any]] = field(default_factory=list)
    _search_times: deque[float] = field(default_factory=deque)
    _by_email: dict[str, int] = field(default_factory=dict)
    _by_phone: dict[str, int] = field(default_factory=dict)
    _by_identifier: dict[str, int] = field(default_factory=dict)
    _by_source: dict[tuple[int, str], int] = field(default_factory=dict)
    _listed: list[int] | None = None
    _ids: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.inboxes:
            self.add_inbox("WhatsApp (zapsync)", "Channel::Api")
            self.add_inbox("Support e-mail", "Channel::Email")

    def next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    # --- throttling ----------------------------------------------------------------

    def take_throttle(self) -> bool:
        """Whether this request is one of the injected 429s."""
        if self.throttle_next > 0:
            self.throttle_next -= 1
            self.throttled += 1
            return True
        return False

    def search_allowed(self) -> bool:
        """Rack::Attack's contacts/search throttle: 100 a minute per account."""
        clock = time.monotonic()
        while self._search_times and clock - self._search_times[0] > 60:
            self._search_times.popleft()
        if len(self._search_times) >= self.search_limit_per_minute:
            self.throttled += 1
            return False
        self._search_times.append(clock)
        return True

    # --- inboxes -------------------------------------------------------------------

    def add_inbox(self, name: str, channel_type: str, webhook_url: str | None = None) -> Inbox:
        inbox_id = self.next_id("inbox")
        inbox = Inbox(inbox_id, name, channel_type, webhook_url, channel_id=inbox_id)
        self.inboxes[inbox_id] = inbox
        return inbox

    def inbox(self, inbox_id: Any) -> Inbox:
        inbox = self.inboxes.get(_as_int(inbox_id))
        if inbox is None:
            raise NotFound()
        return inbox

    # --- contacts ------------------------------------------------------------------

    def contact(self, contact_id: Any) -> Contact:
        contact = self.contacts.get(_as_int(contact_id))
        if contact is None:
            raise NotFound()
        return contact

    def listed_contacts(self) -> list[int]:
        if self._listed is None:
            self._listed = [c.id for c in self.contacts.values() if c.resolved]
        return self._listed

    def create_contact(self, fields: dict[str, Any], *, validate: bool = True) -> Contact:
        contact = Contact(id=0)
        _assign(contact, fields)
        if validate:
            self._validate(contact)
        contact.id = self.next_id("contact")
        self.contacts[contact.id] = contact
        self._index(contact)
        if self._listed is not None and contact.resolved:
            self._listed.append(contact.id)
        return contact

    def update_contact(self, contact: Contact, fields: dict[str, Any]) -> list[str]:
        """Apply `fields` (attributes merged, as Chatwoot's PUT does); the names changed."""
        before = _snapshot(contact)
        candidate = Contact(**{**before, "id": contact.id})
        _assign(candidate, fields, merge=True)
        self._validate(candidate)
        self._unindex(contact)
        for name, value in _snapshot(candidate).items():
            setattr(contact, name, value)
        self._index(contact)
        self._listed = None
        after = _snapshot(contact)
        return [name for name in after if after[name] != before[name]]

    def delete_contact(self, contact: Contact) -> None:
        self._unindex(contact)
        del self.contacts[contact.id]
        self._listed = None

    def seed_contacts(self, count: int, prefix: str = "Seeded", start: int | None = None) -> int:
        """`count` resolved contacts with distinct phones and emails, past validation (fast)."""
        first = start if start is not None else len(self.contacts)
        for n in range(first, first + count):
            self.create_contact(
                {
                    "name": f"{prefix} {n}",
                    "email": f"{prefix.lower()}{n}@example.com",
                    "phone_number": f"+55119{n % 100_000_000:08d}",
                    "additional_attributes": {"city": "São Paulo"},
                },
                validate=False,
            )
        return count

    def search_contacts(self, q: str) -> list[Contact]:
        needle = q.strip().lower()
        digits = q.strip().isdigit()
        found = []
        for contact in self.contacts.values():
            haystack = (contact.name or "", contact.email or "", contact.phone_number or "")
            if (
                any(needle in text.lower() for text in haystack)
                or (contact.identifier and q in contact.identifier)
                or (digits and str(contact.id) == q.strip())
            ):
                found.append(contact)
        return found

    def _validate(self, contact: Contact) -> None:
        errors: list[tuple[str, str]] = []
        if contact.email:
            holder = self._by_email.get(contact.email.lower())
            if holder is not None and holder != contact.id:
                errors.append(("email", "Email has already been taken"))
            if not EMAIL.fullmatch(contact.email):
                errors.append(("email", "Email Invalid email"))
        if contact.identifier:
            holder = self._by_identifier.get(contact.identifier)
            if holder is not None and holder != contact.id:
                errors.append(("identifier", "Identifier has already been taken"))
        if contact.phone_number:
            holder = self._by_phone.get(contact.phone_number)
            if holder is not None and holder != contact.id:
                errors.append(("phone_number", "Phone number has already been taken"))
            if not E164.fullmatch(contact.phone_number):
                errors.append(("phone_number", "Phone number should be in e164 format"))
        if errors:
            raise Invalid(errors)

    def _index(self, contact: Contact) -> None:
        if contact.email:
            self._by_email[contact.email.lower()] = contact.id
        if contact.phone_number:
            self._by_phone[contact.phone_number] = contact.id
        if contact.identifier:
            self._by_identifier[contact.identifier] = contact.id

    def _unindex(self, contact: Contact) -> None:
        if contact.email:
            self._by_email.pop(contact.email.lower(), None)
        if contact.phone_number:
            self._by_phone.pop(contact.phone_number, None)
        if contact.identifier:
            self._by_identifier.pop(contact.identifier, None)

    # --- contact inboxes -----------------------------------------------------------

    def contact_inbox(self, contact: Contact, inbox: Inbox, source_id: str | None) -> ContactInbox:
        """Find or create the link; a source_id already linking another contact is refused."""
        source = source_id or str(uuid.uuid4())
        existing_id = self._by_source.get((inbox.id, source))
        if existing_id is not None:
            existing = self.contact_inboxes[existing_id]
            if existing.contact_id != contact.id:
                raise Invalid([("source_id", "Source has already been taken")])
            return existing
        link = ContactInbox(self.next_id("contact_inbox"), contact.id, inbox.id, source)
        self.contact_inboxes[link.id] = link
        self._by_source[(inbox.id, source)] = link.id
        return link

    def links_of(self, contact: Contact) -> list[ContactInbox]:
        return [ci for ci in self.contact_inboxes.values() if ci.contact_id == contact.id]

    # --- conversations and messages ------------------------------------------------

    def conversation(self, display_id: Any) -> Conversation:
        conversation = self.conversations.get(_as_int(display_id))
        if conversation is None:
            raise NotFound()
        return conversation

    def create_conversation(
        self, link: ContactInbox, fields: dict[str, Any] | None = None
    ) -> Conversation:
        fields = fields or {}
        status = str(fields.get("status") or "open")
        if status not in STATUSES:
            raise Refused(422, f"'{status}' is not a valid status")
        conversation = Conversation(
            display_id=self.next_id("conversation"),
            inbox_id=link.inbox_id,
            contact_id=link.contact_id,
            contact_inbox_id=link.id,
            status=status,
            additional_attributes=dict(fields.get("additional_attributes") or {}),
            custom_attributes=dict(fields.get("custom_attributes") or {}),
        )
        self.conversations[conversation.display_id] = conversation
        return conversation

    def add_message(self, conversation: Conversation, **fields: Any) -> Message:
        content = fields.get("content")
        if isinstance(content, str) and len(content) > CONTENT_LIMIT:
            raise Invalid(
                [("content", f"Content is too long (maximum is {CONTENT_LIMIT} characters)")]
            )
        message = Message(
            id=self.next_id("message"),
            conversation_id=conversation.display_id,
            inbox_id=conversation.inbox_id,
            **fields,
        )
        for attachment in message.attachments:
            attachment.message_id = message.id
            self.attachments[attachment.id] = attachment
        self.messages[message.id] = message
        conversation.message_ids.append(message.id)
        if message.message_type != ACTIVITY:
            conversation.last_activity_at = message.created_at
        if message.message_type == INCOMING:
            conversation.unread_count += 1
        conversation.updated_at = time.time()
        return message

    def messages_of(self, conversation: Conversation) -> list[Message]:
        return [self.messages[i] for i in conversation.message_ids]

    def last_message(self, conversation: Conversation) -> Message | None:
        for message_id in reversed(conversation.message_ids):
            message = self.messages[message_id]
            if not message.private and message.message_type != ACTIVITY:
                return message
        return None

    def set_status(self, conversation: Conversation, status: str) -> str:
        previous = conversation.status
        conversation.status = status
        conversation.updated_at = time.time()
        if status == "resolved":
            conversation.unread_count = 0
        return previous

    def new_attachment(self, file_name: str, content_type: str, data: bytes) -> Attachment:
        return Attachment(
            id=self.next_id("attachment"),
            message_id=0,
            file_type=file_type_of(content_type),
            content_type=content_type,
            file_name=file_name,
            data=data,
        )


def file_type_of(content_type: str) -> str:
    kind = content_type.split("/", 1)[0]
    return kind if kind in ("image", "audio", "video") else "file"


_CONTACT_FIELDS = (
    "name",
    "email",
    "phone_number",
    "identifier",
    "thumbnail",
    "blocked",
)


def _assign(contact: Contact, fields: dict[str, Any], *, merge: bool = False) -> None:
    for name in _CONTACT_FIELDS:
        if name in fields:
            value = fields[name]
            if name == "blocked":
                setattr(contact, name, value in (True, "true", "1"))
            elif name == "thumbnail":
                contact.thumbnail = str(value or "")
            else:
                setattr(contact, name, str(value).strip() or None if value is not None else None)
    for name in ("additional_attributes", "custom_attributes"):
        value = fields.get(name)
        if isinstance(value, dict):
            current = getattr(contact, name) if merge else {}
            setattr(contact, name, {**current, **value})


def _snapshot(contact: Contact) -> dict[str, Any]:
    return {
        "name": contact.name,
        "email": contact.email,
        "phone_number": contact.phone_number,
        "identifier": contact.identifier,
        "thumbnail": contact.thumbnail,
        "blocked": contact.blocked,
        "additional_attributes": dict(contact.additional_attributes),
        "custom_attributes": dict(contact.custom_attributes),
        "created_at": contact.created_at,
        "last_activity_at": contact.last_activity_at,
    }


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
