"""Settings, read once at an entry point and passed down.

Precedence, highest first: explicit arguments (CLI flags), environment variables
(``FACESEARCH_``, nested with ``__``, e.g. ``FACESEARCH_LIMITS__MAX_PIXELS``), the
``facesearch.toml`` file in the working directory (or ``FACESEARCH_CONFIG``), defaults.
Every setting is listed in docs/configuration.md (a test checks it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# Set from measurement on ../shared/data/faces-dev by bench/calibrate_threshold.py (see
# docs/benchmarks.md): over 514,501 different-person pairs within one source, 0.082% score
# at or above 0.93 with RetinaFace, the default detector (false match rate ~1e-3; HOG
# 0.079%); 82.2% of same-person pairs do (97.1% on LFW photos, 80% on tight 112-px crops).
# Raise it for fewer false leads, lower it to miss less.
DEFAULT_MATCH_THRESHOLD = 0.93
# Grouping joins faces strongest edge first with no way back, so it asks more than a
# search's "likely match" (bench/people_cluster.py measured it on the dev set).
PEOPLE_THRESHOLD = 0.95
# Where a false match costs a person their data or privacy (access requests, erasure by
# person, suppression), a stricter threshold: fewer false matches, more missed ones.
STRICT_MATCH_THRESHOLD = 0.95


class Limits(BaseModel):
    """What a single input file may cost before it is refused."""

    max_bytes: int = Field(50 * 1024 * 1024, gt=0, description="Largest file accepted, in bytes.")
    max_pixels: int = Field(
        60_000_000, gt=0, description="Largest image accepted, in pixels (decompression bombs)."
    )
    max_archive_files: int = Field(
        10_000, gt=0, description="Most files one uploaded zip may hold (web and API ingest)."
    )
    max_archive_bytes: int = Field(
        2 * 1024**3,
        gt=0,
        description="Most bytes one uploaded zip may unpack to, in all (zip bombs).",
    )


class OnnxEmbedderSettings(BaseModel):
    """An operator's own recognition model (``faces.embedder = "onnx"``): an ONNX file
    taking aligned RGB chips (N x 3 x size x size, or N x size x size x 3) and giving one
    vector per chip. Its name and version become the home's model id."""

    path: Path | None = Field(None, description="The model's .onnx file.")
    name: str | None = Field(None, description="Model name (part of the home's model id).")
    version: str | None = Field(None, description="Model version (part of the model id).")
    input_size: int = Field(112, ge=16, le=1024, description="Side of the aligned chip, px.")
    mean: list[float] = Field(
        default_factory=lambda: [127.5, 127.5, 127.5],
        min_length=1,
        max_length=3,
        description="Subtracted from each RGB channel (one value: all three).",
    )
    std: list[float] = Field(
        default_factory=lambda: [127.5, 127.5, 127.5],
        min_length=1,
        max_length=3,
        description="Each RGB channel is divided by this after the mean (one value: all).",
    )
    dim: int = Field(512, gt=0, le=65536, description="Length of the model's output vector.")


class Faces(BaseModel):
    """Which models find and embed faces, and which detected faces are indexed."""

    max_per_image: int = Field(64, gt=0, description="Faces indexed per image; the rest skipped.")
    min_size: int = Field(20, ge=0, description="Smallest face indexed (shorter box side, px).")
    min_sharpness: float = Field(
        2.0, ge=0, description="Faces blurrier than this (Laplacian variance of the chip) skipped."
    )
    upsample: int = Field(1, ge=0, le=3, description="HOG detector upsampling for small images.")
    flip_average: bool = Field(True, description="Average each embedding with its mirror image.")
    detector: str = Field(
        "retinaface",
        description="Face detector, by name (vision/registry.py); an existing home keeps its own.",
    )
    # 0.85: on the dev photos, the lowest round score with no false face (a painting behind
    # Biden scores 0.83; gravel 0.57), all 37 CompreFace people and 23 faces on the crowd.
    min_score: float = Field(
        0.85, ge=0, le=1, description="RetinaFace: face probability below which a box is dropped."
    )
    detect_max_side: int = Field(
        1280, ge=64, description="RetinaFace: larger images are searched on a copy this long."
    )
    embedder: str = Field(
        "dlib-resnet-onnx", description="Face embedder, by name (vision/registry.py)."
    )
    batch_images: int = Field(
        4,
        gt=0,
        le=1024,
        description="Images an ingest worker analyses as one job: their faces, and mirrors, "
        "go through the embedder in one batch (raise it on a GPU).",
    )
    onnx: OnnxEmbedderSettings = Field(default_factory=OnnxEmbedderSettings)
    threads: int = Field(
        1, gt=0, le=64, description="CPU threads of each ONNX Runtime model (per worker)."
    )


