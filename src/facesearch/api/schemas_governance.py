"""The documented shapes of the data-protection endpoints: sources, removals, requests, audit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from facesearch.api.schemas import MatchOut, ProbeFaceOut
from facesearch.governance.audit import AuditEntry
from facesearch.governance.erasure import Receipt
from facesearch.governance.policy import ART6_BASES, ART9_CONDITIONS

LawfulBasis = Literal[
    "consent", "contract", "legal_obligation", "vital_interests", "public_task",
    "legitimate_interests",
]  # fmt: skip
Condition = Literal[
    "explicit_consent", "employment_social_security", "vital_interests", "not_for_profit",
    "manifestly_public", "legal_claims", "substantial_public_interest", "health_social_care",
    "public_health", "archiving_research",
]  # fmt: skip
SOURCE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
Jurisdiction = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?$")]
SourceName = Annotated[str, StringConstraints(pattern=SOURCE_NAME)]

# The lists are the engine's: the schema's enums must not drift from them.
assert set(LawfulBasis.__args__) == set(ART6_BASES)  # type: ignore[attr-defined]
assert set(Condition.__args__) == set(ART9_CONDITIONS)  # type: ignore[attr-defined]


class SourceCreate(BaseModel):
    name: SourceName = Field(description="Letters, digits, '.', '_', '-' (at most 100).")
    lawful_basis: LawfulBasis = Field(description="The GDPR Art. 6(1) basis.")
    special_category_condition: Condition = Field(description="The Art. 9(2) condition.")
    retention_days: int = Field(ge=1, le=365_000, description="How long images are kept.")
    description: str = Field("", max_length=2000)
    controller: str = Field("", max_length=500, description="Who decides why and how.")
    contact: str = Field("", max_length=500, description="Where data subjects write.")
    jurisdictions: list[Jurisdiction] = Field(
        default_factory=list, max_length=300, description="ISO 3166 codes of the people in it."
    )
    legal_hold: bool = Field(False, description="Suspends retention.")
    group_people: bool = Field(
        False, description="Declares grouping its faces into persons as a purpose (profiling)."
    )


class SourceUpdate(BaseModel):
    """Only the fields sent are changed."""

    lawful_basis: LawfulBasis | None = None
    special_category_condition: Condition | None = None
    retention_days: int | None = Field(None, ge=1, le=365_000)
    description: str | None = Field(None, max_length=2000)
    controller: str | None = Field(None, max_length=500)
    contact: str | None = Field(None, max_length=500)
    jurisdictions: list[Jurisdiction] | None = Field(None, max_length=300)
    legal_hold: bool | None = None
    group_people: bool | None = None

    def changes(self) -> dict[str, Any]:
        out = {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}
        if "jurisdictions" in out:
            out["jurisdictions"] = tuple(sorted({j.upper() for j in out["jurisdictions"]}))
        return out


class Choice(BaseModel):
    code: str
    label: str


class LawfulBasesOut(BaseModel):
    lawful_bases: list[Choice] = Field(description="GDPR Art. 6(1) bases.")
    special_category_conditions: list[Choice] = Field(description="GDPR Art. 9(2) conditions.")


class ReceiptOut(BaseModel):
    """Proof of a removal: counts, ids and file hashes, never biometric data."""

    receipt_id: str = Field(description="Empty for a dry run.")
    action: str
    scope: dict[str, Any]
    at: str
    dry_run: bool
    provenance_removed: int
    images_removed: int
    faces_removed: int
    image_ids: list[int]
    image_sha256: list[str]
    face_ids: list[int]
    files_deleted: int
    index_erased_at: str | None = Field(
        None,
        description="When the vector index finished rewriting its storage without the "
        "removed faces (Milvus's compaction); null when the index erases at once.",
    )


class ErasureIn(BaseModel):
    image_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(
        default_factory=list, max_length=10_000
    )
    sources: list[SourceName] = Field(default_factory=list, max_length=1000)
    jurisdiction: Jurisdiction | None = Field(
        None, description="Every source whose people include it."
    )
    dry_run: bool = Field(False, description="Report what would go; remove nothing.")
    reason: str = Field("", max_length=1000, description="Kept in the receipt and the log.")


class ReviewOut(BaseModel):
    threshold: float = Field(description="Only matches at or above it are listed.")
    face: int
    probe_faces: list[ProbeFaceOut]
    matches: list[MatchOut]


class SuppressionOut(BaseModel):
    id: int
    consent_ref: str
    note: str
    created_at: str


class SuppressionsPage(BaseModel):
    items: list[SuppressionOut]


class AccessCopy(BaseModel):
    source: str
    controller: str
    contact: str
    lawful_basis: str
    special_category_condition: str
    source_url: str | None
    page_url: str | None
    captured_at: str | None
    collected_at: str | None
    kept_until: str | None
    legal_hold: bool


class AccessImage(BaseModel):
    image_id: int
    similarity: float | None = Field(description="Null when matched by URL.")
    face_box: dict[str, int] | None = Field(description="The matched face; null by URL.")
    faces_stored: int = Field(description="Faces (and templates) kept from this image.")
    image_sha256: str
    copies: list[AccessCopy]


class AccessByUrlIn(BaseModel):
    url: str = Field(
        min_length=1,
        max_length=2048,
        description="An http(s) address where the person's photos were published.",
    )
    match: Literal["exact", "prefix"] = Field(
        "exact",
        description="exact: that page (scheme and host case, a default port and trailing "
        "slashes ignored); prefix: every page under it, at a path-segment boundary "
        "(a profile, a site).",
    )


class AccessReportOut(BaseModel):
    request_id: str
    generated_at: str
    matched_by: Literal["photo", "url-exact", "url-prefix"]
    url: str | None = Field(description="The address asked about (normalised); null by photo.")
    threshold: float | None = Field(description="Null when matched by URL.")
    model: str
    images_found: int
    images: list[AccessImage]
    your_rights: list[str]
    note: str


class AuditPage(BaseModel):
    items: list[AuditEntry]  # the log's own record: one definition for both
    next_cursor: str | None


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    problem: str | None
    seq: int | None = Field(description="Where the first problem is.")
    keyed_from: int | None = Field(
        default=None, description="The first entry protected by the audit key (null: unkeyed)."
    )
    warning: str | None = Field(
        default=None, description="What an intact result does not prove (an unkeyed chain)."
    )
    head_seq: int | None
    head_hash: str | None


class Removed(BaseModel):
    images: int
    faces: int


class ReportSource(BaseModel):
    name: str
    description: str
    controller: str
    contact: str
    lawful_basis: str
    special_category_condition: str
    jurisdictions: list[str]
    retention_days: int
    legal_hold: bool
    group_people: bool = Field(description="Its faces are grouped into persons (declared).")
    images: int
    faces: int


class ReportOut(BaseModel):
    period: dict[str, str | None]
    sources: list[ReportSource]
    searches_by_purpose: dict[str, int]
    searches: int
    erasures: int
    erased: Removed
    retention_runs: int
    expired: Removed
    access_requests: int
    suppressions_added: int
    suppressions_on_file: int
    people_grouping_runs: int = Field(description="Runs grouping faces into persons.")
    persons: int = Field(description="Persons held now (sources that declare grouping).")


def receipt(r: Receipt) -> ReceiptOut:
    return ReceiptOut.model_validate(r.as_dict())
