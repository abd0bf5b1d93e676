"""The accounts store's contract, run against every store in ``adapters.ACCOUNT_STORES``: API
keys (shown once, kept only as salted hashes, revocable), users (passwords kept only as
hashes) and web sessions (kept only as hashes, ending with their key or password)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from facesearch.accounts.roles import Principal, Role
from facesearch.errors import InvalidInput, NotFound

from .adapters import ACCOUNT_STORES, AccountStore, Clock, params

PASSWORD = "correct horse battery"


@pytest.fixture(params=params(ACCOUNT_STORES))
def adapter(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@dataclass
class Opened:
    adapter: str
    folder: Path
    clock: Clock
    store: AccountStore

    def stored(self) -> bytes:
        return ACCOUNT_STORES[self.adapter].stored(self.folder)

    def reopen(self) -> AccountStore:
        return ACCOUNT_STORES[self.adapter].open(self.folder, self.clock)


@pytest.fixture
def opened(adapter: str, tmp_path: Path) -> Iterator[Opened]:
    folder, clock = tmp_path / "accounts", Clock()
    store = ACCOUNT_STORES[adapter].open(folder, clock)
    yield Opened(adapter, folder, clock, store)
    store.close()


@pytest.fixture
def store(opened: Opened) -> AccountStore:
    return opened.store


# -- API keys -----------------------------------------------------------------------------
def test_a_key_is_shown_once_and_authenticates_as_its_role(opened: Opened) -> None:
    store = opened.store
    info, full = store.create_key("  nightly ingest ", "ingest")
    assert (info.name, info.role, info.active) == ("nightly ingest", Role.INGEST, True)
    assert full.startswith(f"fsk_{info.key_id}_")
    assert store.check_key(full) == Principal("key", info.key_id, "nightly ingest", Role.INGEST)
    assert store.list_keys() == [info]
    other = opened.reopen()  # another process checks it too
    try:
        assert other.check_key(full) == store.check_key(full)
    finally:
        other.close()


def test_a_key_is_stored_only_as_a_salted_hash(opened: Opened) -> None:
    _, full = opened.store.create_key("ci", "search")
    secret = full.split("_", 2)[2]
    stored = opened.stored()
    assert full.encode() not in stored and secret.encode() not in stored
    assert hashlib.sha256(secret.encode()).hexdigest().encode() not in stored  # salted
    _, same_name = opened.store.create_key("ci", "search")
    assert same_name != full


@pytest.mark.parametrize(
    "mangle",
    [
        lambda full: full[:-1] + ("A" if full[-1] != "A" else "B"),  # wrong secret
        lambda full: "fsk_000000000000_" + full.split("_", 2)[2],  # unknown key id
        lambda full: full.replace("fsk_", "xyz_"),
        lambda full: "",
        lambda full: "fsk__",
    ],
    ids=["wrong secret", "unknown id", "bad prefix", "empty", "no parts"],
)
def test_a_wrong_or_malformed_key_is_refused(
    store: AccountStore, mangle: Callable[[str], str]
) -> None:
    _, full = store.create_key("ci", "admin")
    assert store.check_key(mangle(full)) is None


def test_a_revoked_key_no_longer_authenticates(store: AccountStore) -> None:
    info, full = store.create_key("old laptop", "admin")
    kept_info, kept = store.create_key("server", "search")
    kept_id = kept_info.key_id
    revoked = store.revoke_key(info.key_id)
    assert not revoked.active and revoked.revoked_at
    assert store.check_key(full) is None and store.check_key(kept) is not None
    # Listed oldest first; two keys made in the same second come in either order.
    assert {k.key_id: k.active for k in store.list_keys()} == {
        info.key_id: False,
        kept_id: True,
    }
    assert store.revoke_key(info.key_id).revoked_at == revoked.revoked_at
    with pytest.raises(NotFound):
        store.revoke_key("nosuchkey")


def test_a_key_needs_a_name_and_a_known_role(store: AccountStore) -> None:
    with pytest.raises(InvalidInput):
        store.create_key("  ", "admin")
    with pytest.raises(InvalidInput):
        store.create_key("ci", "superuser")
    assert store.list_keys() == []


# -- users --------------------------------------------------------------------------------
def test_a_user_signs_in_with_the_password_only(opened: Opened) -> None:
    store = opened.store
    store.add_user("alice", PASSWORD, "auditor")
    assert store.check_password("alice", PASSWORD) == Principal(
        "user", "alice", "alice", Role.AUDITOR
    )
    assert store.check_password("alice", PASSWORD + "!") is None
    assert store.check_password("bob", PASSWORD) is None
    assert PASSWORD.encode() not in opened.stored()


def test_a_new_password_replaces_the_old_one(store: AccountStore) -> None:
    store.add_user("alice", PASSWORD, "search")
    store.add_user("alice", "another long one", "admin")
    assert store.check_password("alice", PASSWORD) is None
    principal = store.check_password("alice", "another long one")
    assert principal is not None and principal.role is Role.ADMIN


def test_a_user_needs_a_name_a_long_password_and_a_known_role(store: AccountStore) -> None:
    for name, password, role in [
        (" ", PASSWORD, "admin"),
        ("bob", "short", "admin"),
        ("bob", PASSWORD, "root"),
    ]:
        with pytest.raises(InvalidInput):
            store.add_user(name, password, role)
    assert store.check_password("bob", PASSWORD) is None


# -- web sessions -------------------------------------------------------------------------
def test_a_session_lives_until_it_expires_or_is_closed(opened: Opened) -> None:
    store, clock = opened.store, opened.clock
    store.add_user("alice", PASSWORD, "search")
    alice = store.check_password("alice", PASSWORD)
    assert alice is not None
    token, csrf = store.open_session(alice, hours=2)
    session = store.session(token)
    assert session is not None and (session.principal, session.csrf) == (alice, csrf)
    assert token.encode() not in opened.stored()
    assert store.session(token + "x") is None
    clock.now += 2 * 3600 + 1
    assert store.session(token) is None
    second, _ = store.open_session(alice, hours=1)
    assert store.session(second) is not None
    store.close_session(second)
    assert store.session(second) is None


def test_sessions_end_with_their_key_or_password(store: AccountStore) -> None:
    info, full = store.create_key("browser", "search")
    key = store.check_key(full)
    store.add_user("alice", PASSWORD, "search")
    alice = store.check_password("alice", PASSWORD)
    assert key is not None and alice is not None
    by_key, _ = store.open_session(key, hours=1)
    by_user, _ = store.open_session(alice, hours=1)
    store.revoke_key(info.key_id)
    assert store.session(by_key) is None and store.session(by_user) is not None
    store.add_user("alice", "a changed password", "search")
    assert store.session(by_user) is None
