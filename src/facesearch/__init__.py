"""facesearch: search photo collections you lawfully hold by face."""

from facesearch.config import Settings, load_settings
from facesearch.domain import BoundingBox, Match, ModelId, Provenance, SearchResult
from facesearch.engine import FaceSearch
from facesearch.errors import (
    BackendUnavailable,
    ConfigError,
    FacesearchError,
    InvalidInput,
    ModelMismatch,
    NoFaceFound,
    NotFound,
    PermissionDenied,
)

__all__ = [
    "BackendUnavailable",
    "BoundingBox",
    "ConfigError",
    "FaceSearch",
    "FacesearchError",
    "InvalidInput",
    "Match",
    "ModelId",
    "ModelMismatch",
    "NoFaceFound",
    "NotFound",
    "PermissionDenied",
    "Provenance",
    "SearchResult",
    "Settings",
    "load_settings",
]
