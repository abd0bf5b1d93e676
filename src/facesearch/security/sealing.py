"""Optional encryption at rest of templates and face crops (AES-256-GCM).

Storage encryption, not governance: ``security.templates.TemplateCodec`` applies it to
the templates every store keeps.

The key comes from the environment (``FACESEARCH_ENCRYPTION_KEY``: 32 bytes, base64), never
from the home directory, so a stolen copy of the data directory yields no templates. The
home records a fingerprint of the key (a keyed hash, not the key) so that opening it with
a wrong or missing key is refused instead of silently producing garbage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from facesearch.errors import ConfigError

NONCE = 12
MAGIC = b"FSE1"


def decode_key(secret: str | None, what: str) -> bytes | None:
    """A 32-byte key from its base64 form in the environment (None when unset); ``what``
    names it in the error (the encryption key, the audit key)."""
    if not secret:
        return None
    try:
        key = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{what} is not valid base64") from None
    if len(key) != 32:
        raise ConfigError(f"{what} must be 32 bytes, not {len(key)}")
    return key


class Sealer:
    """Encrypts and decrypts blobs; with no key it passes them through unchanged."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key
        if key is not None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead = AESGCM(key)

    @classmethod
    def from_secret(cls, secret: str | None) -> Sealer:
        return cls(decode_key(secret, "the encryption key"))

    @property
    def enabled(self) -> bool:
        return self.key is not None

    def fingerprint(self) -> str | None:
        if self.key is None:
            return None
        return hashlib.sha256(b"facesearch key fingerprint\0" + self.key).hexdigest()[:16]

    def seal(self, data: bytes) -> bytes:
        if self.key is None:
            return data
        nonce = os.urandom(NONCE)
        return MAGIC + nonce + self._aead.encrypt(nonce, data, None)

    def open(self, blob: bytes) -> bytes:
        if self.key is None:
            if blob.startswith(MAGIC):
                raise ConfigError("stored data is encrypted: set FACESEARCH_ENCRYPTION_KEY")
            return blob
        from cryptography.exceptions import InvalidTag

        if not blob.startswith(MAGIC):
            return blob  # written before encryption was turned on
        try:
            return bytes(self._aead.decrypt(blob[4 : 4 + NONCE], blob[4 + NONCE :], None))
        except InvalidTag:
            raise ConfigError("stored data does not decrypt with this encryption key") from None


def new_key() -> str:
    """A fresh key, base64, for FACESEARCH_ENCRYPTION_KEY."""
    return base64.b64encode(os.urandom(32)).decode()
