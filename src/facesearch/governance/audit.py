"""The append-only, hash-chained audit log.

Every entry carries the hash of the one before it, so editing, deleting or reordering
entries breaks the chain at a place ``verify`` names. A chain can be recomputed by anyone
who can write the log's store (``catalog.ports.AuditStore``: rows, no hashing), so the
latest entry's number and hash are also kept outside the log (the *anchor*, in the
catalog) and ``verify`` checks that the anchored entry is in the log, at its number, with
its hash: entries cut off the end, a recomputed chain and entries
appended behind facesearch's back all show. With an audit key (``FACESEARCH_AUDIT_KEY``,
kept in the environment, never in the home) each entry's hash is an HMAC-SHA256: without
the key no entry can be forged or re-chained, even by someone who can also rewrite the
catalog. docs/privacy.md says who can hide what.

The log never holds images or templates: only who, when, what, why, counts and hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from facesearch.catalog.ports import AuditRow, AuditStore, Catalog
from facesearch.domain import AuditKeyed, Event, Requester
from facesearch.errors import ConfigError
from facesearch.security.sealing import decode_key

GENESIS = "0" * 64
# The entry that starts the keyed part of a chain; every entry from it on is an HMAC.
KEY_ACTION = AuditKeyed.action
PENDING = ":pending"

UNKEYED_WARNING = (
    "the chain is unkeyed (no FACESEARCH_AUDIT_KEY): it shows any change made to the audit "
    "file alone, but whoever can also write the catalog can rewrite it consistently"
)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry to append: a typed event (``domain.Event``) with who made it."""

    action: str
    actor: str
    purpose: str | None = None
    case_ref: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, event: Event, who: Requester) -> AuditEvent:
        return cls(
            action=event.action,
            actor=who.actor,
            purpose=who.purpose,
            case_ref=who.case_ref,
            details=event.details(),
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    purpose: str | None
    case_ref: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: AuditRow) -> AuditEntry:
        return cls(
            row.seq,
            row.at,
            row.actor,
            row.action,
            row.purpose,
            row.case_ref,
            json.loads(row.details),
            row.prev_hash,
            row.hash,
        )


def entry_hash(
    seq: int,
    at: str,
    actor: str,
    action: str,
    purpose: str | None,
    case_ref: str | None,
    details: str,
    prev_hash: str,
    key: bytes | None = None,
) -> str:
    """SHA-256 of the entry's canonical form, or its HMAC-SHA256 under ``key``."""
    canonical = json.dumps(
        [seq, at, actor, action, purpose, case_ref, details, prev_hash],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    if key is None:
        return hashlib.sha256(canonical).hexdigest()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def parse_key(secret: str | None) -> bytes | None:
    """The audit key from its base64 form (32 bytes, like the encryption key)."""
    return decode_key(secret, "the audit key")


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"facesearch audit key fingerprint\0" + key).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Anchor:
    """The latest entry as the catalog records it. ``pending``: written before the entry's
    own commit and not yet confirmed after it, so the log may still end one entry earlier."""

    seq: int
    hash: str
    pending: bool = False

    def encode(self) -> str:
        return f"{self.seq}:{self.hash}" + (PENDING if self.pending else "")

    @classmethod
    def decode(cls, value: str | None) -> Anchor | None:
        if value is None:
            return None
        pending = value.endswith(PENDING)
        seq, digest = value.removesuffix(PENDING).split(":", 1)
        return cls(int(seq), digest, pending)


class AnchorStore(Protocol):
    """Where the anchor lives, outside the log (the catalog's meta table)."""

    def get(self) -> str | None: ...

    def set(self, value: str) -> None: ...

    def replace(self, old: str, new: str) -> None:
        """Set ``new`` only if the value is still ``old`` (another writer may have moved on)."""


class CatalogAnchor:
    """The anchor in the catalog's meta table (any Catalog)."""

    KEY = "audit_head"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def get(self) -> str | None:
        return self.catalog.meta(self.KEY)

    def set(self, value: str) -> None:
        self.catalog.set_meta(self.KEY, value)

    def replace(self, old: str, new: str) -> None:
        self.catalog.replace_meta(self.KEY, old, new)


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    problem: str | None = None
    seq: int | None = None  # where the first problem is
    keyed_from: int | None = None  # the first entry protected by the audit key, if any
    warning: str | None = None  # what an intact result does not prove


