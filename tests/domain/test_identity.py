"""One person must be one contact whatever spelling of their address a gateway sends."""

from __future__ import annotations

import re

import pytest

from zapsync.domain.identity import (
    Identity,
    InvalidJid,
    Jid,
    JidKind,
    canonical_br_mobile,
    fingerprint,
    identity_of,
    is_status_broadcast,
    normalize_phone,
    parse_jid,
    phone_key,
    whatsapp_jid_for,
)

# --- parse_jid ---------------------------------------------------------------------------

NUM = "5511987654321"
WA = f"{NUM}@s.whatsapp.net"
KEY = f"+{NUM}"
LID_USER = "123456789012345"
LID = f"{LID_USER}@lid"
GROUP_USER = "120363025246125486"
GROUP = f"{GROUP_USER}@g.us"
OLD_GROUP_USER = f"{NUM}-1600000000"
NEWSLETTER = "120363123456789012@newsletter"


@pytest.mark.parametrize(
    ("raw", "user", "kind", "canonical", "device"),
    [
        (WA, NUM, JidKind.USER, WA, None),
        (f"{NUM}@c.us", NUM, JidKind.USER, WA, None),
        (f"{NUM}:12@s.whatsapp.net", NUM, JidKind.USER, WA, 12),
        (f"{NUM}_1:3@s.whatsapp.net", NUM, JidKind.USER, WA, 3),
        (f"  {NUM}@C.US \n", NUM, JidKind.USER, WA, None),
        (f"{NUM}@hosted", NUM, JidKind.USER, WA, None),
        (LID, LID_USER, JidKind.LID, LID, None),
        (f"{LID_USER}:7@lid", LID_USER, JidKind.LID, LID, 7),
        (f"{LID_USER}@hosted.lid", LID_USER, JidKind.LID, LID, None),
        (GROUP, GROUP_USER, JidKind.GROUP, GROUP, None),
        (f"{OLD_GROUP_USER}@g.us", OLD_GROUP_USER, JidKind.GROUP, f"{OLD_GROUP_USER}@g.us", None),
        ("status@broadcast", "status", JidKind.STATUS, "status@broadcast", None),
        ("1600000000@broadcast", "1600000000", JidKind.BROADCAST, "1600000000@broadcast", None),
        (NEWSLETTER, NEWSLETTER.split("@")[0], JidKind.NEWSLETTER, NEWSLETTER, None),
        ("13135550002@bot", "13135550002", JidKind.UNKNOWN, "13135550002@bot", None),
    ],
)
def test_parse_jid(raw: str, user: str, kind: JidKind, canonical: str, device: int | None) -> None:
    jid = parse_jid(raw)
    assert (jid.user, jid.kind, jid.canonical, jid.device) == (user, kind, canonical, device)
    assert str(jid) == canonical


def test_waha_and_baileys_spellings_and_devices_are_the_same_jid() -> None:
    spellings = [
        "5511987654321@s.whatsapp.net",
        "5511987654321@c.us",
        "5511987654321:12@s.whatsapp.net",
        "5511987654321:3@c.us",
    ]
    parsed = {parse_jid(s) for s in spellings}
    assert parsed == {Jid("5511987654321", "s.whatsapp.net", JidKind.USER)}


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "5511987654321",
        "@s.whatsapp.net",
        "5511987654321@",
        "55 11 98765 4321@s.whatsapp.net",
        "+5511987654321@s.whatsapp.net",
        "abc@s.whatsapp.net",
        "abc@lid",
        "5511987654321@s.whatsapp.net@c.us",
        "5511987654321:x@s.whatsapp.net",
        "12-34-56@g.us",
        "hello world",
        "foo@bar baz",
        "not a jid@@",
    ],
)
def test_garbage_raises_invalid_jid(raw: str) -> None:
    with pytest.raises(InvalidJid):
        parse_jid(raw)


def test_invalid_jid_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_jid("garbage")


