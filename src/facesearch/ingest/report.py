"""The ingest report: what was added, what was skipped and why, in numbers and in rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class IngestReport:
    source: str
    files: int = 0
    images_added: int = 0
    copies_added: int = 0  # known content seen under a new path or source: provenance only
    unchanged: int = 0  # already ingested from this very path: nothing to do
    faces_indexed: int = 0
    faces_skipped: int = 0
    faces_suppressed: int = 0
    images_without_faces: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped_faces: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    videos: int = 0
    video_seconds: float = 0.0  # of footage
    video_frames_decoded: int = 0
    video_frames_analysed: int = 0
    video_faces_detected: int = 0  # in every analysed frame
    video_faces_kept: int = 0  # one per appearance (per seconds_per_face): indexed

    @property
    def images_per_second(self) -> float:
        done = self.images_added + self.copies_added + self.unchanged + len(self.failed)
        return done / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failures"] = len(self.failed)
        data["images_per_second"] = round(self.images_per_second, 2)
        data["seconds"] = round(self.seconds, 3)
        return data
