"""Encryption of stored credentials (gateway keys, Chatwoot tokens) with Fernet."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class CredentialsUnreadable(RuntimeError):
    """Stored credentials cannot be decrypted: ZAPSYNC_SECRET_KEY changed or was lost."""


class Cipher:
    def __init__(self, secret_key: str) -> None:
        # Fernet needs 32 url-safe base64 bytes; derive them so any passphrase works.
        digest = hashlib.sha256(secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

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
                "stored credentials cannot be decrypted with the current ZAPSYNC_SECRET_KEY"
            ) from None