# --- normalize_phone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Brazil: gateway digits, JIDs, typed numbers, trunk and carrier prefixes.
        ("5511987654321", "+5511987654321"),
        ("+5511987654321", "+5511987654321"),
        ("+55 11 98765-4321", "+5511987654321"),
        ("(11) 98765-4321", "+5511987654321"),
        ("11 98765 4321", "+5511987654321"),
        ("11987654321", "+5511987654321"),
        ("011 98765-4321", "+5511987654321"),
        ("0 21 11 98765-4321", "+5511987654321"),
        ("5511987654321@s.whatsapp.net", "+5511987654321"),
        ("5511987654321:12@c.us", "+5511987654321"),
        # Normalizing keeps the account's own spelling; the key adds the ninth digit.
        ("551187654321@s.whatsapp.net", "+551187654321"),
        ("556181278471@s.whatsapp.net", "+556181278471"),
        ("(11) 3456-7890", "+551134567890"),
        # A Porto Alegre mobile typed without +55 is read in the default region.
        ("51987654321", "+5551987654321"),
        # Other countries.
        ("+1 415 555 2671", "+14155552671"),
        ("14155552671", "+14155552671"),
        ("14155552671@c.us", "+14155552671"),
        ("+351 912 345 678", "+351912345678"),
        ("351912345678@s.whatsapp.net", "+351912345678"),
        ("+54 9 11 2345-6789", "+5491123456789"),
        ("5491123456789@s.whatsapp.net", "+5491123456789"),
    ],
)
def test_normalize_phone(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("912 345 678", "PT", "+351912345678"),
        ("011 15-2345-6789", "AR", "+5491123456789"),
        # Gateway digits of an old Brazilian account still read right outside Brazil.
        ("551187654321", "PT", "+551187654321"),
        ("5511987654321", "US", "+5511987654321"),
    ],
)
def test_normalize_phone_in_another_default_region(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, default_region=region) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "12",
        "999",
        "98765-4321",  # no area code: not something WhatsApp could be registered on
        "987654321",
        "123456789012345678",
        "+999 1234",
        "João da Silva",
        "1-800-FLOWERS",
        "+55 11 98765-4321 ramal 2",
        "123456789012345@lid",
        "120363025246125486@g.us",
        "status@broadcast",
        "garbage@@",
    ],
)
def test_normalize_phone_rejects_what_is_not_a_phone(raw: str) -> None:
    assert normalize_phone(raw) is None


# --- Brazil's ninth digit and the contact key --------------------------------------------


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        ("+551187654321", "+5511987654321"),  # SP mobile without the ninth digit
        ("+556181278471", "+5561981278471"),  # Brasília, from a real Evolution capture
        ("+552196543210", "+5521996543210"),
        ("+558176543210", "+5581976543210"),
        ("+5511987654321", "+5511987654321"),  # already 9 digits
        ("+551134567890", "+551134567890"),  # landline starting with 3
        ("+551123456789", "+551123456789"),  # landline starting with 2
        ("+555154321098", "+555154321098"),  # landline starting with 5
        ("+552087654321", "+552087654321"),  # area code 20 does not exist
        ("+14155552671", "+14155552671"),
        ("+351912345678", "+351912345678"),
        ("+5491123456789", "+5491123456789"),
        ("+541187654321", "+541187654321"),  # Argentina, same shape as a BR 8-digit mobile
    ],
)
def test_canonical_br_mobile(e164: str, expected: str) -> None:
    assert canonical_br_mobile(e164) == expected
    assert canonical_br_mobile(expected) == expected


@pytest.mark.parametrize(
    "spelling",
    [
        "5511987654321@s.whatsapp.net",
        "551187654321@s.whatsapp.net",
        "5511987654321@c.us",
        "551187654321@c.us",
        "5511987654321:12@s.whatsapp.net",
        "551187654321:4@s.whatsapp.net",
        "5511987654321",
        "551187654321",
        "+55 11 98765-4321",
        "+55 11 8765-4321",
        "(11) 98765-4321",
        "(11) 8765-4321",
    ],
)
def test_every_spelling_of_one_person_gives_one_key(spelling: str) -> None:
    assert phone_key(spelling) == "+5511987654321"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("551134567890@s.whatsapp.net", "+551134567890"),
        ("(11) 3456-7890", "+551134567890"),
        ("14155552671@c.us", "+14155552671"),
        ("+351 912 345 678", "+351912345678"),
        ("541187654321@s.whatsapp.net", "+541187654321"),
        ("123456789012345@lid", None),
        ("nonsense", None),
    ],
)
def test_phone_key_leaves_landlines_and_other_countries(raw: str, expected: str | None) -> None:
    assert phone_key(raw) == expected


def test_landline_and_mobile_of_same_digits_stay_different_people() -> None:
    assert phone_key("551134567890") != phone_key("5511934567890")


