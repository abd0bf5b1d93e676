"""The audit log's contract, run against every audit store in ``adapters.AUDIT_LOGS``, with
and without an audit key: entries are appended in a hash chain, read back filtered and paged,
and ``verify`` names every change made to the stored log by someone who can write it but
not the anchor (the latest entry, kept outside the log: here a dict, in a home the catalog).

tests/integration/test_audit_tamper.py covers the same through the engine, and what an
attacker who can also write the catalog can and cannot hide; this suite is what any store
behind the log must give.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from facesearch.governance.audit import GENESIS, AuditEvent, entry_hash

from .adapters import AUDIT_LOGS, AuditChain, AuditRow, params

KEY = b"k" * 32


class MemoryAnchor:
    """The anchor, outside the log (the engine keeps it in the catalog)."""

    def __init__(self) -> None:
        self.value: str | None = None
        self._lock = threading.Lock()

    def get(self) -> str | None:
        return self.value

    def set(self, value: str) -> None:
        with self._lock:
            self.value = value

    def replace(self, old: str, new: str) -> None:
        with self._lock:
            if self.value == old:
                self.value = new


class FileAnchor:
    """The anchor in a file, for writers in several processes (the engine keeps it in the
    catalog, which they share)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self) -> str | None:
        return self.path.read_text() if self.path.exists() else None

    def _write(self, value: str) -> None:
        tmp = self.path.with_suffix(f".{os.getpid()}")
        tmp.write_text(value)
        os.replace(tmp, self.path)

    def _locked(self) -> int:
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def set(self, value: str) -> None:
        fd = self._locked()
        try:
            self._write(value)
        finally:
            os.close(fd)

    def replace(self, old: str, new: str) -> None:
        fd = self._locked()
        try:
            if self.get() == old:
                self._write(new)
        finally:
            os.close(fd)


@dataclass
class StepClock:
    """One minute later at every call, from 2026-01-01."""

    at: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.at += timedelta(minutes=1)
        return self.at


@dataclass
class Opened:
    adapter: str
    folder: Path
    anchor: MemoryAnchor
    key: bytes | None
    log: AuditChain

    def reopen(self) -> AuditChain:
        """Another connection to the same log, as another process opens it."""
        keyed_from = self.log.keyed_from
        return AUDIT_LOGS[self.adapter].open(self.folder, self.anchor, self.key, keyed_from)

    def read(self) -> list[AuditRow]:
        return AUDIT_LOGS[self.adapter].read(self.folder)

    def write(self, rows: list[AuditRow]) -> None:
        AUDIT_LOGS[self.adapter].write(self.folder, rows)


