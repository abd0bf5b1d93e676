"""The API's documented shapes (they make the OpenAPI document) and how records become them."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, Field

from facesearch.accounts.ports import KeyInfo
from facesearch.domain import BoundingBox, FaceRecord, ImageRecord, Match, Provenance, Source

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


class MatchOut(BaseModel):
    rank: int
    similarity: float = Field(description="Cosine similarity, -1 to 1, higher is closer.")
    is_match: bool = Field(description="similarity >= threshold: a likely match (a lead).")
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
    image_url: str
    provenance: list[ProvenanceOut]


class SearchOut(BaseModel):
    request_id: str
    notice: str = Field(description=NOTICE)
    model: str
    threshold: float
    face: int = Field(description="Index of the probe face searched.")
    probe: ProbeOut
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


def provenance(p: Provenance) -> ProvenanceOut:
    return ProvenanceOut(
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
        provenance=[provenance(p) for p in record.provenance],
        skipped_faces=list(record.skipped_faces),
    )


def match(m: Match, rank: int, shown: Provenance | None) -> MatchOut:
    """A result row; ``shown`` is the copy to headline (one from the filtered source)."""
    first = shown or (m.image.provenance[0] if m.image.provenance else None)
    path = first.path if first else ""
    return MatchOut(
        rank=rank,
        similarity=round(m.similarity, 4),
        is_match=m.is_match,
        face_id=m.face_id,
        box=box(m.box),
        image_id=m.image.id,
        path=path,
        file_name=file_name(path),
        source=first.source if first else "",
        source_url=first.source_url if first else None,
        page_url=first.page_url if first else None,
        captured_at=first.captured_at if first else None,
        thumbnail_url=f"/v1/faces/{m.face_id}/thumbnail",
        image_url=f"/v1/images/{m.image.id}/file",
        provenance=[provenance(p) for p in m.image.provenance],
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
