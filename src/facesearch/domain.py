"""Plain records passed between the stages. Frozen, typed, free of I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


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


# Five facial points in ArcFace order, in image pixels (x, y): the centre of the eye on the
# image's left (the subject's right eye), the centre of the eye on the image's right, the
# nose tip, the mouth corner on the image's left, the mouth corner on the image's right.
# This is the order of InsightFace's 112x112 template and of RetinaFace's output.
FivePoints = tuple[Point, Point, Point, Point, Point]


@dataclass(frozen=True, slots=True)
class DetectedFace:
    """A face found by a detector, with its landmarks and quality measures.

    Two sets of points, for two kinds of alignment:

    - ``landmarks``: dlib's 5-point shape (outer and inner corner of the eye on the image's
      right, outer and inner corner of the eye on the image's left, base of the nose), the
      points ``dlib.get_face_chip`` aligns dlib's ResNet from. The catalog stores these.
      Every registered detector fills them (an ONNX detector runs dlib's shape predictor
      inside its box), so dlib's embedder works behind any detector.
    - ``five_points``: the ``FivePoints`` in ArcFace order, for ArcFace-style 112x112
      alignment; ``None`` when the detector does not find them (dlib's HOG detector has no
      mouth corners). An embedder that needs them refuses a face without them.
    """

    box: BoundingBox
    score: float
    landmarks: tuple[Point, ...] = ()
    sharpness: float = 0.0
    fallback: bool = False  # found only by the tight-crop fallback, not by the detector
    five_points: FivePoints | None = None

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
    # A declared purpose: grouping this source's faces into persons (profiling), off
    # unless the source's policy says so.
    group_people: bool = False

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
            "group_people": self.group_people,
        }


@dataclass(frozen=True, slots=True)
class Person:
    """Faces grouped as one person (sources whose policy declares grouping only).

    ``confirmed`` are the faces a person placed here (merge, split, move): later grouping
    runs never take them away. A name is a label people give, never inferred."""

    id: int
    name: str
    faces: tuple[int, ...]
    images: tuple[int, ...]
    confirmed: tuple[int, ...] = ()
    created_at: str = ""
    updated_at: str = ""


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
    # A frame taken from a video: the video's path and the moment, in seconds.
    video: str | None = None
    video_time: float | None = None


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
    phash: str | None = None  # perceptual hash (16 hex digits): finds copies of one photo

    @property
    def path(self) -> str:
        """The path it was first ingested from."""
        return self.provenance[0].path if self.provenance else ""


CHANCE = "chance"  # the band of a result that about as many other people would reach


@dataclass(frozen=True, slots=True)
class Chance:
    """How a similarity compares with chance in the collection searched (see
    ``facesearch.vision.calibration``)."""

    similarity: float
    false_match_rate: float  # per comparison: different-person pairs scoring as high
    expected_false: float  # false_match_rate x comparisons (faces searched x probes)
    upper_bound: bool  # under 3 calibration impostors scored as high: 3 / pairs is shown
    band: str  # strong, possible, weak lead or chance

    @property
    def reliable(self) -> bool:
        """Fewer than one different person expected to score as high."""
        return self.band != CHANCE

    def as_dict(self) -> dict[str, Any]:
        return {
            "band": self.band,
            "expected_false_matches": self.expected_false,
            "false_match_rate": self.false_match_rate,
            "upper_bound": self.upper_bound,
        }


@dataclass(frozen=True, slots=True)
class Match:
    """One row of a search result: an image, the face in it that matched, and how well."""

    rank: int
    similarity: float
    is_match: bool
    face_id: int
    box: BoundingBox
    image: ImageRecord
    chance: Chance | None = None  # None: the model has no shipped calibration
    probes: tuple[int, ...] = ()  # several probes: which of them this face matched
    copies: tuple[Copy, ...] = ()  # other copies of this photo (resized, recompressed...)


@dataclass(frozen=True, slots=True)
class Copy:
    """Another stored copy of a result's photo, folded into that result."""

    image: ImageRecord
    face_id: int
    similarity: float
    box: BoundingBox


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
    faces_searched: int = 0  # the gallery size the chance figures are for
    calibrated: bool = False  # the model has a shipped calibration (chance figures)
    combine: str | None = None  # several probes: how they were combined (max or mean)

    @property
    def reliable(self) -> bool | None:
        """Whether the best result stands out from chance at this gallery size (None:
        no calibration to tell, or no result)."""
        if not self.calibrated or not self.matches or self.matches[0].chance is None:
            return None
        return self.matches[0].chance.reliable


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks, why, and from where: carried by every search and recorded in the audit log."""

    actor: str
    purpose: str | None = None
    case_ref: str | None = None
    jurisdiction: str | None = None
    channel: str = "python"  # python, cli or api: the purpose rule is set per channel


# -- audit events --------------------------------------------------------------------------
# One class per thing the engine records; its fields become the audit entry's details, its
# ``action`` the entry's action (the strings logs already hold: do not rename them). The
# engine writes them (``record``), never a route or a command: no path can skip its entry.
# Never a photo, a template or a secret: only what happened, hashes and counts.


@dataclass(frozen=True, slots=True)
class Event:
    """Something the audit log records; who did it comes with it (a Requester)."""

    action: ClassVar[str]

    def details(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class SearchEvent(Event):
    """A search of the gallery (its kind is the subclass)."""

    probe_sha256: str | None
    sources: list[str]
    top_k: int
    threshold: float
    results: int
    likely_matches: int


@dataclass(frozen=True, slots=True)
class SearchMade(SearchEvent):
    """A search; since results carry chance figures it also records how many probes and
    stored faces it used, how many faces it searched, and each result as
    [image id, face id, similarity, band] (ids and scores, never a face)."""

    action: ClassVar[str] = "search"
    probes: int = 1
    probe_face_ids: list[int] = field(default_factory=list)
    faces_searched: int | None = None
    matched: list[list[Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ErasureReviewed(SearchEvent):
    """Every image of a person looked up before an erasure (objections included)."""

    action: ClassVar[str] = "erasure.review"


@dataclass(frozen=True, slots=True)
class PersonSearched(SearchEvent):
    """A search with every face of a person as probes ("search with this person")."""

    action: ClassVar[str] = "search.person"
    person: int = 0
    probes: int = 0


@dataclass(frozen=True, slots=True)
class PeopleGrouped(Event):
    """A grouping run over the faces of the sources whose policy declares grouping."""

    action: ClassVar[str] = "people.group"
    sources: list[str]
    faces: int
    grouped: int
    new_persons: int
    ungrouped: int
    full: bool


@dataclass(frozen=True, slots=True)
class PersonEdited(Event):
    """A person's correction of the grouping: rename, merge, split or move faces."""

    action: ClassVar[str] = "person.edit"
    person: int
    change: str
    faces: list[int]
    merged: list[int]