# --- whatsapp_jid_for --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        ("+5511987654321", "5511987654321@s.whatsapp.net"),
        ("+551187654321", "551187654321@s.whatsapp.net"),
        ("+14155552671", "14155552671@s.whatsapp.net"),
    ],
)
def test_whatsapp_jid_for(e164: str, expected: str) -> None:
    assert whatsapp_jid_for(e164) == expected
    assert normalize_phone(whatsapp_jid_for(e164)) == e164


@pytest.mark.parametrize("bad", ["", "hello", "123"])
def test_whatsapp_jid_for_refuses_non_numbers(bad: str) -> None:
    with pytest.raises(ValueError):
        whatsapp_jid_for(bad)


# --- identity_of -------------------------------------------------------------------------

PERSON = Identity(KEY, None, False, KEY)
PERSON_WITH_LID = Identity(KEY, LID, False, KEY)
LID_ONLY = Identity(None, LID, False, LID)


@pytest.mark.parametrize(
    ("jid", "alt", "expected"),
    [
        (WA, None, PERSON),
        ("551187654321@s.whatsapp.net", None, PERSON),
        (f"{NUM}@c.us", None, PERSON),
        (f"{NUM}:12@s.whatsapp.net", None, PERSON),
        (LID, None, LID_ONLY),
        (f"{LID_USER}:3@lid", None, LID_ONLY),
        (LID, WA, PERSON_WITH_LID),
        (LID, "551187654321@s.whatsapp.net", PERSON_WITH_LID),
        (LID, f"{NUM}:2@c.us", PERSON_WITH_LID),
        (WA, LID, PERSON_WITH_LID),
        (LID, "", LID_ONLY),
        (LID, "garbage", LID_ONLY),
        (LID, GROUP, LID_ONLY),
        (GROUP, None, Identity(None, None, True, GROUP)),
        (GROUP, WA, Identity(None, None, True, GROUP)),
        (f"{OLD_GROUP_USER}@g.us", None, Identity(None, None, True, f"{OLD_GROUP_USER}@g.us")),
        ("14155552671@c.us", None, Identity("+14155552671", None, False, "+14155552671")),
        ("status@broadcast", None, Identity(None, None, False, "status@broadcast")),
        (NEWSLETTER, None, Identity(None, None, False, NEWSLETTER)),
    ],
)
def test_identity_of(jid: str, alt: str | None, expected: Identity) -> None:
    assert identity_of(jid, alt) == expected


def test_a_lid_chat_and_its_phone_chat_are_one_conversation() -> None:
    # Baileys #2081: remoteJid alternates between @lid and the phone JID for the same chat.
    by_phone = identity_of("551187654321@s.whatsapp.net")
    by_lid = identity_of(LID, "5511987654321@c.us")
    assert by_phone.chat_key == by_lid.chat_key == "+5511987654321"


def test_identity_of_garbage_raises() -> None:
    with pytest.raises(InvalidJid):
        identity_of("not-a-jid")


# --- status broadcast --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jid", "expected"),
    [
        ("status@broadcast", True),
        (" STATUS@broadcast ", True),
        ("1600000000@broadcast", False),
        ("5511987654321@s.whatsapp.net", False),
        (GROUP, False),
        ("", False),
        (None, False),
        ("garbage", False),
    ],
)
def test_is_status_broadcast(jid: str | None, expected: bool) -> None:
    assert is_status_broadcast(jid) is expected


# --- fingerprint -------------------------------------------------------------------------


def test_fingerprint_is_short_stable_hex() -> None:
    value = fingerprint("Maria", "+5511987654321")
    assert re.fullmatch(r"[0-9a-f]{16}", value)
    assert value == fingerprint("Maria", "+5511987654321")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("Maria Silva", "x"), ("  maria   SILVA ", "x")),
        (("Jos\u00e9",), ("Jose\u0301",)),  # composed vs decomposed accent
        ((None, "a"), ("", "a")),
    ],
)
def test_fingerprint_ignores_presentation(
    a: tuple[str | None, ...], b: tuple[str | None, ...]
) -> None:
    assert fingerprint(*a) == fingerprint(*b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("a", "b"), ("b", "a")),
        (("ab", "c"), ("a", "bc")),
        (("a",), ("a", None)),
        (("Jose",), ("José",)),
        (("hello",), ("world",)),
    ],
)
def test_fingerprint_tells_different_content_apart(
    a: tuple[str | None, ...], b: tuple[str | None, ...]
) -> None:
    assert fingerprint(*a) != fingerprint(*b)