class AuditLog:
    """The hash chain over an audit store (``catalog.ports.AuditStore``); ``anchor``
    keeps the latest entry outside it.

    ``key`` and ``keyed_from``: entries from ``keyed_from`` on are HMACs under ``key``
    (the ones before it were written before the home had a key, and stay plain hashes)."""

    def __init__(
        self,
        store: AuditStore,
        anchor: AnchorStore,
        key: bytes | None = None,
        keyed_from: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self._anchor = anchor
        self.key = key
        self.keyed_from = keyed_from if key is not None else None
        self._clock = clock
        # One append at a time in this process, from the head's read to the anchor's
        # confirmation (the store serialises the transaction itself across processes).
        self._lock = threading.RLock()

    def _key_for(self, seq: int) -> bytes | None:
        if self.keyed_from is not None and seq >= self.keyed_from:
            return self.key
        return None

    def append(self, event: AuditEvent) -> AuditEntry:
        # The anchor is written inside the store's write transaction, which also
        # serialises writers in other processes: first as pending (a crash before the
        # commit leaves the log one entry short of it, which verify accepts), then, once
        # the entry is committed, confirmed, unless a later writer has already moved it.
        details = json.dumps(event.details, sort_keys=True, default=str)

        def make(last: tuple[int, str] | None) -> AuditRow:
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            at = self._clock().astimezone(UTC).isoformat(timespec="microseconds")
            head = (seq, at, event.actor, event.action, event.purpose, event.case_ref)
            digest = entry_hash(*head, details, prev, key=self._key_for(seq))
            self._anchor.set(Anchor(seq, digest, pending=True).encode())
            return AuditRow(*head, details, prev, digest)

        with self._lock:
            row = self.store.append(make)
            pending = Anchor(row.seq, row.hash, pending=True).encode()
            self._anchor.replace(pending, Anchor(row.seq, row.hash).encode())
        return AuditEntry(
            row.seq,
            row.at,
            row.actor,
            row.action,
            row.purpose,
            row.case_ref,
            event.details,
            row.prev_hash,
            row.hash,
        )

    def start_keying(self, actor: str, unkeyed_entries: int) -> AuditEntry:
        """Key the chain from the next entry on (the entry saying so is the first keyed)."""
        if self.key is None:
            raise ConfigError("no audit key to start keying with")
        head = self.head()
        self.keyed_from = (head[0] if head else 0) + 1
        marker = AuditKeyed(fingerprint=key_fingerprint(self.key), unkeyed_entries=unkeyed_entries)
        return self.append(AuditEvent.of(marker, Requester(actor=actor)))

    def entries(
        self,
        case_ref: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditEntry]:
        """Entries in order, filtered; ``after`` and ``limit`` page through them by seq."""
        rows = self.store.rows(
            case_ref=case_ref, action=action, since=since, until=until, after=after, limit=limit
        )
        for row in rows:
            yield AuditEntry.from_row(row)

    def head(self) -> tuple[int, str] | None:
        return self.store.head()

    def verify(self) -> Verification:
        """Walk the chain in storage order, then check it against the anchor; name the
        first entry that does not hold."""
        # Another process may append while the log is read: read the anchor before and
        # after, and read again if it moved (an append commits between its two anchor
        # writes, so an unmoved anchor covers whatever state the log was read in).
        for _ in range(20):
            before = self._anchor.get()
            result = self._walk(Anchor.decode(before))
            if self._anchor.get() == before:
                return result
            time.sleep(0.01)
        return result

    def _walk(self, anchor: Anchor | None) -> Verification:
        prev, expected_seq, count = GENESIS, 1, 0
        hashes: dict[int, str] = {}
        key_fp = key_fingerprint(self.key) if self.key is not None else None
        for row in self.store.stored():
            seq, at, actor, action, purpose, case_ref, details, prev_hash, digest = (
                row.seq,
                row.at,
                row.actor,
                row.action,
                row.purpose,
                row.case_ref,
                row.details,
                row.prev_hash,
                row.hash,
            )
            count += 1
            if seq != expected_seq:
                kind = "missing or reordered" if seq > expected_seq else "reordered or duplicated"
                return self._result(False, count, f"entry {expected_seq} {kind}: found {seq}", seq)
            if prev_hash != prev:
                return self._result(
                    False, count, f"entry {seq} does not follow entry {seq - 1} (chain broken)", seq
                )
            if seq == self.keyed_from and (
                action != KEY_ACTION or json.loads(details).get("fingerprint") != key_fp
            ):
                return self._result(
                    False,
                    count,
                    f"entry {seq} should start the keyed chain but does not (log rewritten)",
                    seq,
                )
            # A later audit.key entry with the same key (two processes keying a home at
            # once) is keyed like any other; one before the keyed chain, or with another
            # key, is not.
            if action == KEY_ACTION and (
                self.keyed_from is None
                or seq < self.keyed_from
                or json.loads(details).get("fingerprint") != key_fp
            ):
                problem = (
                    f"entry {seq} starts a keyed chain, but the catalog records no audit key "
                    "(set FACESEARCH_AUDIT_KEY; if it is set, the catalog's record was removed)"
                    if self.keyed_from is None
                    else f"entry {seq} starts another keyed chain (log rewritten)"
                )
                return self._result(False, count, problem, seq)
            hashed = (seq, at, actor, action, purpose, case_ref, details, prev_hash)
            if entry_hash(*hashed, key=self._key_for(seq)) != digest:
                edited = "was edited or forged" if self._key_for(seq) else "was edited"
                return self._result(False, count, f"entry {seq} {edited}", seq)
            hashes[seq] = digest
            prev, expected_seq = digest, expected_seq + 1
        if self.keyed_from is not None and self.keyed_from > count + 1:
            return self._result(
                False,
                count,
                f"the keyed chain starts at entry {self.keyed_from}, after the log's end "
                f"(entry {count}): entries cut off the end",
                count + 1,
            )
        return self._check_anchor(anchor, count, hashes)

    def _check_anchor(
        self, anchor: Anchor | None, count: int, hashes: dict[int, str]
    ) -> Verification:
        if anchor is None:
            if count:
                return self._result(
                    False,
                    count,
                    "the catalog records no latest entry for this log (its anchor was removed)",
                    1,
                )
            return self._result(True, 0)
        # A pending anchor was written before its entry's commit: the log may end there or
        # one entry earlier (an append in progress, or a crash in the middle of one).
        ends = {anchor.seq, anchor.seq - 1} if anchor.pending else {anchor.seq}
        if count < min(ends):
            return self._result(
                False,
                count,
                f"the log ends at entry {count} but entry {anchor.seq} was written "
                "(entries cut off the end)",
                count + 1,
            )
        if anchor.seq <= count and hashes[anchor.seq] != anchor.hash:
            return self._result(
                False,
                count,
                f"entry {anchor.seq} is not the entry written (the chain was recomputed)",
                anchor.seq,
            )
        last = max(e for e in ends if e <= count)
        if count > last:
            return self._result(
                False,
                count,
                f"entries {last + 1} to {count} were not written by facesearch "
                f"(the catalog's latest entry is {anchor.seq}): forged or appended",
                last + 1,
            )
        return self._result(True, count)

    def _result(
        self, ok: bool, count: int, problem: str | None = None, seq: int | None = None
    ) -> Verification:
        if self.keyed_from is None:
            warning: str | None = UNKEYED_WARNING
        elif self.keyed_from > 1:
            warning = (
                f"the audit key was set at entry {self.keyed_from}: until then, entries 1 to "
                f"{self.keyed_from - 1} could be rewritten by whoever could write the catalog too"
            )
        else:
            warning = None
        return Verification(ok, count, problem, seq, self.keyed_from, warning)

    def close(self) -> None:
        self.store.close()