@dataclass(frozen=True, slots=True)
class IngestBatch(Event):
    """Written before a batch is stored: no image is ever stored without an entry."""

    action: ClassVar[str] = "ingest.batch"
    source: str
    images: list[str]  # sha256 of the new images
    copies: list[str]  # sha256 of the new copies of images already stored


@dataclass(frozen=True, slots=True)
class IngestDone(Event):
    action: ClassVar[str] = "ingest"
    source: str
    files: int
    images_added: int
    copies_added: int
    faces_indexed: int
    faces_suppressed: int
    failures: int
    interrupted: bool


@dataclass(frozen=True, slots=True)
class ModelChanged(Event):
    """A home moved to another model: every stored template re-embedded (re-embed)."""

    action: ClassVar[str] = "model.change"
    previous_model: str
    model: str
    images: int
    faces: int


@dataclass(frozen=True, slots=True)
class SourceAdded(Event):
    action: ClassVar[str] = "source.add"
    source: str
    policy: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SourceUpdated(Event):
    action: ClassVar[str] = "source.update"
    source: str
    changes: list[str]
    policy: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RemovalEvent(Event):
    """A removal's receipt (governance.erasure.Receipt, less its action)."""

    scope: dict[str, Any]
    at: str
    dry_run: bool
    provenance_removed: int
    images_removed: int
    faces_removed: int
    image_ids: tuple[int, ...]
    image_sha256: tuple[str, ...]
    face_ids: tuple[int, ...]
    files_deleted: int
    receipt_id: str
    index_erased_at: str | None = None  # when a server index's compaction finished


@dataclass(frozen=True, slots=True)
class RetentionRun(RemovalEvent):
    action: ClassVar[str] = "retention"


@dataclass(frozen=True, slots=True)
class ErasureDone(RemovalEvent):
    action: ClassVar[str] = "erasure"


@dataclass(frozen=True, slots=True)
class SuppressionAdded(Event):
    action: ClassVar[str] = "suppression.add"
    suppression_id: int
    consent_ref: str


@dataclass(frozen=True, slots=True)
class SuppressionRemoved(Event):
    action: ClassVar[str] = "suppression.remove"
    suppression_id: int


@dataclass(frozen=True, slots=True)
class AccessRequested(Event):
    """An access request with a photo: its hash, never the photo or its template."""

    action: ClassVar[str] = "access_request"
    request_id: str
    probe_sha256: str
    results: int


@dataclass(frozen=True, slots=True)
class AccessRequestedByUrl(Event):
    """An access request by URL: a keyed hash of the address, never the address."""

    action: ClassVar[str] = "access_request"
    request_id: str
    match: str
    url_hash: str
    results: int


@dataclass(frozen=True, slots=True)
class AuditExported(Event):
    action: ClassVar[str] = "audit.export"
    case: str | None
    entries: int


@dataclass(frozen=True, slots=True)
class CaseExported(Event):
    """A case file made (read in the web UI, or exported): the case and what it held."""

    action: ClassVar[str] = "case.export"
    case: str
    searches: int
    entries: int
    format: str  # json, html, pdf or page


@dataclass(frozen=True, slots=True)
class AuditRead(Event):
    action: ClassVar[str] = "audit.read"
    case: str | None
    action_filter: str | None
    entries: int


@dataclass(frozen=True, slots=True)
class AuditKeyed(Event):
    """The entry that starts the keyed part of the chain (every entry from it is an HMAC)."""

    action: ClassVar[str] = "audit.key"
    fingerprint: str
    unkeyed_entries: int


@dataclass(frozen=True, slots=True)
class KeyCreated(Event):
    """An API key made (its id, never the key)."""

    action: ClassVar[str] = "key.create"
    key_id: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class KeyRevoked(Event):
    action: ClassVar[str] = "key.revoke"
    key_id: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class UserAdded(Event):
    """A web user added, or their password and role reset (never the password)."""

    action: ClassVar[str] = "user.add"
    username: str
    role: str
