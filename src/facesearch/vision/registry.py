"""Which detector and embedder to build: one picklable description for every process.

The engine, the server's model pool and the ingest workers all build their models from a
``ModelSpec``, so no process can end up with a model other than the one whose key the
engine records (dlib vectors stored under another model's key would be a silent wrong
result). This is the only module that names adapter classes; adding a model is one entry
in ``DETECTORS`` or ``EMBEDDERS``.

Detector and embedder objects given to ``FaceSearch`` travel in the spec itself
(``given_detector``/``given_embedder``): worker processes started by fork inherit them;
with spawn they must pickle, or ingest with several workers is refused.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

from facesearch.errors import ConfigError
from facesearch.vision.ports import FaceDetector, FaceEmbedder

if TYPE_CHECKING:
    from facesearch.config import Faces

DEFAULT_DETECTOR = "retinaface"
DEFAULT_EMBEDDER = "dlib-resnet"
# The detector of homes made before homes recorded theirs: the only one there was.
FIRST_DETECTOR = "dlib-hog"
# The catalog's meta key under which a home records its detector.
DETECTOR_META = "detector"
# Other names a configuration may use for a detector (older configs, shorter names).
DETECTOR_ALIASES: Mapping[str, str] = MappingProxyType({"hog": "dlib-hog"})


def _dlib_hog(spec: ModelSpec) -> FaceDetector:
    from facesearch.vision.dlib_models import DlibFaceDetector

    return DlibFaceDetector(upsample=spec.upsample)


def _retinaface(spec: ModelSpec) -> FaceDetector:
    from facesearch.vision.onnx.retinaface import RetinaFaceDetector

    return RetinaFaceDetector(min_score=spec.min_score, max_side=spec.detect_max_side)


def _dlib_resnet(spec: ModelSpec) -> FaceEmbedder:
    from facesearch.vision.dlib_models import DlibFaceEmbedder

    return DlibFaceEmbedder(flip_average=spec.flip_average)


# Configured name -> factory. Factories import their runtime when called, so that reading
# the catalog (stats, show) never loads a model.
DETECTORS: Mapping[str, Callable[[ModelSpec], FaceDetector]] = MappingProxyType(
    {"dlib-hog": _dlib_hog, "retinaface": _retinaface}
)
EMBEDDERS: Mapping[str, Callable[[ModelSpec], FaceEmbedder]] = MappingProxyType(
    {"dlib-resnet": _dlib_resnet}
)


def _known(kind: str, name: str, names: Mapping[str, object]) -> None:
    if name not in names:
        raise ConfigError(
            f"unknown face {kind} {name!r}; known {kind}s: {', '.join(sorted(names))}"
        )


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The detector and embedder to build, by configured name, with their options.

    ``given_detector``/``given_embedder``: objects handed to ``FaceSearch`` (tests, Python
    users); when set, every process uses that object (or its copy) instead of building one.
    """

    detector: str = DEFAULT_DETECTOR
    embedder: str = DEFAULT_EMBEDDER
    upsample: int = 1
    flip_average: bool = True
    min_score: float = 0.85
    detect_max_side: int = 1280
    given_detector: FaceDetector | None = None
    given_embedder: FaceEmbedder | None = None

    def __post_init__(self) -> None:
        # A frozen dataclass: the alias is resolved once, here.
        object.__setattr__(self, "detector", DETECTOR_ALIASES.get(self.detector, self.detector))
        if self.given_detector is None:
            _known("detector", self.detector, DETECTORS)
        if self.given_embedder is None:
            _known("embedder", self.embedder, EMBEDDERS)

    @classmethod
    def from_settings(
        cls,
        faces: Faces,
        *,
        detector: FaceDetector | None = None,
        embedder: FaceEmbedder | None = None,
    ) -> ModelSpec:
        """The spec of the ``faces.*`` settings; ``detector``/``embedder`` objects win."""
        return cls(
            detector=faces.detector,
            embedder=faces.embedder,
            upsample=faces.upsample,
            flip_average=faces.flip_average,
            min_score=faces.min_score,
            detect_max_side=faces.detect_max_side,
            given_detector=detector,
            given_embedder=embedder,
        )

    @property
    def detector_name(self) -> str:
        """The name of the detector this spec builds (a given one's own name)."""
        if self.given_detector is not None:
            return str(self.given_detector.name)
        return self.detector

    def for_home(self, recorded: str | None, configured: bool) -> ModelSpec:
        """This spec with the detector a home was made with, unless one was configured.

        A home keeps finding faces the way it always has: when ``faces.detector`` is not
        set (``configured`` false), the home's ``recorded`` detector is used, so a home
        made with HOG stays with HOG when the default changes. A configured detector that
        differs from the home's is kept here; ingest refuses it (``check_model``).
        """
        if recorded is None or configured or self.given_detector is not None:
            return self
        if recorded not in DETECTORS or recorded == self.detector:
            return self
        return replace(self, detector=recorded)

    @property
    def shared(self) -> bool:
        """Whether a built model may be an object that others hold too (a given one):
        such a model is not known to be safe to call from several threads at once."""
        return self.given_detector is not None or self.given_embedder is not None

    def build_detector(self) -> FaceDetector:
        if self.given_detector is not None:
            return self.given_detector
        return DETECTORS[self.detector](self)

    def build_embedder(self) -> FaceEmbedder:
        if self.given_embedder is not None:
            return self.given_embedder
        return EMBEDDERS[self.embedder](self)

    def check_picklable(self) -> None:
        """Refuse, with ConfigError, a spec that cannot be sent to a spawned process."""
        try:
            pickle.dumps(self)
        except Exception as exc:  # pickle raises many kinds (TypeError, PicklingError, ...)
            raise ConfigError(
                "the detector or embedder given to FaceSearch cannot be sent to worker "
                f"processes ({exc}); ingest with workers=1, or give models that pickle"
            ) from None
