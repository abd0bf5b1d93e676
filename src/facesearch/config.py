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

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# Set from measurement on ../shared/data/faces-dev (see docs/benchmarks.md): at this
# cosine similarity the measured false match rate between different people is about 1e-3.
DEFAULT_MATCH_THRESHOLD = 0.90


class Limits(BaseModel):
    """What a single input file may cost before it is refused."""

    max_bytes: int = Field(50 * 1024 * 1024, gt=0, description="Largest file accepted, in bytes.")
    max_pixels: int = Field(
        60_000_000, gt=0, description="Largest image accepted, in pixels (decompression bombs)."
    )


class Faces(BaseModel):
    """Which detected faces are indexed."""

    max_per_image: int = Field(64, gt=0, description="Faces indexed per image; the rest skipped.")
    min_size: int = Field(20, ge=0, description="Smallest face indexed (shorter box side, px).")
    min_sharpness: float = Field(
        2.0, ge=0, description="Faces blurrier than this (Laplacian variance of the chip) skipped."
    )
    upsample: int = Field(1, ge=0, le=3, description="HOG detector upsampling for small images.")
    flip_average: bool = Field(True, description="Average each embedding with its mirror image.")


class Search(BaseModel):
    threshold: float = Field(
        DEFAULT_MATCH_THRESHOLD,
        ge=-1,
        le=1,
        description="Similarity at or above which a result counts as a likely match.",
    )
    top_k: int = Field(20, gt=0, le=10_000, description="Default number of results.")


class IndexSettings(BaseModel):
    """Which vector index answers searches; see docs/index.md for how these were measured."""

    kind: Literal["auto", "exact", "ann"] = Field(
        "auto", description="auto: exact below ann_threshold faces, approximate above."
    )
    ann_threshold: int = Field(
        200_000, gt=0, description="Faces at which auto switches from exact to approximate."
    )
    nprobe: int = Field(
        0, ge=0, description="IVF cells scanned per query (0: nlist/32); more is slower, surer."
    )
    candidates: int = Field(
        100, gt=0, description="Approximate candidates re-scored exactly per query (at least k)."
    )
    compact_fraction: float = Field(
        0.05, gt=0, le=1, description="Share of removed faces that triggers compaction."
    )


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
    limits: Limits = Field(default_factory=Limits)
    faces: Faces = Field(default_factory=Faces)
    search: Search = Field(default_factory=Search)
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
