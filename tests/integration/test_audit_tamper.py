"""Tampering with the audit log, by an attacker with write access to the audit file alone,
to the audit file and the catalog, keyed or not: what ``audit verify`` shows, and what it
cannot (docs/privacy.md, "Who can hide what in the audit log")."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from facesearch import ConfigError, FaceSearch, Settings
from facesearch.domain import SearchMade
from facesearch.governance.audit import KEY_ACTION, AuditEvent, entry_hash

KEY = base64.b64encode(b"k" * 32).decode()
OTHER_KEY = base64.b64encode(b"o" * 32).decode()


def open_engine(home: Path, key: str | None) -> FaceSearch:
    return FaceSearch(Settings(home=home, workers=1, **({"audit_key": key} if key else {})))


def write_events(fs: FaceSearch, n: int = 6) -> None:
    for i in range(n):
        searched = SearchMade(
            f"{i:064x}", sources=[], top_k=10, threshold=0.5, results=i, likely_matches=0
        )
        fs.record(searched, None)


@pytest.fixture(params=[None, KEY], ids=["unkeyed", "keyed"])
def fs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FaceSearch]:
    with open_engine(tmp_path / "home", request.param) as engine:
        write_events(engine)
        assert engine.verify_audit().ok
        yield engine


# -- what an attacker does to the files ---------------------------------------------------
def audit_db(fs: FaceSearch) -> sqlite3.Connection:
    return sqlite3.connect(fs.home / "audit.sqlite", isolation_level=None)


def rows(db: sqlite3.Connection) -> list[tuple[object, ...]]:
    return list(db.execute("SELECT * FROM audit ORDER BY seq"))


def rechain(db: sqlite3.Connection, start: int = 1) -> tuple[int, str]:
    """Recompute every hash from ``start`` on, as anyone who reads the code can (SHA-256)."""
    prev = "0" * 64
    for seq, at, actor, action, purpose, case_ref, details, _, _ in rows(db):
        if seq >= start:
            digest = entry_hash(seq, at, actor, action, purpose, case_ref, details, prev)
            db.execute(
                "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq)
            )
        else:
            digest = db.execute("SELECT hash FROM audit WHERE seq = ?", (seq,)).fetchone()[0]
        prev = digest
    return int(seq), prev


def append_forged(db: sqlite3.Connection, n: int = 1) -> tuple[int, str]:
    """Append entries chained with SHA-256 onto the last one."""
    seq, _, actor, _, _, _, _, _, prev = rows(db)[-1]
    for _ in range(n):
        seq = int(seq) + 1  # type: ignore[call-overload]
        head = (seq, "2026-01-01T00:00:00+00:00", actor, "search", None, None)
        details = json.dumps({"results": 0})
        digest = entry_hash(*head, details, str(prev))  # type: ignore[arg-type]
        db.execute(
            "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*head, details, prev, digest)
        )
        prev = digest
    return seq, str(prev)


def renumber(db: sqlite3.Connection) -> None:
    """Close the gaps a deletion left: the entries numbered 1, 2, 3 ... again."""
    kept = rows(db)
    db.execute("DELETE FROM audit")
    for seq, row in enumerate(kept, start=1):
        db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (seq, *row[1:]))


def move_anchor(fs: FaceSearch, head: tuple[int, str]) -> None:
    """With the catalog too: make its record of the latest entry agree with the log."""
    with sqlite3.connect(fs.home / "catalog.sqlite") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (f"{head[0]}:{head[1]}",))


def edit(db: sqlite3.Connection) -> None:
    db.execute("UPDATE audit SET actor = 'someone else' WHERE seq = 3")


def delete(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit WHERE seq = 3")


def reorder(db: sqlite3.Connection) -> None:
    two, three = (r[1:] for r in db.execute("SELECT * FROM audit WHERE seq IN (2, 3) ORDER BY seq"))
    db.execute("DELETE FROM audit WHERE seq IN (2, 3)")
    db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (2, *three))
    db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (3, *two))


def truncate(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit WHERE seq > (SELECT MAX(seq) - 2 FROM audit)")


def append(db: sqlite3.Connection) -> None:
    append_forged(db)


def edit_rechain_append(db: sqlite3.Connection) -> None:
    edit(db)
    rechain(db, start=3)
    append_forged(db)


def cut_two_append_three(db: sqlite3.Connection) -> None:
    truncate(db)
    append_forged(db, 3)


TAMPERINGS: dict[str, Callable[[sqlite3.Connection], None]] = {
    "edit": edit,
    "delete": delete,
    "reorder": reorder,
    "truncate": truncate,
    "append forged": append,
    "edit, re-chain, append": edit_rechain_append,
    "cut two, append three": cut_two_append_three,
}


# -- write access to audit.sqlite alone: every change shows, keyed or not -----------------
@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_every_tampering_of_the_audit_file_alone_is_detected(
    fs: FaceSearch, tampering: str
) -> None:
    with audit_db(fs) as db:
        TAMPERINGS[tampering](db)
    result = fs.verify_audit()
    assert not result.ok, tampering
    assert result.problem and result.seq is not None and 1 <= result.seq <= 9


def test_appended_entries_are_named_as_forged(fs: FaceSearch) -> None:
    with audit_db(fs) as db:
        append_forged(db, 2)
    result = fs.verify_audit()
    assert not result.ok and result.seq == len(rows(audit_db(fs))) - 1
    assert "forged" in (result.problem or "")


def test_a_recomputed_chain_is_named_by_the_anchor(tmp_path: Path) -> None:
    with open_engine(tmp_path / "home", None) as fs:
        write_events(fs)
        with audit_db(fs) as db:
            edit(db)
            rechain(db, start=3)
        result = fs.verify_audit()
        last = len(rows(audit_db(fs)))
        assert not result.ok and result.seq == last
        assert f"entry {last} is not the entry written" in (result.problem or "")


# -- write access to audit.sqlite and catalog.sqlite --------------------------------------
def rewrite_with_catalog(fs: FaceSearch, tampering: str) -> None:
    """Tamper, re-chain what is left with SHA-256 and move the catalog's anchor to match."""
    with audit_db(fs) as db:
        TAMPERINGS[tampering](db)
        renumber(db)
        if tampering != "truncate":
            head = rechain(db)
        else:
            seq, digest = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC").fetchone()
            head = (int(seq), str(digest))
    move_anchor(fs, head)


