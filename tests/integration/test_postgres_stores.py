"""The audit log, the suppression list, the accounts and the retention lock of homes that
share one PostgreSQL catalog (as API servers on several machines do): one audit chain,
one suppression list, one set of keys, and one retention run at a time."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from facesearch import FaceSearch, Settings
from facesearch.errors import BackendUnavailable
from facesearch.parts import build_accounts

from ..conftest import register

EXAMPLES = Path("face_recognition") / "examples"


def settings(home: Path, url: str | None) -> Settings:
    if url is None:
        return Settings(home=home, workers=1)
    return Settings(home=home, workers=1, catalog={"url": url})  # type: ignore[arg-type]


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.postgres
def test_homes_on_one_postgres_catalog_share_audit_suppressions_and_keys(
    postgres_url: str, dev: Path, tmp_path: Path
) -> None:
    one, two = settings(tmp_path / "one", postgres_url), settings(tmp_path / "two", postgres_url)
    with FaceSearch(one) as fs:
        register(fs, "news")
        fs.suppress(dev / EXAMPLES / "obama2.jpg", consent_ref="consent-17")
        accounts = build_accounts(one)
        try:
            _, key = fs.create_key(accounts, "partner", "search")
        finally:
            accounts.close()
    with FaceSearch(two) as other:
        # The person who objected on one server is skipped by the other's ingest.
        report = other.ingest([dev / EXAMPLES / "obama.jpg"], source="news")
        assert (report.faces_suppressed, report.faces_indexed) == (1, 0)
        accounts = build_accounts(two)
        try:
            found = accounts.check_key(key)
            assert found is not None and found.name == "partner"
        finally:
            accounts.close()
        entries = list(other.audit.entries())
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        actions = {e.action for e in entries}
        assert {"source.add", "suppression.add", "key.create", "ingest"} <= actions, actions
        assert other.verify_audit().ok
    # Nothing of it in files of the homes: all in the database.
    for home in (tmp_path / "one", tmp_path / "two"):
        assert not list(home.glob("*.sqlite")), list(home.glob("*"))
    assert count(postgres_url, "suppressions") == 1 and count(postgres_url, "api_keys") == 1


def update_sources(url: str, home: str, who: str, times: int, start: Any) -> None:
    """In another process (another server's): change a source's policy ``times`` times."""
    with FaceSearch(settings(Path(home), url)) as fs:
        start.wait(60)
        for i in range(times):
            fs.update_source("news", description=f"{who} {i}")


@pytest.mark.postgres
def test_engines_in_several_processes_keep_one_audit_chain(
    postgres_url: str, tmp_path: Path
) -> None:
    times = 10
    with FaceSearch(settings(tmp_path / "main", postgres_url)) as fs:
        register(fs, "news")
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(4)
        others = [
            context.Process(
                target=update_sources,
                args=(postgres_url, str(tmp_path / f"h{w}"), f"p{w}", times, start),
            )
            for w in range(3)
        ]
        for p in others:
            p.start()
        try:
            start.wait(120)
            for i in range(times):
                fs.update_source("news", description=f"main {i}")
            for p in others:
                p.join(120)
            assert [p.exitcode for p in others] == [0, 0, 0]
        finally:
            for p in others:
                p.kill()
        entries = list(fs.audit.entries())
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert sum(e.action == "source.update" for e in entries) == 4 * times
        assert fs.verify_audit().ok


def hold_retention(url: str | None, home: str, held: Any, release: Any) -> None:
    """In another process: hold the lock a retention run holds, until told."""
    with FaceSearch(settings(Path(home), url)) as fs, fs.parts.locks.exclusive("retention", None):
        held.set()
        release.wait(60)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_retention_runs_in_one_process_at_a_time(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    # With SQLite the processes share the home (its catalog file); with PostgreSQL, the
    # database (each server its own home, as on several machines).
    other_home = tmp_path / ("other" if url else "home")
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    with FaceSearch(settings(tmp_path / "home", url)) as fs:
        process = context.Process(target=hold_retention, args=(url, str(other_home), held, release))
        process.start()
        try:
            assert held.wait(60)
            fs.lock_wait = 0.3
            with pytest.raises(BackendUnavailable, match="another process is running retention"):
                fs.run_retention()
            assert not [e for e in fs.audit.entries() if e.action == "retention"]
            release.set()
            fs.lock_wait = 30
            receipt = fs.run_retention()
            assert receipt.images_removed == 0
            assert [e.action for e in fs.audit.entries()].count("retention") == 1
        finally:
            release.set()
            process.join(60)
    assert process.exitcode == 0


class MemoryAnchor:
    def __init__(self) -> None:
        self.value: str | None = None

    def get(self) -> str | None:
        return self.value

    def set(self, value: str) -> None:
        self.value = value

    def replace(self, old: str, new: str) -> None:
        if self.value == old:
            self.value = new


@pytest.mark.postgres
def test_an_append_only_database_role_writes_the_audit_log_and_cannot_rewrite_it(
    postgres_url: str,
) -> None:
    """docs/scaling.md: the audit table made by its owner, facesearch's role granted only
    SELECT and INSERT on it."""
    from facesearch.governance.audit import AuditEvent, AuditLog
    from facesearch.parts import STORES

    stores = STORES["postgresql"]
    stores.audit(postgres_url, Path()).close()  # the owner makes the table
    role = "appender_" + postgres_url.rsplit("/", 1)[1][-8:]
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"CREATE ROLE {role} LOGIN")
        db.execute(f"GRANT SELECT, INSERT ON audit TO {role}")
    app_url = f"postgresql://{role}@{postgres_url.split('@', 1)[1]}"
    log = AuditLog(stores.audit(app_url, Path()), MemoryAnchor())
    try:
        for i in range(3):
            log.append(AuditEvent(action="search", actor="key:1", details={"i": i}))
        assert log.verify().ok and [e.seq for e in log.entries()] == [1, 2, 3]
    finally:
        log.close()
    with psycopg.connect(app_url, autocommit=True) as db:
        for sql in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit", "TRUNCATE audit"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(sql)
    assert count(postgres_url, "audit") == 3


@pytest.mark.postgres
def test_a_key_made_and_revoked_from_the_command_line_of_other_homes_holds_for_every_server(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from fastapi.testclient import TestClient

    from facesearch.app import create_app
    from facesearch.cli.main import main

    def cli(home: str, *args: str) -> Any:
        assert (
            main([*args, "--json", "--home", str(tmp_path / home), "--catalog", postgres_url]) == 0
        )
        return json.loads(capsys.readouterr().out)

    made = cli("admin-desk", "keys", "create", "--name", "partner", "--role", "search")
    with (
        FaceSearch(settings(tmp_path / "server", postgres_url)) as fs,
        TestClient(create_app(fs), base_url="https://testserver") as client,
    ):
        bearer = {"Authorization": f"Bearer {made['key']}"}
        me = client.get("/v1/me", headers=bearer)
        assert me.status_code == 200 and me.json()["name"] == "partner", me.text
        assert [k["key_id"] for k in cli("laptop", "keys", "list")] == [made["key_id"]]
        cli("laptop", "keys", "revoke", made["key_id"])
        assert client.get("/v1/me", headers=bearer).status_code == 401  # at once
        actions = [e.action for e in fs.audit.entries()]
        assert actions.count("key.create") == 1 and actions.count("key.revoke") == 1


@pytest.mark.postgres
def test_the_stores_answer_a_server_that_went_away_with_a_clear_error_then_work_again(
    tmp_path: Path,
) -> None:
    """Stopped: BackendUnavailable naming PostgreSQL (the CLI's one line, the API's 503).
    Back on the same port: the very next call works, also after a restart the stores did
    not see (no stale connection kept)."""
    import numpy as np
    from scripts.engines import postgres as engine

    from facesearch.governance.audit import AuditEvent, AuditLog
    from facesearch.parts import STORES
    from facesearch.security.templates import TemplateCodec

    from ..engines import postgres as pg

    server = pg.cluster(tmp_path / "pg")
    url, stores = server.url(), STORES["postgresql"]
    log = AuditLog(stores.audit(url, Path()), MemoryAnchor())
    suppressions = stores.suppressions(url, Path(), TemplateCodec())
    accounts = stores.accounts(url, Path())
    template = np.full(128, 128**-0.5, dtype=np.float32)
    try:
        log.append(AuditEvent(action="search", actor="key:1", details={}))
        suppressions.add(template, "dlib-resnet-v1:128", "consent-17", "")
        _, key = accounts.create_key("partner", "search")
        calls = {
            "audit": lambda: log.append(AuditEvent(action="search", actor="key:1", details={})),
            "suppressions": lambda: suppressions.templates("dlib-resnet-v1:128"),
            "accounts": lambda: accounts.check_key(key),
        }
        engine.stop(server.folder)  # restarted while the stores sat idle
        engine.start(server.folder)
        for call in calls.values():
            call()
        engine.stop(server.folder)
        for name, call in calls.items():
            with pytest.raises(BackendUnavailable, match="PostgreSQL") as failed:
                call()
            assert "\n" not in str(failed.value), name
        engine.start(server.folder)
        for call in calls.values():
            call()
        assert accounts.check_key(key) is not None
        assert len(suppressions.templates("dlib-resnet-v1:128")[0]) == 1
        assert [e.seq for e in log.entries()] == [1, 2, 3] and log.verify().ok
    finally:
        log.close()
        suppressions.close()
        accounts.close()
