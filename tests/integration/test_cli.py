"""The command line as a user runs it: exit codes, one-line errors, --json everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from facesearch import FaceSearch, ModelMismatch, Settings
from facesearch.vision.dlib_models import DlibFaceEmbedder

from ..conftest import REGISTER_ARGS


def cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--home", str(home)] if home else []
    return subprocess.run(
        [sys.executable, "-m", "facesearch.cli", *args, *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def small_home(tmp_path_factory: pytest.TempPathFactory, dev: Path) -> Path:
    home = tmp_path_factory.mktemp("cli") / "home"
    examples = dev / "face_recognition" / "examples"
    assert cli("sources", "add", "fr", *REGISTER_ARGS, home=home).returncode == 0
    done = cli(
        "ingest",
        str(examples / "obama.jpg"),
        str(examples / "biden.jpg"),
        str(dev / "skimage" / "coffee.png"),
        "--source",
        "fr",
        "--workers",
        "1",
        "--report",
        str(home.parent / "report.json"),
        home=home,
    )
    assert done.returncode == 0, done.stderr
    assert "3 new images" in done.stdout and "2 faces indexed" in done.stdout
    return home


def test_ingest_writes_a_machine_readable_report(small_home: Path) -> None:
    report = json.loads((small_home.parent / "report.json").read_text())
    assert report["images_added"] == 3
    assert report["faces_indexed"] == 2
    assert report["images_without_faces"] == 1


def test_search_prints_ranked_results_and_json(small_home: Path, dev: Path) -> None:
    probe = str(dev / "face_recognition/examples/obama2.jpg")
    text = cli("search", probe, home=small_home)
    assert text.returncode == 0
    first = next(line for line in text.stdout.splitlines() if line.strip().startswith("1."))
    assert "obama.jpg" in first
    assert "investigative lead" in text.stdout
    data = json.loads(cli("search", probe, "--json", "--top-k", "1", home=small_home).stdout)
    [result] = data["results"]
    [top] = result["matches"]
    assert top["path"].endswith("obama.jpg") and top["is_match"] is True
    assert top["provenance"][0]["source"] == "fr"
    assert set(top["box"]) == {"x1", "y1", "x2", "y2"}


def test_stats_and_show(small_home: Path) -> None:
    stats = json.loads(cli("stats", "--json", home=small_home).stdout)
    assert (stats["images"], stats["faces"], stats["sources"]) == (3, 2, 1)
    assert stats["index"]["consistent"] is True
    shown = cli("show", "1", "--json", home=small_home)
    assert json.loads(shown.stdout)["id"] == 1
    missing = cli("show", "999", home=small_home)
    assert missing.returncode != 0
    assert missing.stderr.strip() == "facesearch: error: no image with id 999"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "{dev}/skimage/coffee.png"], "no face found"),
        (["search", "/nonexistent.jpg"], "no such file"),
        (
            ["search", "{dev}/face_recognition/examples/two_people.jpg", "--face", "7"],
            "face 7 does not exist",
        ),
        (["search", "{dev}/face_recognition/examples/obama2.jpg", "--top-k", "0"], "top_k"),
        (["search", "{dev}/face_recognition/examples/obama2.jpg", "--threshold", "3"], "threshold"),
        (["ingest", "/nonexistent-folder", "--source", "fr"], "no such file or directory"),
        (["ingest", "{dev}/skimage", "--source", "nope"], "source 'nope' is not registered"),
        (["eval", "/nonexistent.csv"], "no such file"),
    ],
)
def test_bad_input_gets_one_line_and_a_non_zero_exit(
    small_home: Path, dev: Path, args: list[str], message: str
) -> None:
    done = cli(*[a.format(dev=dev) for a in args], home=small_home)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_a_search_with_another_model_is_refused(small_home: Path, dev: Path) -> None:
    other = DlibFaceEmbedder(flip_average=False)
    with (
        FaceSearch(Settings(home=small_home, workers=1), embedder=other) as fs,
        pytest.raises(ModelMismatch),
    ):
        fs.search(dev / "face_recognition/examples/obama2.jpg")


def test_reindex_rebuilds_the_same_answers(small_home: Path, dev: Path) -> None:
    probe = str(dev / "face_recognition/examples/obama2.jpg")
    before = json.loads(cli("search", probe, "--json", home=small_home).stdout)
    done = cli("reindex", home=small_home)
    assert done.returncode == 0 and "2 faces" in done.stdout
    assert json.loads(cli("search", probe, "--json", home=small_home).stdout) == before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("pairs", "min_auc"),
    [("pairs_lfw_view1_clean.csv", 0.97), ("pairs_deepface_master.csv", 0.95)],
)
def test_eval_on_the_dev_pair_files(dev: Path, tmp_path: Path, pairs: str, min_auc: float) -> None:
    done = cli("eval", str(dev / pairs), "--root", str(dev), "--json", home=tmp_path / "h")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    expected = len((dev / pairs).read_text().splitlines()) - 1
    assert report["pairs"] == expected
    assert report["roc_auc"] >= min_auc
    assert report["best_threshold"]["accuracy"] >= 0.9
    fars = {t["far_target"]: t for t in report["tar_at_far"]}
    assert set(fars) == {1e-3, 1e-2}
    assert fars[1e-2]["tar"] >= fars[1e-3]["tar"]
    assert fars[1e-3]["far"] <= 1e-3 or fars[1e-3]["far_resolution"] > 1e-3
