"""PostgresAccountStore, the ``accounts.ports.AccountStore`` on the catalog's PostgreSQL
database: API keys, users and web sessions shared by every API server of a deployment
(a key revoked through one server is refused by all of them at once).

The same tables and rules as ``accounts/sqlite.py``: keys and session tokens are stored
only as hashes, passwords only as Argon2id hashes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime

from facesearch.accounts import credentials as cred
from facesearch.accounts.ports import KeyInfo, Session
from facesearch.accounts.roles import Principal, Role, parse_role
from facesearch.catalog.postgres.database import Database
from facesearch.errors import InvalidInput, NotFound

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
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_subject ON sessions(kind, subject);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class PostgresAccountStore:
    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.db = Database(url, "accounts store", SCHEMA, ("api_keys", "users", "sessions"))

    def close(self) -> None:
        self.db.close()

    # -- API keys ----------------------------------------------------------------------
    def create_key(self, name: str, role: str) -> tuple[KeyInfo, str]:
        if not name.strip():
            raise InvalidInput("a key needs a name (who or what uses it)")
        parsed = parse_role(role)
        key_id, full = cred.new_key()
        secret = full.split("_", 2)[2]
        salt = cred.new_salt()
        created = _now()
        self.db.execute(
            "INSERT INTO api_keys VALUES (%s, %s, %s, %s, %s, %s, NULL)",
            (key_id, name.strip(), parsed.value, salt, cred.hash_secret(secret, salt), created),
        )
        return KeyInfo(key_id, name.strip(), parsed, created, None), full

    def list_keys(self) -> list[KeyInfo]:
        rows = self.db.rows(
            "SELECT key_id, name, role, created_at, revoked_at FROM api_keys "
            "ORDER BY created_at, key_id"
        )
        return [KeyInfo(r[0], r[1], Role(r[2]), r[3], r[4]) for r in rows]

    def revoke_key(self, key_id: str) -> KeyInfo:
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, %s) WHERE key_id = %s "
                "RETURNING key_id, name, role, created_at, revoked_at",
                (_now(), key_id),
            )
            row = cur.fetchone()
            if row is None:
                raise NotFound(f"no API key with id {key_id}")
            # Sessions opened with the key end with it.
            cur.execute("DELETE FROM sessions WHERE kind = 'key' AND subject = %s", (key_id,))
        return KeyInfo(row[0], row[1], Role(row[2]), row[3], row[4])

    def check_key(self, full: str) -> Principal | None:
        parts = cred.split_key(full)
        if parts is None:
            return None
        key_id, secret = parts
        row = self.db.row(
            "SELECT name, role, salt, hash, revoked_at FROM api_keys WHERE key_id = %s",
            (key_id,),
        )
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
        with self.db.transaction() as cur:
            cur.execute(
                """INSERT INTO users VALUES (%s, %s, %s, %s) ON CONFLICT (username)
                   DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash""",
                (username.strip(), parsed.value, hashed, _now()),
            )
            cur.execute(
                "DELETE FROM sessions WHERE kind = 'user' AND subject = %s", (username.strip(),)
            )

    def check_password(self, username: str, password: str) -> Principal | None:
        row = self.db.row(
            "SELECT role, password_hash FROM users WHERE username = %s", (username.strip(),)
        )
        if row is None:
            cred.check_password(_dummy_hash(), password)  # same cost for unknown users
            return None
        if not cred.check_password(row[1], password):
            return None
        return Principal(kind="user", id=username.strip(), name=username.strip(), role=Role(row[0]))

    # -- web sessions ------------------------------------------------------------------
    def open_session(self, principal: Principal, hours: float) -> tuple[str, str]:
        session, csrf = cred.token(), cred.token()
        expires = self.clock() + hours * 3600
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM sessions WHERE expires_at < %s", (self.clock(),))
            cur.execute(
                "INSERT INTO sessions VALUES (%s, %s, %s, %s, %s)",
                (cred.token_hash(session), principal.kind, principal.id, csrf, expires),
            )
        return session, csrf

    def session(self, token: str) -> Session | None:
        # One query: the session and who it belongs to, as they are at one moment.
        row = self.db.row(
            """SELECT s.kind, s.subject, s.csrf, s.expires_at,
                      COALESCE(k.name, u.username), COALESCE(k.role, u.role)
               FROM sessions s
               LEFT JOIN api_keys k
                 ON s.kind = 'key' AND k.key_id = s.subject AND k.revoked_at IS NULL
               LEFT JOIN users u ON s.kind = 'user' AND u.username = s.subject
               WHERE s.token_hash = %s""",
            (cred.token_hash(token),),
        )
        if row is None or row[3] < self.clock() or row[4] is None:
            return None
        principal = Principal(kind=row[0], id=row[1], name=row[4], role=Role(row[5]))
        return Session(principal=principal, csrf=row[2], expires_at=row[3])

    def close_session(self, token: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE token_hash = %s", (cred.token_hash(token),))


@functools.cache
def _dummy_hash() -> str:
    return cred.hash_password("not a real password: it only spends the same time")
