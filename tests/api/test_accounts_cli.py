"""``facesearch keys`` and ``facesearch users``: keys shown once, revocable; clear errors."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from facesearch import FaceSearch, Settings
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(tmp_path / "home")
    code, out, _ = run(
        capsys, "keys", "create", "--name", "desk 3", "--role", "search", "--home", home, "--json"
    )
    assert code == 0
    made = json.loads(out)
    assert made["key"].startswith(f"fsk_{made['key_id']}_")
    store = SqliteAccountStore(tmp_path / "home" / "accounts.sqlite")
    assert store.check_key(made["key"]) is not None

    code, out, _ = run(capsys, "keys", "list", "--home", home)
    assert code == 0 and made["key_id"] in out and "active" in out
    assert made["key"] not in out  # never shown again

    code, out, _ = run(capsys, "keys", "revoke", made["key_id"], "--home", home)
    assert code == 0 and f"Revoked key {made['key_id']}" in out
    assert store.check_key(made["key"]) is None
    code, out, _ = run(capsys, "keys", "list", "--home", home)
    assert "revoked" in out
    store.close()
    with FaceSearch(Settings(home=tmp_path / "home", workers=1)) as engine:
        actions = [e.action for e in engine.audit.entries() if e.details.get("key_id")]
    assert actions == ["key.create", "key.revoke"]


def test_key_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(tmp_path / "home")
    code, _, err = run(capsys, "keys", "create", "--name", "x", "--role", "root", "--home", home)
    assert code == 2 and err.strip().count("\n") == 0 and "unknown role 'root'" in err
    code, _, err = run(capsys, "keys", "revoke", "nope", "--home", home)
    assert code == 2 and "no API key with id nope" in err  # an id that does not exist


def test_users_add_reads_the_password_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = str(tmp_path / "home")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long passphrase\n"))
    code, out, _ = run(
        capsys, "users", "add", "ada", "--role", "auditor", "--password-stdin", "--home", home
    )
    assert code == 0 and "User ada (auditor) saved" in out
    store = SqliteAccountStore(tmp_path / "home" / "accounts.sqlite")
    who = store.check_password("ada", "a long passphrase")
    assert who is not None and who.role.value == "auditor"
    assert store.check_password("ada", "a long passphrasE") is None
    store.close()
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    code, _, err = run(
        capsys, "users", "add", "bob", "--role", "search", "--password-stdin", "--home", home
    )
    assert code == 2 and "at least 10 characters" in err


def test_users_add_is_written_to_the_audit_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = str(tmp_path / "home")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long passphrase\n"))
    code, _, _ = run(
        capsys, "users", "add", "ada", "--role", "auditor", "--password-stdin", "--home", home
    )
    assert code == 0
    with FaceSearch(Settings(home=tmp_path / "home", workers=1)) as engine:
        [entry] = engine.audit.entries(action="user.add")
        assert entry.details == {"username": "ada", "role": "auditor"}
        assert entry.actor.startswith("local:")
        assert "a long passphrase" not in json.dumps(entry.as_dict())
