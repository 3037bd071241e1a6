"""What a contact holds on each side, and the fingerprints that tell a change from a repeat.

The pulled fingerprint is the mapped Chatwoot record's (`ChatwootContact.fingerprint`); the
pushed one is of what zapsync sends (name, e-mail, phone). Each side keeps its own in the ref,
so a pull right after a push, or a push right after a pull, writes nothing."""

from __future__ import annotations

from typing import Any

from zapsync.connectors.fingerprints import content_fingerprint

CONTACT = "contact"


def pushed_fields(name: str | None, email: str | None, phone_e164: str | None) -> dict[str, Any]:
    """The contact as zapsync writes it into Chatwoot: the phone in E.164 with its `+`."""
    return {"name": name, "email": email, "phone_number": phone_e164}


def pushed_fingerprint(name: str | None, email: str | None, phone_e164: str | None) -> str:
    return content_fingerprint(pushed_fields(name, email, phone_e164))


def merged_custom_fields(stored: dict[str, Any] | None, pulled: dict[str, Any]) -> dict[str, Any]:
    """The stored custom fields with Chatwoot's replaced by the record's (others kept)."""
    kept = {k: v for k, v in (stored or {}).items() if not k.startswith("chatwoot_")}
    return {**kept, **pulled}
