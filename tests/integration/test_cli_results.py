"""The command line's results: chance figures and bands, the verdict first, searching
again with --face-id, several photos at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from facesearch.cli.main import main

from ..conftest import REGISTER_ARGS

EXAMPLES = "face_recognition/examples"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, dev: Path) -> Path:
    home = tmp_path_factory.mktemp("cli-results") / "home"
    assert main(["sources", "add", "fr", *REGISTER_ARGS, "--home", str(home)]) == 0
    photos = [str(dev / EXAMPLES / n) for n in ("obama.jpg", "biden.jpg", "obama_small.jpg")]
    assert main(["ingest", *photos, "--source", "fr", "--workers", "1", "--home", str(home)]) == 0
    return home


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def search_json(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> Any:
    code, out, err = run(capsys, "search", *args, "--json", "--home", str(home))
    assert code == 0, err
    return json.loads(out)["results"][0]


def test_text_says_the_verdict_then_each_band(
    capsys: pytest.CaptureFixture[str], home: Path, dev: Path
) -> None:
    code, out, _ = run(capsys, "search", str(dev / EXAMPLES / "obama2.jpg"), "--home", str(home))
    assert code == 0
    lines = out.splitlines()
    verdict = next(i for i, line in enumerate(lines) if line.startswith("Best result"))
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("1."))
    assert verdict < first and "3 faces searched" in out
    assert "strong" in lines[first] and "others as high" in lines[first]


def test_search_again_with_a_result_s_face(
    capsys: pytest.CaptureFixture[str], home: Path, dev: Path
) -> None:
    first = search_json(capsys, home, str(dev / EXAMPLES / "obama2.jpg"))
    face_id = first["matches"][0]["face_id"]
    assert first["matches"][0]["band"] == "strong" and first["reliable"] is True
    again = search_json(capsys, home, "--face-id", str(face_id), "--case-ref", "C-CLI")
    assert face_id not in [m["face_id"] for m in again["matches"]]
    found = Path(first["matches"][0]["path"]).name
    other = ({"obama.jpg", "obama_small.jpg"} - {found}).pop()
    assert Path(again["matches"][0]["path"]).name == other  # the same man's other photo
    code, _, err = run(capsys, "search", "--face-id", "999999", "--home", str(home))
    assert code != 0 and err.count("\n") == 1 and "no face with id 999999" in err
    code, _, err = run(capsys, "search", "--home", str(home))
    assert code != 0 and "give a PHOTO" in err


def test_several_photos_search_together(
    capsys: pytest.CaptureFixture[str], home: Path, dev: Path
) -> None:
    photos = [
        str(dev / EXAMPLES / "obama2.jpg"),
        str(dev / "face_recognition/tests/test_images/obama3.jpg"),
    ]
    both = search_json(capsys, home, *photos)
    assert both["combine"] == "mean"
    best = both["matches"][0]
    assert Path(best["path"]).name in ("obama.jpg", "obama_small.jpg")
    assert best["probes_matched"] == [0, 1]
    code, out, _ = run(capsys, "search", *photos, "--combine", "max", "--home", str(home))
    assert code == 0 and "2 probes combined by max" in out and "probes 0,1" in out
    code, _, err = run(capsys, "search", *photos, "--face", "1", "--home", str(home))
    assert code != 0 and "several probes" in err
