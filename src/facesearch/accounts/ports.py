"""The accounts port: who may ask (API keys, web users, their sessions). SQLite
(``accounts/sqlite.py``) is the embedded default; other stores implement the same.

Keys and session tokens are kept only as hashes, passwords only as Argon2id hashes; a
store never returns a secret except the full key, once, from ``create_key``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from facesearch.accounts.roles import Principal, Role


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    csrf: str
    expires_at: float


class AccountStore(Protocol):
    # -- API keys ------------------------------------------------------------------------
    def create_key(self, name: str, role: str) -> tuple[KeyInfo, str]:
        """A new key for ``name`` (trimmed; InvalidInput when empty or the role unknown);
        the returned full key is shown once and never stored."""
        ...

    def list_keys(self) -> list[KeyInfo]:
        """Every key, active and revoked, oldest first."""
        ...

    def revoke_key(self, key_id: str) -> KeyInfo:
        """Revoke it (again: no change) and end the sessions opened with it; NotFound
        when there is no such key."""
        ...

    def check_key(self, full: str) -> Principal | None:
        """The key's principal, or None for an unknown, malformed or revoked key."""
        ...

    # -- users ---------------------------------------------------------------------------
    def add_user(self, username: str, password: str, role: str) -> None:
        """Add a user, or reset their password and role (ending their sessions)."""
        ...

    def check_password(self, username: str, password: str) -> Principal | None: ...

    # -- web sessions --------------------------------------------------------------------
    def open_session(self, principal: Principal, hours: float) -> tuple[str, str]:
        """(session token for the cookie, CSRF token for forms)."""
        ...

    def session(self, token: str) -> Session | None:
        """The live session of a cookie; None when unknown, expired or its key revoked."""
        ...

    def close_session(self, token: str) -> None: ...

    def close(self) -> None: ...
