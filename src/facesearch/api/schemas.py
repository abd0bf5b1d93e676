"""The API's documented shapes (they make the OpenAPI document) and how records become them."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, Field

from facesearch.accounts.ports import KeyInfo
from facesearch.domain import (
    BoundingBox,
    FaceRecord,
    ImageRecord,
    Match,
    Provenance,
    SearchResult,
    Source,
)
from facesearch.engine import Probe

NOTICE = "A match is an investigative lead, not an identification."
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{64}-")


def file_name(path: str) -> str:
    """The name a person knows a file by (an upload's is stored after its hash)."""
    return _UPLOAD_PREFIX.sub("", PurePath(path).name)


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_input.")
    message: str = Field(description="What went wrong, for a person.")
    request_id: str = Field(description="Also in the X-Request-ID header; quote it in reports.")


class ErrorOut(BaseModel):
    error: ErrorBody


class Box(BaseModel):
    """Pixel box: x1, y1 inclusive, x2, y2 exclusive (EXIF orientation applied)."""

    x1: int
    y1: int
    x2: int
    y2: int


class ProbeFaceOut(BaseModel):
    index: int = Field(description="Pass as `face` to search this face (0 is the largest).")
    box: Box
    score: float
    size: int


class ProbeOut(BaseModel):
    sha256: str
    width: int
    height: int
    faces: list[ProbeFaceOut]


class ProvenanceOut(BaseModel):
    source: str
    path: str
    file_name: str
    source_url: str | None
    page_url: str | None
    captured_at: str | None
    ingested_at: str | None
    video: str | None = Field(None, description="A frame of this video (its path) ...")
    video_time: float | None = Field(None, description="... at this moment (seconds).")
    moment_url: str | None = Field(
        None, description="The video at that moment (a media fragment, #t=seconds)."
    )


class CopyOut(BaseModel):
    """One stored copy of a result's photo (resized, recompressed, cropped a little)."""

    image_id: int
    face_id: int
    similarity: float
    width: int
    height: int
    box: Box
    image_url: str
    provenance: list[ProvenanceOut]


class MatchOut(BaseModel):
    rank: int
    similarity: float = Field(description="Cosine similarity, -1 to 1, higher is closer.")
    is_match: bool = Field(description="similarity >= threshold: a likely match (a lead).")
    band: str | None = Field(
        description="strong, possible, weak lead or chance: how far the similarity stands "
        "out from what different people reach in this collection (None: the model has no "
        "calibration)."
    )
    expected_false_matches: float | None = Field(
        description="Different-person faces among those searched expected to score as high "
        "(false match rate at this similarity x faces searched)."
    )
    upper_bound: bool = Field(
        description="True when no different-person pair of the calibration scored as high: "
        "expected_false_matches is then an upper bound (3 / pairs measured)."
    )
    probes_matched: list[int] = Field(
        description="The probes (in the order sent: photos, then face ids) whose similarity "
        "to this face reaches the threshold."
    )
    face_id: int
    box: Box = Field(description="The matched face in the stored image.")
    image_id: int
    path: str
    file_name: str
    source: str
    source_url: str | None
    page_url: str | None
    captured_at: str | None
    thumbnail_url: str
    image_thumbnail_url: str = Field(
        description="The whole image, at most 320 px (the box scales onto it)."
    )
    image_url: str
    provenance: list[ProvenanceOut]
    copies: list[CopyOut] = Field(
        description="Every stored copy of this photo folded into this row (the row's own "
        "image among them), the largest first; empty when the photo has no other copy."
    )
    moment_url: str | None = Field(
        None,
        description="For a frame of a video (this row's image, or else a copy folded into "
        "it): the video at the moment (#t=seconds).",
    )


class SearchOut(BaseModel):
    request_id: str
    notice: str = Field(description=NOTICE)
    model: str
    threshold: float
    face: int = Field(description="Index of the probe face searched.")
    probe: ProbeOut | None = Field(description="The first probe photo (None: face ids only).")
    probes: list[ProbeOut] = Field(description="Every probe photo, in the order sent.")
    face_ids: list[int] = Field(description="The stored faces searched with.")
    combine: str | None = Field(description="How several probes were combined (max or mean).")
    faces_searched: int = Field(
        description="Comparisons made: faces searched x probes (with max). The chance "
        "figures of the results are for this many."
    )
    reliable: bool | None = Field(
        description="False: even the best result is no better than chance at this "
        "collection's size (no reliable match). None: no calibration, or no result."
    )
    verdict: str = Field(description="The search's outcome in one line, for a person.")
    likely_matches: int
    matches: list[MatchOut]
    timings_ms: dict[str, float] = Field(
        description="Milliseconds per stage: upload, queue, decode, detect, embed, search."
    )


class FaceOut(BaseModel):
    id: int
    index: int
    box: Box
    score: float
    size: int
    sharpness: float
    thumbnail_url: str


class ImageOut(BaseModel):
    id: int
    sha256: str
    width: int
    height: int
    format: str
    bytes: int
    ingested_at: str
    path: str
    file_name: str
    file_url: str
    faces: list[FaceOut]
    provenance: list[ProvenanceOut]
    skipped_faces: list[dict[str, Any]]


class ImagesPage(BaseModel):
    items: list[ImageOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class IngestOut(BaseModel):
    created: bool = Field(description="False when the same file was already stored.")
    faces_indexed: int
    image: ImageOut


class SourceOut(BaseModel):
    name: str
    description: str
    controller: str
    contact: str
    lawful_basis: str = Field(description="GDPR Art. 6(1) basis (GET /v1/lawful-bases).")
    special_category_condition: str = Field(description="GDPR Art. 9(2) condition.")
    jurisdictions: list[str] = Field(description="ISO 3166 codes of the people in it.")
    retention_days: int
    legal_hold: bool = Field(description="Retention is suspended while it is on.")
    group_people: bool = Field(
        False, description="Its faces are grouped into persons (a declared purpose)."
    )
    created_at: str
    updated_at: str
    images: int
    faces: int


class SourcesPage(BaseModel):
    items: list[SourceOut]
    next_cursor: str | None


class IndexStateOut(BaseModel):
    kind: str
    faces: int
    consistent: bool


class StatsOut(BaseModel):
    images: int
    faces: int
    provenance: int
    sources: int
    failures: int
    images_without_faces: int
    model: str | None
    detector: str | None = None  # the detector that found the home's faces
    index: IndexStateOut


class KeyOut(BaseModel):
    key_id: str
    name: str
    role: str
    created_at: str
    revoked_at: str | None
    active: bool


class KeysPage(BaseModel):
    items: list[KeyOut]


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="Who or what uses the key.")
    role: str = Field(description="admin, ingest, search or auditor.")


class KeyCreated(BaseModel):
    key: str = Field(description="The API key. Shown once: it is stored only as a hash.")
    info: KeyOut


class MeOut(BaseModel):
    kind: str
    id: str
    name: str
    role: str
    actions: list[str]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    faces: int


# -- conversions -----------------------------------------------------------------------
def box(b: BoundingBox) -> Box:
    return Box(x1=b.x1, y1=b.y1, x2=b.x2, y2=b.y2)


def moment_url(image_id: int, p: Provenance | None) -> str | None:
    if p is None or p.video is None or p.video_time is None:
        return None
    return f"/v1/images/{image_id}/video#t={p.video_time:g}"


def first_moment(m: Match) -> str | None:
    """The video at the moment of this result's frame, or of the first frame among the
    copies folded into it (a still of a photo that a video also shows)."""
    for image in [m.image, *(c.image for c in m.copies)]:
        for p in image.provenance:
            if (url := moment_url(image.id, p)) is not None:
                return url
    return None


def provenance(p: Provenance, image_id: int = 0) -> ProvenanceOut:
    return ProvenanceOut(
        video=p.video,
        video_time=p.video_time,
        moment_url=moment_url(image_id, p) if image_id else None,
        source=p.source,
        path=p.path,
        file_name=file_name(p.path),
        source_url=p.source_url,
        page_url=p.page_url,
        captured_at=p.captured_at,
        ingested_at=p.ingested_at,
    )


def face(f: FaceRecord) -> FaceOut:
    return FaceOut(
        id=f.id,
        index=f.index,
        box=box(f.box),
        score=f.score,
        size=f.size,
        sharpness=f.sharpness,
        thumbnail_url=f"/v1/faces/{f.id}/thumbnail",
    )


def image(record: ImageRecord) -> ImageOut:
    return ImageOut(
        id=record.id,
        sha256=record.sha256,
        width=record.width,
        height=record.height,
        format=record.format,
        bytes=record.bytes,
        ingested_at=record.ingested_at,
        path=record.path,
        file_name=file_name(record.path),
        file_url=f"/v1/images/{record.id}/file",
        faces=[face(f) for f in record.faces],
        provenance=[provenance(p, record.id) for p in record.provenance],
        skipped_faces=list(record.skipped_faces),
    )


def probe(p: Probe) -> ProbeOut:
    height, width = p.pixels.shape[:2]
    return ProbeOut(
        sha256=p.sha256,
        width=width,
        height=height,
        faces=[
            ProbeFaceOut(index=f.index, box=box(f.box), score=f.score, size=f.size) for f in p.faces
        ],
    )


def verdict(result: SearchResult) -> str:
    """The search's outcome, said first: a best result no better than chance says so."""
    if not result.matches:
        return "No results: the collection searched holds no faces."
    best = result.matches[0]
    if result.reliable is False:
        return (
            "No reliable match: even the best result scores no higher than different "
            f"people are expected to among the {result.faces_searched} faces searched."
        )
    if best.chance is None:
        return f"Best similarity {best.similarity:.3f} (this model has no calibration)."
    return f"Best result: {best.chance.band} ({best.similarity:.3f})."


def match(m: Match, rank: int, shown: Provenance | None) -> MatchOut:
    """A result row; ``shown`` is the copy to headline (one from the filtered source)."""
    first = shown or (m.image.provenance[0] if m.image.provenance else None)
    path = first.path if first else ""
    return MatchOut(
        rank=rank,
        similarity=round(m.similarity, 4),
        is_match=m.is_match,
        band=m.chance.band if m.chance else None,
        expected_false_matches=float(f"{m.chance.expected_false:.3g}") if m.chance else None,
        upper_bound=m.chance.upper_bound if m.chance else False,
        probes_matched=list(m.probes),
        face_id=m.face_id,
        box=box(m.box),
        image_id=m.image.id,
        path=path,
        file_name=(
            f"{file_name(first.video)} at {first.video_time:g} s"
            if first and first.video and first.video_time is not None
            else file_name(path)
        ),
        source=first.source if first else "",
        source_url=first.source_url if first else None,
        page_url=first.page_url if first else None,
        captured_at=first.captured_at if first else None,
        thumbnail_url=f"/v1/faces/{m.face_id}/thumbnail",
        image_thumbnail_url=f"/v1/images/{m.image.id}/thumbnail",
        image_url=f"/v1/images/{m.image.id}/file",
        provenance=[provenance(p, m.image.id) for p in m.image.provenance],
        moment_url=first_moment(m),
        copies=[
            CopyOut(
                image_id=c.image.id,
                face_id=c.face_id,
                similarity=round(c.similarity, 4),
                width=c.image.width,
                height=c.image.height,
                box=box(c.box),
                image_url=f"/v1/images/{c.image.id}/file",
                provenance=[provenance(p, c.image.id) for p in c.image.provenance],
            )
            for c in m.copies
        ],
    )


def source(s: Source) -> SourceOut:
    return SourceOut(
        name=s.name,
        description=s.description,
        controller=s.controller,
        contact=s.contact,
        lawful_basis=s.lawful_basis,
        special_category_condition=s.special_category_condition,
        jurisdictions=list(s.jurisdictions),
        retention_days=s.retention_days,
        legal_hold=s.legal_hold,
        group_people=s.group_people,
        created_at=s.created_at,
        updated_at=s.updated_at,
        images=s.counts.get("images", 0),
        faces=s.counts.get("faces", 0),
    )


def key(k: KeyInfo) -> KeyOut:
    return KeyOut(
        key_id=k.key_id,
        name=k.name,
        role=k.role.value,
        created_at=k.created_at,
        revoked_at=k.revoked_at,
        active=k.active,
    )