class Search(BaseModel):
    threshold: float = Field(
        DEFAULT_MATCH_THRESHOLD,
        ge=-1,
        le=1,
        description="Similarity at or above which a result counts as a likely match.",
    )
    top_k: int = Field(20, gt=0, le=10_000, description="Default number of results.")


class Governance(BaseModel):
    """Data-protection rules of this deployment."""

    require_purpose: bool = Field(
        False, description="Refuse CLI and Python searches without purpose and case reference."
    )
    api_require_purpose: bool = Field(
        True, description="Refuse API searches without purpose and case reference."
    )
    blocked_jurisdictions: list[str] = Field(
        default_factory=list,
        description="Refuse searches from requesters in these ISO 3166 jurisdictions.",
    )
    requester_jurisdiction: str | None = Field(
        None, description="Jurisdiction of CLI and Python requesters (the deployment's own)."
    )
    strict_threshold: float = Field(
        STRICT_MATCH_THRESHOLD,
        ge=-1,
        le=1,
        description="Similarity for access requests, erasure by person and suppression.",
    )
    retention_interval_minutes: int = Field(
        60, ge=0, description="How often the server runs retention (0: never)."
    )


class Api(BaseModel):
    """The HTTP API and web UI (``facesearch serve``)."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, gt=0, lt=65536, description="Port to listen on.")
    auth: bool = Field(True, description="Require an API key or a signed-in user.")
    inference_workers: int = Field(
        2, gt=0, le=64, description="Threads running decode, detect and embed."
    )
    search_rate_per_minute: float = Field(
        60, gt=0, description="Searches allowed per key (or user) per minute."
    )
    search_burst: int = Field(10, gt=0, description="Searches allowed at once before limiting.")
    ingest_rate_per_minute: float = Field(
        30, gt=0, description="Uploads (POST /v1/images) allowed per key (or user) per minute."
    )
    ingest_burst: int = Field(10, gt=0, description="Uploads allowed at once before limiting.")
    session_hours: float = Field(12, gt=0, description="How long a web sign-in lasts.")
    secure_cookies: bool = Field(
        True, description="Mark session cookies Secure (HTTPS or localhost only)."
    )
    thumbnail_cache_bytes: int = Field(
        32 * 1024 * 1024, ge=0, description="Memory kept for face thumbnails."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For / -Proto are believed "
        "(none: the connecting address is the client).",
    )
    docs: bool = Field(
        False, description="Serve Swagger UI (/docs) and ReDoc (/redoc); they load from a CDN."
    )
    header_timeout_seconds: float = Field(
        10, gt=0, description="Close a connection whose request head is not complete by then."
    )
    max_connections: int = Field(
        500, gt=0, description="Open connections served at once; beyond it, 503."
    )


class CatalogSettings(BaseModel):
    """Where the catalog (images, faces, embeddings, sources) is kept."""

    url: str | None = Field(
        None,
        description="Catalog URL, sqlite://PATH or postgresql://USER@HOST:PORT/DB "
        "(default: sqlite://<home>/catalog.sqlite).",
    )


class IndexSettings(BaseModel):
    """Which vector index answers searches; see docs/index.md for how these were measured."""

    url: str | None = Field(
        None,
        description="Index URL, local://PATH (default: local://<home>/index) or "
        "milvus://HOST:PORT/COLLECTION[?index=IVF_SQ8&nlist=1024&nprobe=64].",
    )
    kind: Literal["auto", "exact", "ann"] = Field(
        "auto", description="auto: exact below ann_threshold faces, approximate above."
    )
    ann_threshold: int = Field(
        200_000, gt=0, description="Faces at which auto switches from exact to approximate."
    )
    nprobe: int = Field(
        0,
        ge=0,
        description="IVF cells scanned per query (0: nlist/512, 32 to 128); more: slower, surer.",
    )
    rerank_margin: int = Field(
        10, ge=0, description="Approximate candidates beyond k re-scored exactly per query."
    )
    compact_fraction: float = Field(
        0.05, gt=0, le=1, description="Share of removed faces that triggers compaction."
    )


class Video(BaseModel):
    """Video files: how often frames are sampled, and what one video may cost."""

    sample_fps: float = Field(2.0, gt=0, le=60, description="Frames analysed per second.")
    max_seconds: float = Field(4 * 3600, gt=0, description="Longest video accepted (seconds).")
    max_frames: int = Field(20_000, gt=0, description="Most frames analysed in one video.")
    max_decode_seconds: float = Field(
        1800, gt=0, description="Longest time spent decoding one video before it is refused."
    )
    seconds_per_face: float = Field(
        10.0, gt=0, description="A face on screen longer than this is indexed once per period."
    )
    track_similarity: float = Field(
        0.9,
        ge=-1,
        le=1,
        description="Similarity a face needs to the last face of a track to continue it.",
    )


class People(BaseModel):
    """Grouping faces into persons (only sources whose policy declares it: group_people)."""

    threshold: float = Field(
        PEOPLE_THRESHOLD,
        ge=-1,
        le=1,
        description="Similarity two faces need to be joined into one person. Higher: fewer "
        "different people merged, more of one person's faces left in a second group.",
    )
    neighbours: int = Field(10, gt=0, le=200, description="Nearest faces each face is linked to.")
    min_faces: int = Field(2, gt=0, description="Faces a new person needs; fewer stay ungrouped.")


class Settings(BaseSettings):
    """Everything facesearch can be told."""

    model_config = SettingsConfigDict(
        env_prefix="FACESEARCH_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = Field(Path("facesearch-data"), description="Directory holding catalog and index.")
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, gt=0, description="Ingest worker processes."
    )
    executor: str = Field(
        "local",
        description="Runs ingest analysis: local (this process, or worker processes), threads, "
        "ray (the Ray cluster named by cluster).",
    )
    cluster: str | None = Field(
        None,
        description="Ray cluster that runs ingest analysis: auto (the Ray of this machine) or "
        "ray://HOST:PORT; setting it selects the ray executor.",
    )
    limits: Limits = Field(default_factory=Limits)
    faces: Faces = Field(default_factory=Faces)
    search: Search = Field(default_factory=Search)
    governance: Governance = Field(default_factory=Governance)
    people: People = Field(default_factory=People)
    video: Video = Field(default_factory=Video)
    encryption_key: SecretStr | None = Field(
        None,
        description="Base64 32-byte key for encryption at rest of templates and crops. "
        "Set it in the environment (FACESEARCH_ENCRYPTION_KEY), never in the home directory.",
    )
    audit_key: SecretStr | None = Field(
        None,
        description="Base64 32-byte key: the audit log's entries become HMACs that no one "
        "without it can forge. Set it in the environment (FACESEARCH_AUDIT_KEY), never in the "
        "home directory.",
    )
    api: Api = Field(default_factory=Api)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("FACESEARCH_CONFIG", "facesearch.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


def load_settings(**overrides: Any) -> Settings:
    """Settings with explicit values (None means "not given") on top of env and file."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
