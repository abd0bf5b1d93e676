"""Plain records passed between the stages. Frozen, typed, free of I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ModelId:
    """Which model made an embedding: vectors of different models are never compared."""

    name: str
    version: str
    dim: int
    metric: str  # "cosine": similarity is the dot product of unit vectors

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}/{self.dim}/{self.metric}"

    @classmethod
    def from_key(cls, key: str) -> ModelId:
        name_version, dim, metric = key.rsplit("/", 2)
        name, version = name_version.split("@", 1)
        return cls(name=name, version=version, dim=int(dim), metric=metric)


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """Pixel box in the (EXIF-corrected) image: x1, y1 inclusive, x2, y2 exclusive."""

    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def as_dict(self) -> dict[str, int]:
        return {"x1": self.x1, "y1": self.y1, "x2": self.x2, "y2": self.y2}


Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class DetectedFace:
    """A face found by a detector, with its landmarks and quality measures."""

    box: BoundingBox
    score: float
    landmarks: tuple[Point, ...] = ()
    sharpness: float = 0.0
    fallback: bool = False  # found only by the tight-crop fallback, not by the detector

    @property
    def size(self) -> int:
        """Face size in pixels: the shorter side of the box."""
        return min(self.box.width, self.box.height)


@dataclass(frozen=True, slots=True)
class Source:
    """A registered collection: who controls it, on what basis, and for how long."""

    name: str
    lawful_basis: str
    special_category_condition: str
    retention_days: int
    description: str = ""
    controller: str = ""
    contact: str = ""
    jurisdictions: tuple[str, ...] = ()
    legal_hold: bool = False
    created_at: str = ""
    updated_at: str = ""
    counts: dict[str, int] = field(default_factory=dict, compare=False)

    def policy(self) -> dict[str, Any]:
        """What the source declares (no counts, no timestamps): for audit and reports."""
        return {
            "name": self.name,
            "description": self.description,
            "controller": self.controller,
            "contact": self.contact,
            "lawful_basis": self.lawful_basis,
            "special_category_condition": self.special_category_condition,
            "jurisdictions": list(self.jurisdictions),
            "retention_days": self.retention_days,
            "legal_hold": self.legal_hold,
        }


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one copy of an image came from."""

    source: str
    path: str
    source_url: str | None = None
    page_url: str | None = None
    captured_at: str | None = None
    ingested_at: str | None = None
    expires_at: str | None = None


@dataclass(frozen=True, slots=True)
class FaceRecord:
    """A stored face."""

    id: int
    image_id: int
    index: int
    box: BoundingBox
    score: float
    landmarks: tuple[Point, ...]
    size: int
    sharpness: float


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """A stored image (one per distinct file content) with every known provenance."""

    id: int
    sha256: str
    width: int
    height: int
    format: str
    bytes: int
    ingested_at: str
    faces: tuple[FaceRecord, ...] = ()
    provenance: tuple[Provenance, ...] = ()
    skipped_faces: tuple[dict[str, Any], ...] = ()

    @property
    def path(self) -> str:
        """The path it was first ingested from."""
        return self.provenance[0].path if self.provenance else ""


@dataclass(frozen=True, slots=True)
class Match:
    """One row of a search result: an image, the face in it that matched, and how well."""

    rank: int
    similarity: float
    is_match: bool
    face_id: int
    box: BoundingBox
    image: ImageRecord


@dataclass(frozen=True, slots=True)
class ProbeFace:
    """A face found in a probe photo."""

    index: int
    box: BoundingBox
    score: float
    size: int


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The answer to one probe face."""

    probe_face: ProbeFace
    threshold: float
    matches: tuple[Match, ...]
    model: ModelId
    probe_faces: tuple[ProbeFace, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks, why, and from where: carried by every search and recorded in the audit log."""

    actor: str
    purpose: str | None = None
    case_ref: str | None = None
    jurisdiction: str | None = None
    channel: str = "python"  # python, cli or api: the purpose rule is set per channel
