"""Who a WhatsApp address is: JIDs, phone numbers and the keys that make one person one contact.

Gateways name the same person in several ways: ``5511987654321@s.whatsapp.net`` (Baileys),
``5511987654321@c.us`` (WAHA), ``5511987654321:12@s.whatsapp.net`` (a device of that account),
``551187654321@s.whatsapp.net`` (a Brazilian account registered before the ninth digit) and
``123456789012345@lid`` (a privacy id with no phone in it). Everything here is pure so that
every adapter and the store agree on the same keys.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, PhoneNumberType
from phonenumbers import ValidationResult as _Possible


class InvalidJid(ValueError):
    """The text is not a WhatsApp address we can make sense of."""


class JidKind(StrEnum):
    USER = "user"
    GROUP = "group"
    LID = "lid"
    BROADCAST = "broadcast"
    STATUS = "status"
    NEWSLETTER = "newsletter"
    UNKNOWN = "unknown"


USER_SERVER = "s.whatsapp.net"
GROUP_SERVER = "g.us"
LID_SERVER = "lid"
BROADCAST_SERVER = "broadcast"
NEWSLETTER_SERVER = "newsletter"
STATUS_BROADCAST_JID = "status@broadcast"

# c.us is WAHA's / whatsapp-web.js's spelling of s.whatsapp.net; "hosted" and "hosted.lid" are
# Baileys 7's domains for Cloud-API-hosted devices of the same accounts.
_SERVER_KINDS: dict[str, JidKind] = {
    USER_SERVER: JidKind.USER,
    "c.us": JidKind.USER,
    "hosted": JidKind.USER,
    GROUP_SERVER: JidKind.GROUP,
    LID_SERVER: JidKind.LID,
    "hosted.lid": JidKind.LID,
    BROADCAST_SERVER: JidKind.BROADCAST,
    NEWSLETTER_SERVER: JidKind.NEWSLETTER,
}

_CANONICAL_SERVER: dict[JidKind, str] = {
    JidKind.USER: USER_SERVER,
    JidKind.GROUP: GROUP_SERVER,
    JidKind.LID: LID_SERVER,
    JidKind.BROADCAST: BROADCAST_SERVER,
    JidKind.STATUS: BROADCAST_SERVER,
    JidKind.NEWSLETTER: NEWSLETTER_SERVER,
}

# Baileys encodes `user[_agent][:device]@server`; only `user` names the account.
_USER_PART = re.compile(r"(?P<user>[^@:_\s]+)(?:_(?P<agent>\d+))?(?::(?P<device>\d+))?", re.ASCII)
_SERVER_PART = re.compile(r"[a-z0-9][a-z0-9.-]*")
_DIGITS = re.compile(r"\d+", re.ASCII)
# Groups created before 2021 are `<creator phone>-<unix time>@g.us`; newer ones are digits only.
_GROUP_USER = re.compile(r"\d+(?:-\d+)?", re.ASCII)
_UNKNOWN_USER = re.compile(r"[A-Za-z0-9.-]+")


@dataclass(frozen=True, slots=True)
class Jid:
    user: str
    server: str
    kind: JidKind
    # Which of the person's devices sent something never changes who the person is.
    device: int | None = field(default=None, compare=False)

    @property
    def canonical(self) -> str:
        return f"{self.user}@{self.server}"

    @property
    def is_group(self) -> bool:
        return self.kind is JidKind.GROUP

    def __str__(self) -> str:
        return self.canonical


def parse_jid(raw: str) -> Jid:
    """Read a JID from any gateway: `c.us` becomes `s.whatsapp.net`, device and agent go."""
    if not isinstance(raw, str):
        raise InvalidJid(f"not a JID: {raw!r}")
    text = raw.strip()
    user_part, at, server_part = text.partition("@")
    server = server_part.lower()
    if not at or not user_part or not _SERVER_PART.fullmatch(server):
        raise InvalidJid(f"not a JID: {raw!r}")
    match = _USER_PART.fullmatch(user_part)
    if match is None:
        raise InvalidJid(f"not a JID: {raw!r}")
    user = match["user"]
    device = int(match["device"]) if match["device"] is not None else None

    kind = _SERVER_KINDS.get(server, JidKind.UNKNOWN)
    if kind is JidKind.BROADCAST and user.lower() == "status":
        kind, user = JidKind.STATUS, "status"
    if not _user_fits(kind, user):
        raise InvalidJid(f"not a JID: {raw!r}")
    return Jid(user=user, server=_CANONICAL_SERVER.get(kind, server), kind=kind, device=device)


def _user_fits(kind: JidKind, user: str) -> bool:
    if kind is JidKind.GROUP:
        return _GROUP_USER.fullmatch(user) is not None
    if kind is JidKind.STATUS:
        return True
    if kind is JidKind.UNKNOWN:
        return _UNKNOWN_USER.fullmatch(user) is not None
    return _DIGITS.fullmatch(user) is not None


def is_status_broadcast(jid: str | None) -> bool:
    """True for the Status (stories) pseudo-chat, which must never become a conversation."""
    if not jid:
        return False
    try:
        return parse_jid(jid).kind is JidKind.STATUS
    except InvalidJid:
        return False


def normalize_phone(raw: str, default_region: str = "BR") -> str | None:
    """E.164 (`+5511987654321`) from digits, a JID or a formatted number; None if it cannot be one.

    Bare digits are read as a number of `default_region` first and as international digits
    (what gateways send, without the `+`) second, preferring whichever is a valid number.
    """
    if not raw or not isinstance(raw, str):
        return None
    text = raw.strip()
    if "@" in text:
        try:
            jid = parse_jid(text)
        except InvalidJid:
            return None
        if jid.kind is not JidKind.USER:
            return None
        # A JID's user part is always the full international number.
        return _best([_parse(f"+{jid.user}", None)])
    # Letters would go through phonenumbers' vanity-number conversion ("1-800-FLOWERS");
    # a contact key must not be invented from a name or a note typed into a phone field.
    if any(ch.isalpha() for ch in text):
        return None
    if text.startswith("+"):
        return _best([_parse(text, None)])
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return None
    return _best([_parse(text, default_region)], guesses=[_parse(f"+{digits}", None)])


def _parse(text: str, region: str | None) -> PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if number.extension:
        return None
    return number


def _best(
    readings: list[PhoneNumber | None], guesses: list[PhoneNumber | None] | None = None
) -> str | None:
    """The first valid reading, else the first one shaped like a phone.

    `guesses` (bare digits read as international) only count when valid: short local digits
    would otherwise turn into some country's possible number ("98765-4321" -> +98 Iran).
    """
    plausible = [n for n in readings if n is not None]
    guessed = [n for n in guesses or [] if n is not None]
    for number in [*plausible, *guessed]:
        if phonenumbers.is_valid_number(number) or _is_old_br_mobile(number):
            return _e164(number)
    # Not valid by the metadata but shaped like a phone: new ranges the metadata has not
    # learned yet. Service and local-only lengths (BR 8/9 digits with no area code) do not pass.
    for number in plausible:
        reason = phonenumbers.is_possible_number_for_type_with_reason(
            number, PhoneNumberType.FIXED_LINE_OR_MOBILE
        )
        if reason == _Possible.IS_POSSIBLE:
            return _e164(number)
    return None


def _is_old_br_mobile(number: PhoneNumber) -> bool:
    e164 = _e164(number)
    return canonical_br_mobile(e164) != e164


def _e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


_BR_EIGHT_DIGIT_MOBILE = re.compile(r"\+55(?P<ddd>[1-9]{2})(?P<subscriber>[6-9]\d{7})")


def canonical_br_mobile(e164: str) -> str:
    """Give a Brazilian mobile written before the ninth digit (`+55 11 8765-4321`) its 9-digit form.

    Many WhatsApp accounts from before 2016 still have JIDs without the ninth digit, so the
    same person shows up both ways. Landlines (first digit 2-5) and other countries stay as is.
    """
    match = _BR_EIGHT_DIGIT_MOBILE.fullmatch(e164)
    if match is None:
        return e164
    candidate = f"+55{match['ddd']}9{match['subscriber']}"
    # The metadata knows which area codes exist; an unknown one is left for a human to see.
    number = _parse(candidate, None)
    if number is None or not phonenumbers.is_valid_number(number):
        return e164
    return candidate


@functools.lru_cache(maxsize=65_536)
def phone_key(raw: str, default_region: str = "BR") -> str | None:
    """The natural key of a contact: the same person gives the same key whatever the spelling.

    Cached: parsing costs ~50 µs, and the same numbers come back with every webhook, import
    page and pull."""
    e164 = normalize_phone(raw, default_region)
    return canonical_br_mobile(e164) if e164 is not None else None


def whatsapp_jid_for(e164: str) -> str:
    """The user JID to send to; keeps the number as given (no ninth digit is added)."""
    phone = normalize_phone(e164)
    if phone is None:
        raise ValueError(f"not a phone number: {e164!r}")
    return f"{phone.removeprefix('+')}@{USER_SERVER}"


@dataclass(frozen=True, slots=True)
class Identity:
    phone_e164: str | None
    lid: str | None
    is_group: bool
    chat_key: str


def identity_of(jid: str, alt_jid: str | None = None) -> Identity:
    """Who `jid` is, using `alt_jid` (remoteJidAlt / senderPn / participantAlt) to fill the gap.

    Raises InvalidJid when `jid` itself is garbage; a garbage alternate is only a missing hint.
    """
    primary = parse_jid(jid)
    if primary.kind is JidKind.GROUP:
        return Identity(None, None, True, primary.canonical)
    if primary.kind not in (JidKind.USER, JidKind.LID):
        return Identity(None, None, False, primary.canonical)

    alternate = _parse_optional(alt_jid)
    phone: str | None = None
    lid: str | None = None
    for each in (primary, alternate):
        if each is None:
            continue
        if each.kind is JidKind.USER and phone is None:
            phone = phone_key(each.canonical)
        elif each.kind is JidKind.LID and lid is None:
            lid = each.canonical
    chat_key = phone or lid or primary.canonical
    return Identity(phone, lid, False, chat_key)


def _parse_optional(raw: str | None) -> Jid | None:
    if not raw:
        return None
    try:
        return parse_jid(raw)
    except InvalidJid:
        return None


FINGERPRINT_LENGTH = 16


def fingerprint(*parts: str | None) -> str:
    """A short, stable hash of what a record says, for matching records that share no id.

    Case, Unicode composition and runs of whitespace do not change it; order and emptiness do.
    """
    normalized = [_normalize_part(part) for part in parts]
    payload = json.dumps(normalized, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]


def _normalize_part(part: str | None) -> str:
    if part is None:
        return ""
    text = unicodedata.normalize("NFKC", str(part)).casefold()
    return " ".join(text.split())
