"""``facesearch db upgrade``: a catalog at an older schema version is upgraded, keeping
what it holds; one made by a newer release is refused in one line, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from facesearch.catalog import sqlite as sqlite_catalog
from facesearch.catalog.postgres import schema
from facesearch.cli.main import main

from ..conftest import REGISTER_ARGS


def one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facesearch: error:"), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


def sqlite_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    assert main(["sources", "add", "news", *REGISTER_ARGS, "--home", str(home)]) == 0
    return home


def sqlite_sql(home: Path, *statements: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(home / "catalog.sqlite", isolation_level=None)) as db:
        out: list[tuple[object, ...]] = []
        for sql in statements:
            out = db.execute(sql).fetchall()
        return out


# What versions 2 and later added to a SQLite catalog: taken out, a home is as version 1
# left it.
SINCE_VERSION_1 = (
    "DROP INDEX faces_image_idx",
    "ALTER TABLE images DROP COLUMN phash",
    "ALTER TABLE sources DROP COLUMN group_people",
    "ALTER TABLE provenance DROP COLUMN video",
    "ALTER TABLE provenance DROP COLUMN video_time",
)
LATEST = sqlite_catalog.SCHEMA_VERSION


def test_both_catalogs_count_schema_versions_alike() -> None:
    # One release's catalogs are at the same version on SQLite and on PostgreSQL.
    assert sqlite_catalog.SCHEMA_VERSION == schema.SCHEMA_VERSION


def test_a_sqlite_catalog_at_version_1_is_upgraded_keeping_its_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = sqlite_home(tmp_path)
    # As a home made before version 2: no unique face index, version 1.
    sqlite_sql(home, *SINCE_VERSION_1, "UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    capsys.readouterr()
    assert main(["db", "upgrade", "--home", str(home)]) == 0
    assert f"from schema version 1 to {LATEST}" in capsys.readouterr().out
    indexes = sqlite_sql(home, "SELECT name FROM sqlite_master WHERE type = 'index'")
    assert ("faces_image_idx",) in indexes
    columns = sqlite_sql(home, "SELECT name FROM pragma_table_info('provenance')")
    assert ("video",) in columns and ("video_time",) in columns
    assert main(["db", "upgrade", "--home", str(home)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["sources", "list", "--home", str(home), "--json"]) == 0
    assert '"news"' in capsys.readouterr().out


def test_a_sqlite_catalog_opened_by_an_older_release_upgrades_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = sqlite_home(tmp_path)
    sqlite_sql(home, *SINCE_VERSION_1, "DELETE FROM meta WHERE key = 'schema_version'")
    assert main(["sources", "list", "--home", str(home)]) == 0
    assert sqlite_sql(home, "SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(LATEST),)
    ]


def test_a_sqlite_catalog_from_a_newer_release_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = sqlite_home(tmp_path)
    sqlite_sql(home, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    capsys.readouterr()
    assert main(["sources", "list", "--home", str(home)]) == 1
    one_line_error(capsys, "schema version 99", "newer facesearch")
    assert main(["db", "upgrade", "--home", str(home)]) == 1
    one_line_error(capsys, "newer facesearch")
    assert sqlite_sql(home, "SELECT value FROM meta WHERE key = 'schema_version'") == [("99",)]


@pytest.mark.postgres
def test_a_postgres_catalog_at_version_1_is_refused_until_db_upgrade(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(postgres_url) as db:  # a database made by the release before
        db.execute(schema.MIGRATIONS[0].encode())
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        db.execute(
            """INSERT INTO sources (name, lawful_basis, special_category_condition,
               retention_days, created_at, updated_at)
               VALUES ('news', 'legitimate_interests', 'legal_claims', 30, 'x', 'x')"""
        )
    home = tmp_path / "home"
    home.mkdir()
    common = ["--home", str(home), "--catalog", postgres_url]
    assert main(["sources", "list", *common]) == 1
    one_line_error(capsys, "schema version 1", "facesearch db upgrade")
    assert main(["db", "upgrade", *common]) == 0
    assert f"from schema version 1 to {LATEST}" in capsys.readouterr().out
    assert main(["sources", "list", *common, "--json"]) == 0
    listed = capsys.readouterr().out
    assert '"news"' in listed and '"group_people": false' in listed
    with psycopg.connect(postgres_url) as db:
        found = db.execute("SELECT 1 FROM pg_constraint WHERE conname = 'faces_image_idx'")
        assert found.fetchall() == [(1,)]
        tables = db.execute(
            "SELECT to_regclass('persons'), to_regclass('person_faces'), to_regclass('restaged')"
        ).fetchone()
        assert tables is not None and None not in tables
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    assert main(["db", "upgrade", *common]) == 1
    one_line_error(capsys, "schema version 99", "newer facesearch")
    assert main(["sources", "list", *common]) == 1
    one_line_error(capsys, "newer facesearch")
