"""The model spec: what a worker process receives, and which names it accepts."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from facesearch import ConfigError
from facesearch.config import Faces
from facesearch.domain import DetectedFace, ModelId
from facesearch.vision.ports import Embeddings, RGBImage
from facesearch.vision.registry import DETECTORS, EMBEDDERS, ModelSpec


class LockedEmbedder:
    """An embedder holding a lock (as a model with a session might): it cannot pickle."""

    model = ModelId(name="locked", version="1", dim=4, metric="cosine")

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def embed_faces(self, image: RGBImage, faces: Sequence[DetectedFace]) -> Embeddings:
        with self._lock:
            return np.zeros((len(faces), 4), dtype=np.float32)


def test_the_spec_of_the_settings_carries_names_and_options() -> None:
    spec = ModelSpec.from_settings(
        Faces(upsample=2, flip_average=False, min_score=0.6, detect_max_side=640)
    )
    assert (spec.detector, spec.embedder) == ("retinaface", "dlib-resnet-onnx")
    assert (spec.upsample, spec.flip_average) == (2, False)
    assert (spec.min_score, spec.detect_max_side) == (0.6, 640)
    assert not spec.shared


def test_hog_is_the_name_of_dlibs_detector_in_older_configs() -> None:
    assert ModelSpec.from_settings(Faces(detector="hog")).detector == "dlib-hog"
    assert ModelSpec(detector="dlib-hog").detector == "dlib-hog"


def test_a_home_keeps_its_detector_unless_one_is_configured() -> None:
    default = ModelSpec()
    assert default.detector == "retinaface"
    # An existing HOG home, no detector configured: it stays with HOG.
    assert default.for_home("dlib-hog", configured=False).detector == "dlib-hog"
    # A new home (nothing recorded) gets the default; a configured detector is kept
    # (ingest then refuses it on a home made with another).
    assert default.for_home(None, configured=False).detector == "retinaface"
    assert default.for_home("dlib-hog", configured=True).detector == "retinaface"
    hog = ModelSpec(detector="hog")
    assert hog.for_home("retinaface", configured=False).detector == "retinaface"
    assert hog.for_home("retinaface", configured=False).detector_name == "retinaface"


def test_a_spec_of_names_travels_to_a_spawned_worker_unchanged() -> None:
    spec = ModelSpec.from_settings(Faces(upsample=0))
    spec.check_picklable()
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown face detector 'yolo'.*dlib-hog"):
        ModelSpec(detector="yolo")
    with pytest.raises(ConfigError, match=r"unknown face embedder 'arcface'.*dlib-resnet"):
        ModelSpec.from_settings(Faces(embedder="arcface"))
    assert {"dlib-hog", "retinaface"} <= set(DETECTORS) and {"dlib-resnet"} <= set(EMBEDDERS)


def test_a_given_model_is_what_the_spec_builds() -> None:
    given = LockedEmbedder()
    spec = ModelSpec.from_settings(Faces(embedder="not-registered"), embedder=given)
    assert spec.build_embedder() is given
    assert spec.shared


def test_a_given_model_that_cannot_pickle_is_refused_for_spawned_workers() -> None:
    spec = ModelSpec(given_embedder=LockedEmbedder())
    with pytest.raises(ConfigError, match=r"cannot be sent to worker processes.*workers=1"):
        spec.check_picklable()