@pytest.mark.parametrize("tampering", [t for t in TAMPERINGS if t != "truncate"])
def test_with_the_catalog_too_an_unkeyed_log_can_be_rewritten_and_verify_says_so(
    tmp_path: Path, tampering: str
) -> None:
    with open_engine(tmp_path / "home", None) as fs:
        write_events(fs)
        rewrite_with_catalog(fs, tampering)
        result = fs.verify_audit()
    # The limit of an unkeyed chain: it verifies, and verify warns that it cannot tell.
    assert result.ok and result.keyed_from is None
    assert "unkeyed" in (result.warning or "")


@pytest.mark.parametrize("tampering", [t for t in TAMPERINGS if t != "truncate"])
def test_with_the_catalog_too_a_keyed_log_cannot_be_rewritten(
    tmp_path: Path, tampering: str
) -> None:
    with open_engine(tmp_path / "home", KEY) as fs:
        write_events(fs)
        rewrite_with_catalog(fs, tampering)
        result = fs.verify_audit()
    assert not result.ok, tampering
    assert "edited or forged" in (result.problem or "") or "chain broken" in (result.problem or "")
    assert result.keyed_from == 1 and result.warning is None


def test_with_the_catalog_too_entries_cut_off_the_end_show_only_against_a_head_kept_elsewhere(
    tmp_path: Path,
) -> None:
    with open_engine(tmp_path / "home", KEY) as fs:
        write_events(fs)
        recorded_elsewhere = fs.audit.head()
        rewrite_with_catalog(fs, "truncate")
        assert fs.verify_audit().ok  # the catalog agrees with the shortened log
        head = fs.audit.head()
    assert recorded_elsewhere is not None and head is not None
    assert head[0] < recorded_elsewhere[0]  # ... but not with the head recorded elsewhere


