"""Encryption of stored credentials (gateway keys, Chatwoot tokens, webhook secrets) with Fernet.

The Fernet key is derived from `ZAPSYNC_SECRET_KEY` with HKDF-SHA256 (a fixed salt, and an
`info` naming the purpose, so one secret never gives two purposes the same key). Values are
written under that primary key only; they are read under it, under the keys derived from
`ZAPSYNC_OLD_SECRET_KEYS` (the secrets it replaced), and under the sha256 digest every
earlier zapsync used as the key. `rotate` rewrites a value under the primary key
(`services/credential_rotation.py` does it for every stored value at start-up), after which
an old secret can leave the list.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"zapsync.secret-key.v1"


class CredentialsUnreadable(RuntimeError):
    """Stored credentials cannot be decrypted: ZAPSYNC_SECRET_KEY changed or was lost."""


def derive_key(secret_key: str, purpose: str) -> bytes:
    """The Fernet key (32 url-safe base64 bytes) of `secret_key` for `purpose`."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=_SALT, info=f"zapsync/{purpose}".encode()
    )
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


def legacy_key(secret_key: str) -> bytes:
    """The key zapsync derived before HKDF: a bare sha256 of the secret (read, never written)."""
    return base64.urlsafe_b64encode(hashlib.sha256(secret_key.encode()).digest())


class Cipher:
    def __init__(
        self, secret_key: str, old_keys: Sequence[str] = (), *, purpose: str = "credentials"
    ) -> None:
        self._primary = Fernet(derive_key(secret_key, purpose))
        secrets = [secret_key, *(k for k in old_keys if k and k != secret_key)]
        readers = [
            self._primary,
            *(Fernet(derive_key(k, purpose)) for k in secrets[1:]),
            *(Fernet(legacy_key(k)) for k in secrets),
        ]
        # MultiFernet encrypts with the first key and tries each in order to decrypt.
        self._fernet = MultiFernet(readers)

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self.encrypt_text(json.dumps(value, sort_keys=True))

    def decrypt_json(self, token: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.decrypt_text(token))
        return data

    def encrypt_text(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt_text(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise CredentialsUnreadable(
                "stored credentials cannot be decrypted with ZAPSYNC_SECRET_KEY "
                "or any of ZAPSYNC_OLD_SECRET_KEYS"
            ) from None

    def is_current(self, token: str) -> bool:
        """Whether `token` is written under the primary key (nothing to rotate)."""
        try:
            self._primary.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """`token` rewritten under the primary key; CredentialsUnreadable if no key opens it."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise CredentialsUnreadable(
                "stored credentials cannot be decrypted with ZAPSYNC_SECRET_KEY "
                "or any of ZAPSYNC_OLD_SECRET_KEYS"
            ) from None
