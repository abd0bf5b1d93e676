"""Parts from URLs: catalog.url and index.url pick where (and with what) a home's catalog
and index are kept; unset, they follow home. No models are loaded here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facesearch import FaceSearch, Settings
from facesearch.cli import main
from facesearch.errors import ConfigError
from facesearch.parts import catalog_url, index_url
from tests.conftest import register
from tests.synthetic import clustered


def fill(settings: Settings, faces: int = 50) -> None:
    with FaceSearch(settings) as fs:
        register(fs, "archive")
        fs.catalog.bulk_add_embeddings("archive", clustered(faces, 1))  # type: ignore[attr-defined]
        fs.sync_index()


def test_unset_urls_follow_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, workers=1)
    assert catalog_url(settings) == f"sqlite://{home}/catalog.sqlite"
    assert index_url(settings) == f"local://{home}/index"
    fill(settings)
    assert (home / "catalog.sqlite").is_file()
    assert (home / "index" / "flat").is_dir() and (home / "index.lock").is_file()


def test_catalog_and_index_are_kept_where_their_urls_say(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "disks"
    settings = Settings(
        home=home,
        workers=1,
        catalog={"url": f"sqlite://{elsewhere}/a/faces.db"},
        index={"url": f"local://{elsewhere}/b/vectors"},
    )
    fill(settings)
    assert (elsewhere / "a" / "faces.db").is_file()
    assert (elsewhere / "b" / "vectors" / "flat").is_dir()
    assert (elsewhere / "b" / "vectors.lock").is_file()  # the lock sits beside its folder
    assert not (home / "catalog.sqlite").exists() and not (home / "index").exists()
    with FaceSearch(settings) as again:  # reopened from the same URLs: all there
        assert again.stats()["faces"] == 50
        assert again.stats()["index"] == {"kind": "exact", "faces": 50, "consistent": True}
    with FaceSearch(Settings(home=home, workers=1)) as plain:  # the home's own: empty
        assert plain.stats()["faces"] == 0


def test_a_relative_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(
        home=tmp_path / "home",
        workers=1,
        catalog={"url": "sqlite://data/catalog.sqlite"},
        index={"url": "local://data/index"},
    )
    fill(settings, faces=10)
    assert (tmp_path / "data" / "catalog.sqlite").is_file()
    assert (tmp_path / "data" / "index" / "flat").is_dir()


def test_the_environment_reaches_the_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    monkeypatch.setenv("FACESEARCH_CATALOG__URL", f"sqlite://{tmp_path}/env/catalog.sqlite")
    monkeypatch.setenv("FACESEARCH_INDEX__URL", f"local://{tmp_path}/env/index")
    settings = Settings(home=home, workers=1)
    assert settings.catalog.url == f"sqlite://{tmp_path}/env/catalog.sqlite"
    assert settings.index.url == f"local://{tmp_path}/env/index"
    fill(settings, faces=10)
    assert main(["stats", "--home", str(home), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"] == 10
    assert (tmp_path / "env" / "catalog.sqlite").is_file()
    assert not (home / "catalog.sqlite").exists()


@pytest.mark.parametrize(
    ("group", "url", "known"),
    [
        ("catalog", "mysql://db.example/faces", "postgresql://, sqlite://"),
        ("index", "qdrant://vectors.example:6333", "local://, milvus://"),
        ("catalog", "/srv/faces/catalog.sqlite", "postgresql://, sqlite://"),
    ],
)
def test_an_unknown_scheme_is_refused_naming_the_known_ones(
    tmp_path: Path, group: str, url: str, known: str
) -> None:
    home = tmp_path / "home"
    with pytest.raises(ConfigError, match=f"{group}.url.*known: {known}"):
        FaceSearch(Settings(home=home, workers=1, **{group: {"url": url}}))  # type: ignore[arg-type]
    assert not home.exists(), "refused before any file is made"


def test_the_cli_refuses_an_unknown_scheme_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    fill(Settings(home=home, workers=1), faces=5)
    monkeypatch.setenv("FACESEARCH_INDEX__URL", "qdrant://vectors.example:6333")
    assert main(["stats", "--home", str(home)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "unknown scheme qdrant://" in err and "local://, milvus://" in err


def test_an_unknown_executor_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="known: local"):
        FaceSearch(Settings(home=tmp_path / "home", workers=1, executor="spark"))


def test_every_catalog_scheme_has_its_audit_suppression_account_stores_and_locks() -> None:
    """A catalog backend added without them would be refused only when a home is opened."""
    from facesearch.parts import CATALOGS, STORES

    assert set(STORES) == set(CATALOGS)


def test_a_sqlite_home_keeps_its_stores_in_files_and_a_missing_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        register(fs, "news")
    assert {p.name for p in home.glob("*.sqlite")} == {
        "catalog.sqlite",
        "audit.sqlite",
        "suppression.sqlite",
    }
    assert main(["keys", "list", "--home", str(tmp_path / "typo")]) != 0
    assert "there is no facesearch home" in capsys.readouterr().err
