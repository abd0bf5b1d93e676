"""The command line's sharp edges (issue 8): what a user types, what they get back.

Search flags that reach the audit log and the deployment's rules, unknown sources, ingest
runs that find or store nothing, manifest URLs, closed pipes and missing terminals, exit
codes, ``--home`` typos, ``--version`` and ids.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facesearch import FaceSearch, Settings
from facesearch.app import create_app
from facesearch.cli import main

from ..conftest import REGISTER_ARGS, register

EXAMPLES = "face_recognition/examples"
PROBE = f"{EXAMPLES}/obama2.jpg"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """argparse's own refusal: exit 2 and its message."""
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    assert stopped.value.code == 2
    return capsys.readouterr().err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, dev: Path) -> Path:
    """Two photos (Obama, Biden) in the source ``fr``."""
    home = tmp_path_factory.mktemp("hardening") / "home"
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        register(fs, "fr")
        report = fs.ingest([dev / EXAMPLES / "obama.jpg", dev / EXAMPLES / "biden.jpg"], "fr")
        assert report.faces_indexed == 2
    return home


@pytest.fixture
def fresh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A new home with the source ``fr`` registered and nothing in it."""
    home = str(tmp_path / "fresh")
    assert run(capsys, "sources", "add", "fr", *REGISTER_ARGS, "--home", home)[0] == 0
    return home


# -- item 9: --purpose, --case-ref and --jurisdiction reach the engine -----------------------
def test_search_purpose_and_case_ref_are_in_the_audit_export(
    home: Path, dev: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys,
        "search",
        str(dev / PROBE),
        "--purpose",
        "fraud inquiry",
        "--case-ref",
        "C-9",
        "--home",
        str(home),
        "--json",
    )
    assert code == 0, err
    code, out, _ = run(capsys, "audit", "export", "--case", "C-9", "--home", str(home))
    assert code == 0
    [entry] = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert (entry["action"], entry["purpose"], entry["case_ref"]) == (
        "search",
        "fraud inquiry",
        "C-9",
    )


def test_require_purpose_refuses_a_bare_search_and_accepts_one_with_both(
    home: Path, dev: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACESEARCH_GOVERNANCE__REQUIRE_PURPOSE", "true")
    code, _, err = run(capsys, "search", str(dev / PROBE), "--home", str(home))
    assert code == 2 and "purpose and a case reference" in one_line(err)
    code, out, err = run(
        capsys,
        "search",
        str(dev / PROBE),
        "--purpose",
        "missing person",
        "--case-ref",
        "MP-1",
        "--home",
        str(home),
    )
    assert code == 0, err
    assert "obama.jpg" in out


def test_a_blocked_jurisdiction_is_enforced_from_the_cli(
    home: Path, dev: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACESEARCH_GOVERNANCE__BLOCKED_JURISDICTIONS", '["XX"]')
    code, out, err = run(
        capsys, "search", str(dev / PROBE), "--jurisdiction", "xx", "--home", str(home)
    )
    assert code == 1 and out == ""
    assert "searches from requesters in XX are blocked" in one_line(err)
    code, _, err = run(
        capsys, "search", str(dev / PROBE), "--jurisdiction", "GB", "--home", str(home)
    )
    assert code == 0, err
    err = usage_error(capsys, "search", str(dev / PROBE), "--jurisdiction", "X X")
    assert "'X X' is not an ISO 3166 code" in err


# -- item 12: an unknown --source is an error, on the CLI and the API ------------------------
def test_search_with_an_unknown_source_fails_on_the_cli(
    home: Path, dev: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "search", str(dev / PROBE), "--source", "fr", "--source", "fx", "--home", str(home)
    )
    assert code == 2 and out == ""
    assert "source 'fx' is not registered" in one_line(err)
    code, out, _ = run(capsys, "search", str(dev / PROBE), "--source", "fr", "--home", str(home))
    assert code == 0 and "obama.jpg" in out


def test_search_with_an_unknown_source_is_a_404_on_the_api(home: Path, dev: Path) -> None:
    settings = Settings(home=home, workers=1, api={"auth": False})
    form = {"purpose": "testing", "case_ref": "T-1"}
    with (
        FaceSearch(settings) as engine,
        TestClient(create_app(engine), base_url="https://testserver") as client,
    ):
        photo = (dev / PROBE).read_bytes()
        answer = client.post(
            "/v1/search",
            data={**form, "source": "fx"},
            files={"image": ("probe.jpg", photo, "image/jpeg")},
        )
        assert answer.status_code == 404
        error = answer.json()["error"]
        assert error["code"] == "not_found" and "source 'fx' is not registered" in error["message"]
        known = client.post(
            "/v1/search",
            data={**form, "source": "fr"},
            files={"image": ("probe.jpg", photo, "image/jpeg")},
        )
        assert known.status_code == 200 and known.json()["matches"]


# -- item 13: ingest follows symlinked folders, and says when it stored nothing --------------
def test_ingest_follows_a_symlinked_folder_once_despite_a_loop(
    tmp_path: Path, dev: Path, fresh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "elsewhere"
    photos.mkdir()
    (photos / "biden.jpg").write_bytes((dev / EXAMPLES / "biden.jpg").read_bytes())
    (photos / "back-up").symlink_to(tmp_path)  # a loop: elsewhere/back-up/elsewhere/...
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "linked").symlink_to(photos, target_is_directory=True)
    code, out, err = run(capsys, "ingest", str(folder), "--source", "fr", "--home", fresh)
    assert code == 0, err
    assert out.startswith("Ingested 1 file, 1 new image, ") and "1 face indexed" in out


def test_ingest_of_an_empty_folder_fails_and_says_why(
    tmp_path: Path, fresh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos here")
    code, out, err = run(capsys, "ingest", str(empty), "--source", "fr", "--home", fresh)
    assert code == 2 and out == ""
    assert "nothing to ingest" in one_line(err) and "no image files" in err


def test_ingest_fails_when_every_file_failed_but_not_when_one_worked(
    tmp_path: Path, dev: Path, fresh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"not a jpeg")
    (broken / "b.png").write_bytes(b"not a png either")
    code, out, err = run(capsys, "ingest", str(broken), "--source", "fr", "--home", fresh, "--json")
    assert code == 1
    assert json.loads(out)["failures"] == 2  # the report is still printed
    assert "none of the 2 files could be ingested" in one_line(err)
    (broken / "c.png").write_bytes((dev / "skimage" / "coffee.png").read_bytes())
    code, out, err = run(capsys, "ingest", str(broken), "--source", "fr", "--home", fresh)
    assert code == 0, err
    assert "1 new image" in out and "2 failed" in out


# -- item 14: no tracebacks when stdin or stdout is closed -----------------------------------
def test_users_add_without_a_terminal_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "facesearch.cli",
            "users",
            "add",
            "bob",
            "--role",
            "search",
            "--home",
            str(tmp_path / "h"),
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # no controlling terminal: getpass cannot open /dev/tty
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "--password-stdin" in one_line(done.stderr)


def test_a_closed_output_pipe_ends_quietly(home: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "facesearch.cli", "stats", "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # like `| head -0`: the reader is gone before anything is written
        err = proc.stderr.read()
        assert proc.wait(timeout=300) == 141
    assert err == ""


# -- item 15: manifest URLs are http(s), a bad row is a failure with its line ----------------
def test_manifest_rows_with_bad_urls_are_reported_by_line_and_skipped(
    tmp_path: Path, dev: Path, fresh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ex = dev / EXAMPLES
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,source_url,page_url\n"
        f"{ex / 'obama.jpg'},https://example.org/obama.jpg,http://example.org/story\n"
        f"{ex / 'biden.jpg'},javascript:alert(1),\n"
        f"{ex / 'obama2.jpg'},,ftp://x\n"
        f"{ex / 'two_people.jpg'},notaurl,\n"
        ",https://example.org/no-path.jpg,\n"
        f"{tmp_path / 'gone.jpg'},https://example.org/gone.jpg,\n"
    )
    code, out, err = run(
        capsys, "ingest", str(manifest), "--source", "fr", "--home", fresh, "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["images_added"] == 1 and report["files"] == 6
    assert sorted((f["path"], f["reason"]) for f in report["failed"]) == sorted(
        [
            (
                str(ex / "biden.jpg"),
                f"{manifest}:3: source_url must be an http(s) URL, not 'javascript:alert(1)'",
            ),
            (
                str(ex / "obama2.jpg"),
                f"{manifest}:4: page_url must be an http(s) URL, not 'ftp://x'",
            ),
            (
                str(ex / "two_people.jpg"),
                f"{manifest}:5: source_url must be an http(s) URL, not 'notaurl'",
            ),
            (f"{manifest}:6", "'path' is missing"),
            (str(tmp_path / "gone.jpg"), f"{manifest}:7: No such file or directory"),
        ]
    )
    code, out, _ = run(capsys, "show", "1", "--home", fresh, "--json")
    [copy] = json.loads(out)["provenance"]
    assert (copy["source_url"], copy["page_url"]) == (
        "https://example.org/obama.jpg",
        "http://example.org/story",
    )
    code, out, _ = run(capsys, "show", "2", "--home", fresh)
    assert code == 2  # the bad rows stored nothing


def test_a_bad_json_line_is_skipped_and_a_non_utf8_manifest_is_one_line(
    tmp_path: Path, dev: Path, fresh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(
        json.dumps({"path": str(dev / "skimage" / "coffee.png")}) + "\n{not json\n[1, 2]\n"
    )
    code, out, err = run(capsys, "ingest", str(jsonl), "--source", "fr", "--home", fresh)
    assert code == 0, err
    assert "1 new image" in out
    assert f"failed: {jsonl}:2: not valid JSON" in out
    assert f"failed: {jsonl}:3: each line must be a JSON object" in out
    latin = tmp_path / "latin.csv"
    latin.write_bytes("path\ncaf\xe9.jpg\n".encode("latin-1"))
    code, _, err = run(capsys, "ingest", str(latin), "--source", "fr", "--home", fresh)
    assert code == 2 and "a manifest must be UTF-8 text" in one_line(err)


# -- item 16: exit codes, --home, --version, group options, plain-digit ids ------------------
def test_exit_codes_follow_the_docs(
    home: Path, dev: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "show", "9999", "--home", str(home))
    assert code == 2 and one_line(err) == "facesearch: error: no image with id 9999"
    code, _, err = run(
        capsys, "ingest", str(dev / "skimage"), "--source", "nope", "--home", str(home)
    )
    assert code == 2 and "source 'nope' is not registered" in one_line(err)


def test_a_mistyped_home_is_an_error_and_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "hoem"
    for argv in (["stats"], ["show", "1"], ["sources", "list"], ["keys", "list"]):
        code, _, err = run(capsys, *argv, "--home", str(typo))
        assert code == 2, argv
        assert f"there is no facesearch home at {typo}" in one_line(err)
    assert not typo.exists()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("facesearch ") and out.split()[1][0].isdigit()


def test_groups_take_home_and_json_too(
    tmp_path: Path, fresh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "keys", "--home", fresh, "--json", "list")
    assert code == 0, err
    assert json.loads(out) == []
    # a group's --home is not reset by its action's default
    code, out, _ = run(capsys, "sources", "--home", fresh, "--json", "list")
    assert code == 0 and [s["name"] for s in json.loads(out)] == ["fr"]


@pytest.mark.parametrize("typed", ["1.0", "1_0", "+1", "0"])
def test_image_ids_are_plain_whole_numbers(
    home: Path, capsys: pytest.CaptureFixture[str], typed: str
) -> None:
    err = usage_error(capsys, "show", typed, "--home", str(home))
    assert f"argument IMAGE_ID: {typed!r} is not" in err


def test_erase_select_takes_plain_ids_only(
    home: Path, dev: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "erase", "--person", str(dev / PROBE), "--select", "1.0", "--home", str(home)
    )
    assert code == 2 and "--select: '1.0' is not a whole number" in one_line(err)


@pytest.fixture(autouse=True)
def _no_home_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that ignored --home would make ./facesearch-data: not in the checkout."""
    monkeypatch.chdir(tmp_path)
