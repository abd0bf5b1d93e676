"""API keys and passwords: how they are made, and how they are stored (never in clear).

An API key is ``fsk_<key id>_<secret>``. The key id is public (it names the key in
listings and logs); the 256-bit secret is stored only as HMAC-SHA256 under a per-key
random salt. A fast salted hash is right for a random 256-bit secret (nothing to guess)
and keeps every request's check cheap; passwords, which people choose, get Argon2id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

KEY_PREFIX = "fsk"
_PASSWORDS = PasswordHasher()


def new_key() -> tuple[str, str]:
    """(key id, the full key to show once)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def split_key(full: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    parts = full.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def new_salt() -> str:
    return secrets.token_hex(16)


def hash_secret(secret: str, salt: str) -> str:
    return hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def hash_password(password: str) -> str:
    return _PASSWORDS.hash(password)


def check_password(stored: str, password: str) -> bool:
    try:
        return _PASSWORDS.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def token() -> str:
    """A random token for sessions and CSRF."""
    return secrets.token_urlsafe(32)


def token_hash(value: str) -> str:
    """Session tokens are stored hashed, so a copy of the database cannot sign anyone in."""
    return hashlib.sha256(value.encode()).hexdigest()
