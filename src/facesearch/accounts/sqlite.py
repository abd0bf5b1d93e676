"""SqliteAccountStore, the ``accounts.ports.AccountStore`` of a home: API keys, users and web
sessions in ``<home>/accounts.sqlite``.

Kept apart from the catalog: accounts are about who may ask, not about what is stored.
Keys and session tokens are stored only as hashes; passwords only as Argon2id hashes.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from facesearch.accounts import credentials as cred
from facesearch.accounts.ports import KeyInfo, Session
from facesearch.accounts.roles import Principal, Role, parse_role
from facesearch.errors import InvalidInput, NotFound
from facesearch.sqlitedb import open_connection

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    salt TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SqliteAccountStore:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self.db = open_connection(path, "accounts store", SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- API keys ----------------------------------------------------------------------
    def create_key(self, name: str, role: str) -> tuple[KeyInfo, str]:
        """A new key; the returned full key is shown once and never stored."""
        if not name.strip():
            raise InvalidInput("a key needs a name (who or what uses it)")
        parsed = parse_role(role)
        key_id, full = cred.new_key()
        secret = full.split("_", 2)[2]
        salt = cred.new_salt()
        created = _now()
        with self._lock:
            self.db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (key_id, name.strip(), parsed.value, salt, cred.hash_secret(secret, salt), created),
            )
        return KeyInfo(key_id, name.strip(), parsed, created, None), full

    def list_keys(self) -> list[KeyInfo]:
        with self._lock:
            rows = self.db.execute(
                "SELECT key_id, name, role, created_at, revoked_at FROM api_keys "
                "ORDER BY created_at, key_id"
            ).fetchall()
        return [KeyInfo(r[0], r[1], Role(r[2]), r[3], r[4]) for r in rows]

    def revoke_key(self, key_id: str) -> KeyInfo:
        with self._lock:
            cur = self.db.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?",
                (_now(), key_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no API key with id {key_id}")
            # Sessions opened with the key end with it.
            self.db.execute("DELETE FROM sessions WHERE kind = 'key' AND subject = ?", (key_id,))
        return next(k for k in self.list_keys() if k.key_id == key_id)

    def check_key(self, full: str) -> Principal | None:
        """The key's principal, or None for an unknown, malformed or revoked key."""
        parts = cred.split_key(full)
        if parts is None:
            return None
        key_id, secret = parts
        with self._lock:
            row = self.db.execute(
                "SELECT name, role, salt, hash, revoked_at FROM api_keys WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        if row is None or row[4] is not None:
            return None
        if not cred.same(cred.hash_secret(secret, row[2]), row[3]):
            return None
        return Principal(kind="key", id=key_id, name=row[0], role=Role(row[1]))

    # -- users -------------------------------------------------------------------------
    def add_user(self, username: str, password: str, role: str) -> None:
        if not username.strip():
            raise InvalidInput("a username must not be empty")
        if len(password) < 10:
            raise InvalidInput("a password needs at least 10 characters")
        parsed = parse_role(role)
        hashed = cred.hash_password(password)
        with self._lock:
            self.db.execute(
                """INSERT INTO users VALUES (?, ?, ?, ?) ON CONFLICT (username)
                   DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash""",
                (username.strip(), parsed.value, hashed, _now()),
            )
            self.db.execute(
                "DELETE FROM sessions WHERE kind = 'user' AND subject = ?", (username.strip(),)
            )

    def check_password(self, username: str, password: str) -> Principal | None:
        with self._lock:
            row = self.db.execute(
                "SELECT role, password_hash FROM users WHERE username = ?", (username.strip(),)
            ).fetchone()
        if row is None:
            cred.check_password(_dummy_hash(), password)  # same cost for unknown users
            return None
        if not cred.check_password(row[1], password):
            return None
        return Principal(kind="user", id=username.strip(), name=username.strip(), role=Role(row[0]))

    # -- web sessions ------------------------------------------------------------------
    def open_session(self, principal: Principal, hours: float) -> tuple[str, str]:
        """(session token for the cookie, CSRF token for forms)."""
        session, csrf = cred.token(), cred.token()
        expires = self.clock() + hours * 3600
        with self._lock:
            self.db.execute("DELETE FROM sessions WHERE expires_at < ?", (self.clock(),))
            self.db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                (cred.token_hash(session), principal.kind, principal.id, csrf, expires),
            )
        return session, csrf

    def session(self, token: str) -> Session | None:
        """The live session of a cookie; None when unknown, expired or its key revoked."""
        with self._lock:
            row = self.db.execute(
                "SELECT kind, subject, csrf, expires_at FROM sessions WHERE token_hash = ?",
                (cred.token_hash(token),),
            ).fetchone()
            if row is None or row[3] < self.clock():
                return None
            if row[0] == "key":
                found = self.db.execute(
                    "SELECT name, role FROM api_keys WHERE key_id = ? AND revoked_at IS NULL",
                    (row[1],),
                ).fetchone()
            else:
                found = self.db.execute(
                    "SELECT username, role FROM users WHERE username = ?", (row[1],)
                ).fetchone()
        if found is None:
            return None
        principal = Principal(kind=row[0], id=row[1], name=found[0], role=Role(found[1]))
        return Session(principal=principal, csrf=row[2], expires_at=row[3])

    def close_session(self, token: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM sessions WHERE token_hash = ?", (cred.token_hash(token),))


@functools.cache
def _dummy_hash() -> str:
    return cred.hash_password("not a real password: it only spends the same time")