@pytest.fixture(params=params(AUDIT_LOGS))
def adapter(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(params=[None, KEY], ids=["unkeyed", "keyed"])
def opened(adapter: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Opened]:
    folder, anchor, key = tmp_path / "audit", MemoryAnchor(), request.param
    log = AUDIT_LOGS[adapter].open(folder, anchor, key, None, StepClock())
    if key is not None:
        log.start_keying("admin", unkeyed_entries=0)  # entry 1: keyed from the start
    for i in range(6):
        log.append(
            AuditEvent(
                action="search" if i % 2 else "erasure",
                actor=f"key:{i % 3}",
                purpose="investigation" if i % 2 else None,
                case_ref=f"case-{i % 2}",
                details={"results": i, "note": "é ✓"},
            )
        )
    yield Opened(adapter, folder, anchor, key, log)
    log.close()


# -- append, read, head -------------------------------------------------------------------
def test_entries_chain_and_come_back_as_appended(opened: Opened) -> None:
    entries = list(opened.log.entries())
    keyed = opened.key is not None
    assert [e.seq for e in entries] == list(range(1, 7 + keyed))
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    last = entries[-1]
    assert (last.action, last.actor, last.purpose, last.case_ref) == (
        "search",
        "key:2",
        "investigation",
        "case-1",
    )
    assert last.details == {"results": 5, "note": "é ✓"}
    assert opened.log.head() == (last.seq, last.hash)
    assert opened.anchor.get() == f"{last.seq}:{last.hash}"
    again = opened.reopen()
    try:
        assert list(again.entries()) == entries and again.verify().ok
    finally:
        again.close()


def test_entries_are_filtered_and_paged(opened: Opened) -> None:
    log = opened.log
    assert [e.details["results"] for e in log.entries(case_ref="case-1")] == [1, 3, 5]
    assert [e.details["results"] for e in log.entries(action="erasure")] == [0, 2, 4]
    times = [e.at for e in log.entries(action="search")]
    assert [e.details["results"] for e in log.entries(since=times[1], until=times[2])] == [3, 4]
    pages, after = [], 0
    while page := list(log.entries(after=after, limit=4)):
        pages.append([e.seq for e in page])
        after = page[-1].seq
    assert [s for p in pages for s in p] == [e.seq for e in log.entries()]
    assert max(len(p) for p in pages) == 4
    assert list(log.entries(case_ref="case-1", action="erasure")) == []


def test_an_intact_log_verifies_and_says_what_it_cannot_prove(opened: Opened) -> None:
    result = opened.log.verify()
    assert result.ok and result.problem is None
    assert result.entries == len(list(opened.log.entries()))
    if opened.key is None:
        assert result.warning and "unkeyed" in result.warning and result.keyed_from is None
    else:
        assert result.warning is None and result.keyed_from == 1


def test_an_empty_log_verifies(adapter: str, tmp_path: Path) -> None:
    log = AUDIT_LOGS[adapter].open(tmp_path / "audit", MemoryAnchor())
    try:
        assert log.head() is None and list(log.entries()) == []
        assert log.verify().ok and log.verify().entries == 0
    finally:
        log.close()


def test_writers_on_two_connections_keep_one_chain(opened: Opened) -> None:
    before = len(list(opened.log.entries()))
    other = opened.reopen()

    def write(log: AuditChain, who: str) -> None:
        for i in range(15):
            log.append(AuditEvent(action="search", actor=who, details={"i": i}))

    threads = [
        threading.Thread(target=write, args=(log, who))
        for log, who in ((opened.log, "a"), (other, "b"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        seqs = [e.seq for e in opened.log.entries()]
        assert seqs == list(range(1, before + 31))
        assert opened.log.verify().ok and other.verify().ok
    finally:
        other.close()


def append_as(adapter: str, folder: str, who: str, count: int, start: Any) -> None:
    """In another process: ``count`` entries by ``who``, once every writer is ready."""
    log = AUDIT_LOGS[adapter].open(Path(folder), FileAnchor(Path(folder).parent / "anchor"))
    try:
        start.wait(60)
        for i in range(count):
            log.append(AuditEvent(action="search", actor=who, details={"i": i}))
    finally:
        log.close()


def test_writers_in_several_processes_keep_one_chain(adapter: str, tmp_path: Path) -> None:
    """API servers and command-line runs on one catalog: one chain, no seq missing or
    twice, each writer's entries in its order, and the whole verifies."""
    folder, count = tmp_path / "audit", 25
    log = AUDIT_LOGS[adapter].open(folder, FileAnchor(tmp_path / "anchor"))
    log.append(AuditEvent(action="search", actor="main", details={"i": -1}))  # made, shared
    context = multiprocessing.get_context("spawn")  # as ingest workers and servers start
    start = context.Barrier(4)
    writers = [
        context.Process(target=append_as, args=(adapter, str(folder), f"p{w}", count, start))
        for w in range(3)
    ]
    for p in writers:
        p.start()
    try:
        start.wait(60)
        for i in range(count):
            log.append(AuditEvent(action="search", actor="main", details={"i": i}))
        for p in writers:
            p.join(120)
        assert [p.exitcode for p in writers] == [0, 0, 0]
        entries = list(log.entries())
        assert [e.seq for e in entries] == list(range(1, 4 * count + 2))
        for who in ("main", "p0", "p1", "p2"):
            mine = [e.details["i"] for e in entries if e.actor == who]
            assert mine == ([-1] if who == "main" else []) + list(range(count)), who
        result = log.verify()
        assert result.ok and result.entries == 4 * count + 1, result.problem
    finally:
        for p in writers:
            p.kill()
        log.close()


# -- tampering with the stored log alone ---------------------------------------------------
def rechain(rows: list[AuditRow], start: int) -> list[AuditRow]:
    """Recompute the hashes from entry ``start`` on, as anyone who reads the code can
    (SHA-256: without the audit key, an attacker cannot make HMACs)."""
    out, prev = [], GENESIS
    for seq, at, actor, action, purpose, case_ref, details, prev_hash, digest in rows:
        if seq >= start:
            prev_hash = prev
            digest = entry_hash(seq, at, actor, action, purpose, case_ref, details, prev)
        out.append((seq, at, actor, action, purpose, case_ref, details, prev_hash, digest))
        prev = digest
    return out


def forged(rows: list[AuditRow], n: int = 1) -> list[AuditRow]:
    """``n`` entries chained with SHA-256 onto the last one."""
    out = list(rows)
    for _ in range(n):
        seq, prev = int(out[-1][0]) + 1, str(out[-1][8])
        head = (seq, "2026-06-01T00:00:00+00:00", "key:0", "search", None, None)
        details = json.dumps({"results": 0})
        out.append((*head, details, prev, entry_hash(*head, details, prev)))
    return out


def edited(rows: list[AuditRow]) -> list[AuditRow]:
    return [(*r[:2], "someone else", *r[3:]) if r[0] == 3 else r for r in rows]


def reordered(rows: list[AuditRow]) -> list[AuditRow]:
    two, three = rows[1], rows[2]
    return [rows[0], (2, *three[1:]), (3, *two[1:]), *rows[3:]]


Change = Callable[[list[AuditRow]], list[AuditRow]]
# name: (the change, the entry verify names, given the last entry and whether keyed)
TAMPERINGS: dict[str, tuple[Change, Callable[[int, bool], int]]] = {
    "edit": (edited, lambda last, keyed: 3),
    "delete": (lambda rows: [r for r in rows if r[0] != 3], lambda last, keyed: 4),
    "reorder": (reordered, lambda last, keyed: 2),
    "truncate": (lambda rows: rows[:-2], lambda last, keyed: last - 1),
    "append forged": (forged, lambda last, keyed: last + 1),
    # Keyed, the first re-chained entry is a forgery; unkeyed, only the anchor shows it.
    "edit, re-chain, append": (
        lambda rows: forged(rechain(edited(rows), 3)),
        lambda last, keyed: 3 if keyed else last,
    ),
    "cut two, append three": (
        lambda rows: forged(rows[:-2], 3),
        lambda last, keyed: last - 1 if keyed else last,
    ),
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_every_change_to_the_stored_log_is_named(opened: Opened, tampering: str) -> None:
    change, where = TAMPERINGS[tampering]
    rows = opened.read()
    last = int(rows[-1][0])
    opened.write(change(rows))
    for log in (opened.log, reader := opened.reopen()):  # in this process and another
        result = log.verify()
        assert not result.ok and result.problem, tampering
        assert result.seq == where(last, opened.key is not None), result.problem
    reader.close()
