"""The engine writes the audit entry of every change it makes and of every read of the log:
removing a suppression, creating and revoking API keys, adding users, reading the log. A
caller (the CLI, the API, the web UI, a Python script) cannot make the change without its
entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facesearch import FaceSearch, NotFound, Settings
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.domain import Requester

PROBE = "face_recognition/examples/obama2.jpg"
CLERK = Requester(actor="api:clerk", purpose="objection handling", case_ref="OBJ-7")


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[FaceSearch]:
    with FaceSearch(Settings(home=tmp_path / "home", workers=1)) as engine:
        yield engine


def test_removing_a_suppression_through_the_engine_writes_its_entry(
    fs: FaceSearch, dev: Path
) -> None:
    sid = fs.suppress(dev / PROBE, consent_ref="objection-2026-007")
    fs.remove_suppression(sid, who=CLERK)
    assert fs.suppressions.list() == []
    [entry] = fs.audit.entries(action="suppression.remove")
    assert (entry.actor, entry.purpose, entry.case_ref) == (
        "api:clerk",
        "objection handling",
        "OBJ-7",
    )
    assert entry.details == {"suppression_id": sid}
    # Nothing removed, nothing recorded.
    with pytest.raises(NotFound, match=f"no suppression with id {sid}"):
        fs.remove_suppression(sid, who=CLERK)
    assert len(list(fs.audit.entries(action="suppression.remove"))) == 1
    assert fs.verify_audit().ok


def test_key_and_user_changes_through_the_engine_write_their_entries(fs: FaceSearch) -> None:
    store = SqliteAccountStore(fs.home / "accounts.sqlite")
    try:
        info, full = fs.create_key(store, "nightly ingest", "ingest", who=CLERK)
        assert store.check_key(full) is not None
        revoked = fs.revoke_key(store, info.key_id, who=CLERK)
        assert revoked.revoked_at is not None and store.check_key(full) is None
        with pytest.raises(NotFound):
            fs.revoke_key(store, "nosuchkey", who=CLERK)
        fs.add_user(store, " ada ", "a long passphrase", "auditor", who=CLERK)
        assert store.check_password("ada", "a long passphrase") is not None
    finally:
        store.close()
    [user] = fs.audit.entries(action="user.add")
    assert (user.actor, user.details) == ("api:clerk", {"username": "ada", "role": "auditor"})
    assert "a long passphrase" not in str(user.as_dict())
    entries = [e for e in fs.audit.entries() if e.action.startswith("key.")]
    assert [(e.action, e.actor) for e in entries] == [
        ("key.create", "api:clerk"),
        ("key.revoke", "api:clerk"),
    ]
    assert entries[0].details == {"key_id": info.key_id, "name": "nightly ingest", "role": "ingest"}
    assert all(full not in str(e.as_dict()) for e in fs.audit.entries())  # never the key


def test_reading_the_audit_log_through_the_engine_is_itself_recorded(fs: FaceSearch) -> None:
    auditor = Requester(actor="user:auditor")
    fs.export_audit(who=auditor)  # one entry to read
    page = fs.read_audit(auditor, action="audit.export", limit=10)
    assert [e.action for e in page] == ["audit.export"]
    last = fs.read_audit(auditor, last=1)
    assert [e.action for e in last] == ["audit.read"]  # the first read, recorded
    reads = list(fs.audit.entries(action="audit.read"))
    assert [(r.actor, r.details) for r in reads] == [
        ("user:auditor", {"case": None, "action_filter": "audit.export", "entries": 1}),
        ("user:auditor", {"case": None, "action_filter": None, "entries": 1}),
    ]
