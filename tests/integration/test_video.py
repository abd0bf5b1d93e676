"""Video evidence: a clip made here from the dev photos (PyAV, into a temporary folder)
is sampled, its faces tracked so that each appearance is indexed once with its moment,
and found by a photo search; broken and over-long videos are refused with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from facesearch import FaceSearch, Settings
from facesearch.cli.main import main

from ..conftest import register
from ..engines import postgres as pg

OBAMA = "face_recognition/examples/obama.jpg"
BIDEN = "face_recognition/examples/biden.jpg"
PROBE = "face_recognition/examples/obama2.jpg"
FPS = 10


def still(photo: Path, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """The photo fitted into a frame (grey borders), as RGB pixels."""
    image = Image.open(photo).convert("RGB")
    image.thumbnail(size)
    frame = Image.new("RGB", size, (90, 90, 90))
    frame.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    return np.asarray(frame)


def make_clip(path: Path, scenes: list[tuple[np.ndarray, float]]) -> Path:
    """An MPEG-4 clip showing each still for its seconds, at FPS frames a second."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height = scenes[0][0].shape[1], scenes[0][0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 4_000_000  # CCTV-like quality, not a blur of blocks
        for pixels, seconds in scenes:
            for _ in range(int(seconds * FPS)):
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, dev: Path) -> Path:
    folder = tmp_path_factory.mktemp("video")
    return make_clip(folder / "cctv.mp4", [(still(dev / OBAMA), 3.0), (still(dev / BIDEN), 3.0)])


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def video_home(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaceSearch]:
    """On the embedded catalog and on a PostgreSQL one (a frame's video and moment are
    stored and returned by both)."""
    home = tmp_path_factory.mktemp("video-home") / "home"
    catalog = {"url": pg.database("video")} if request.param == "postgres" else {}
    video = {"sample_fps": 2.0, "max_seconds": 60}
    settings = Settings(home=home, workers=1, video=video, catalog=catalog)  # type: ignore[arg-type]
    with FaceSearch(settings) as engine:
        register(engine, "cctv")
        yield engine


def test_each_appearance_is_indexed_once_with_its_moment(
    video_home: FaceSearch, clip: Path, dev: Path
) -> None:
    report = video_home.ingest([clip], source="cctv")
    assert report.videos == 1 and report.failed == []
    assert report.video_frames_decoded == 6 * FPS and report.video_frames_analysed == 12
    assert report.video_faces_detected >= 10  # a face in (nearly) every analysed frame
    assert report.video_faces_kept == 2 and report.faces_indexed == 2  # two appearances

    [result] = video_home.search(dev / PROBE, top_k=3)
    best = result.matches[0]
    assert best.is_match
    [copy] = best.image.provenance
    assert copy.video == str(clip) and copy.source == "cctv"
    assert copy.video_time is not None and 0.0 <= copy.video_time < 3.0  # Obama's scene
    # Biden's appearance is the other indexed frame, in his scene.
    times = sorted(
        p.video_time or 0.0 for i in video_home.list_images(source="cctv") for p in i.provenance
    )
    assert len(times) == 2 and times[1] >= 3.0


def test_broken_and_overlong_videos_are_refused_with_the_reason(
    video_home: FaceSearch, clip: Path, tmp_path: Path, dev: Path
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[:2000])
    noise = tmp_path / "noise.mov"
    noise.write_bytes(b"\x00" * 5000)
    long_clip = make_clip(tmp_path / "long.mp4", [(still(dev / OBAMA), 61.0 / 10)])
    settings = video_home.settings.model_copy(
        update={"video": video_home.settings.video.model_copy(update={"max_seconds": 5})}
    )
    video_home.close()
    with FaceSearch(settings) as engine:
        report = engine.ingest([broken, noise, long_clip], source="cctv")
    reasons = {Path(f["path"]).name: f["reason"] for f in report.failed}
    assert set(reasons) == {"broken.mp4", "noise.mov", "long.mp4"}
    assert "over the limit of 5 s" in reasons["long.mp4"] or "past 5 s" in reasons["long.mp4"]
    assert "video" in reasons["noise.mov"]
    assert report.faces_indexed == 0


def test_the_cli_ingests_a_folder_with_a_video(
    tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(clip.read_bytes())
    home = str(tmp_path / "home")
    add = ["sources", "add", "cctv", "--lawful-basis", "legitimate_interests"]
    assert main([*add, "--condition", "legal_claims", "--retention", "1y", "--home", home]) == 0
    capsys.readouterr()
    assert main(["ingest", str(folder), "--source", "cctv", "--json", "--home", home]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["videos"] == 1 and report["faces_indexed"] == 2
