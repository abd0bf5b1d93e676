"""The reader of dlib's network file refuses what is not dlib's face network, in words."""

from __future__ import annotations

from pathlib import Path

import face_recognition_models
import pytest

from facesearch.errors import ConfigError
from facesearch.vision.onnx.dlib_convert import convert, read_dlib_network

DAT = Path(face_recognition_models.face_recognition_model_location())


def test_the_network_reads_as_dlibs_resnet() -> None:
    network = read_dlib_network(DAT)
    assert network.chip_size == 150
    kinds = [layer.kind for layer in network.layers]
    assert kinds.count("con") == 29 and kinds.count("fc") == 1
    fc = network.layers[-1]
    assert fc.weights is not None and fc.weights.shape == (256, 128) and fc.bias is None
    assert [round(m, 3) for m in network.channel_means] == [122.782, 117.001, 104.298]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a network", "cannot convert"),
        (DAT.read_bytes()[:1_000_000], "cannot convert"),
        (DAT.read_bytes() + b"\x00", "bytes left after the last layer"),
    ],
    ids=["garbage", "truncated", "trailing bytes"],
)
def test_other_files_are_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "model.dat"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=reason):
        convert(path)


def test_another_dlib_model_is_refused(tmp_path: Path) -> None:
    other = Path(face_recognition_models.pose_predictor_five_point_model_location())
    with pytest.raises(ConfigError, match="cannot convert"):
        convert(other)