def test_removing_the_keying_to_rewrite_the_log_shows_as_keying_started_later(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with open_engine(home, KEY) as fs:
        write_events(fs)
        assert fs.verify_audit().keyed_from == 1
        # The attacker drops the keyed entry, re-chains with SHA-256, and removes the
        # catalog's record of the key.
        with audit_db(fs) as db:
            db.execute("DELETE FROM audit WHERE seq = 1")
            renumber(db)
            edit(db)
            head = rechain(db)
        move_anchor(fs, head)
        with sqlite3.connect(home / "catalog.sqlite") as cat:
            cat.execute("DELETE FROM meta WHERE key = 'audit_key'")
    with open_engine(home, KEY) as fs:
        result = fs.verify_audit()
    # It verifies, but says that the key protects only what came after the rewrite.
    assert result.ok and result.keyed_from == head[0] + 1
    assert f"the audit key was set at entry {head[0] + 1}" in (result.warning or "")


def test_removing_only_the_catalogs_record_of_the_key_is_detected(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_engine(home, KEY) as fs:
        write_events(fs)
    with sqlite3.connect(home / "catalog.sqlite") as cat:
        cat.execute("DELETE FROM meta WHERE key = 'audit_key'")
    with open_engine(home, None) as fs:
        result = fs.verify_audit()
    assert not result.ok and result.seq == 1
    assert "the catalog records no audit key" in (result.problem or "")


def test_removing_the_anchor_is_detected(fs: FaceSearch) -> None:
    with sqlite3.connect(fs.home / "catalog.sqlite") as cat:
        cat.execute("DELETE FROM meta WHERE key = 'audit_head'")
    result = fs.verify_audit()
    assert not result.ok and "no latest entry" in (result.problem or "")


# -- keys: turning keying on, missing and wrong keys ----------------------------------------
def test_an_old_unkeyed_log_keeps_verifying_and_is_keyed_from_when_a_key_is_set(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with open_engine(home, None) as fs:
        write_events(fs, 3)
        assert fs.verify_audit().ok
    with open_engine(home, KEY) as fs:
        write_events(fs, 2)
        result = fs.verify_audit()
        [marker] = fs.audit.entries(action="audit.key")
    assert result.ok and result.entries == 6 and result.keyed_from == 4 == marker.seq
    assert marker.details["unkeyed_entries"] == 3
    # An unkeyed entry before the key is still covered: the keyed entries chain onto it.
    with open_engine(home, KEY) as fs:
        with audit_db(fs) as db:
            edit(db)
            rechain(db)
        problem = fs.verify_audit()
    assert not problem.ok and problem.seq == 4


def test_a_keyed_home_refuses_a_missing_or_wrong_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_engine(home, KEY) as fs:
        write_events(fs, 1)
    with pytest.raises(ConfigError, match="audit log is keyed: set FACESEARCH_AUDIT_KEY"):
        open_engine(home, None)
    with pytest.raises(ConfigError, match="not the key this home's audit log is keyed with"):
        open_engine(home, OTHER_KEY)
    with pytest.raises(ConfigError, match="32 bytes"):
        open_engine(home, base64.b64encode(b"short").decode())


def test_a_pending_append_is_not_taken_for_a_cut(tmp_path: Path) -> None:
    """A crash between the anchor's pending write and the entry's commit: still intact;
    and the pending state does not let an edit through."""
    home = tmp_path / "home"
    with open_engine(home, KEY) as fs:
        write_events(fs, 3)
        seq, _ = fs.audit.head() or (0, "")
        with sqlite3.connect(home / "catalog.sqlite") as cat:
            cat.execute(
                "UPDATE meta SET value = ? WHERE key = 'audit_head'",
                (f"{seq + 1}:{'f' * 64}:pending",),
            )
        assert fs.verify_audit().ok
        write_events(fs, 1)  # the next append carries on
        assert fs.verify_audit().ok
        with audit_db(fs) as db:
            truncate(db)
        assert not fs.verify_audit().ok


def cli(*args: str, home: Path, key: str | None) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "FACESEARCH_AUDIT_KEY"}
    if key:
        env["FACESEARCH_AUDIT_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "facesearch.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_audit_verify_warns_about_an_unkeyed_chain_and_names_a_forged_entry(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with open_engine(home, None) as fs:
        write_events(fs, 2)
    plain = cli("audit", "verify", home=home, key=None)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[0] == "Audit log intact: 2 entries"
    assert plain.stdout.splitlines()[1].startswith("Warning: the chain is unkeyed")
    keyed = cli("audit", "verify", "--json", home=home, key=KEY)
    assert json.loads(keyed.stdout)["keyed_from"] == 3
    with sqlite3.connect(home / "audit.sqlite") as db:
        append_forged(db)
    forged = cli("audit", "verify", home=home, key=KEY)
    assert forged.returncode == 4
    assert forged.stdout.startswith("AUDIT LOG TAMPERED: entry 4 was edited or forged")


def test_a_keying_the_catalog_lost_is_adopted_and_a_second_marker_of_the_same_key_accepted(
    tmp_path: Path,
) -> None:
    """A crash between the audit.key entry and the catalog's record of it, and two processes
    keying a home at once: one keyed chain either way."""
    home = tmp_path / "home"
    with open_engine(home, None) as fs:
        write_events(fs, 2)
    with open_engine(home, KEY) as fs:
        [marker] = fs.audit.entries(action=KEY_ACTION)
        fs.audit.append(AuditEvent(KEY_ACTION, "other process", details=dict(marker.details)))
    with sqlite3.connect(home / "catalog.sqlite") as cat:
        cat.execute("DELETE FROM meta WHERE key = 'audit_key'")
    with open_engine(home, KEY) as fs:
        result = fs.verify_audit()
        markers = len(list(fs.audit.entries(action=KEY_ACTION)))
    assert result.ok and result.keyed_from == 3 and markers == 2
