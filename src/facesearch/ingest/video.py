"""Video evidence: frames sampled at a set rate (PyAV, which ships FFmpeg), faces tracked
across neighbouring samples, and one frame kept per appearance (and per
``seconds_per_face`` of a long one), so that a person on screen for a minute is a few
indexed faces, not a hundred.

A sampled face continues the track whose last face it resembles most (cosine similarity
at least ``track_similarity``), if that track was seen within two sample steps; otherwise
it starts one. Each track keeps, per window, its best face (largest box times detector
score). The kept frames are ingested as images whose copy names the video and the moment
(``Provenance.video``, ``video_time``), so every rule for photos (audit, retention,
objections, erasure) applies to them unchanged.

Limits (``[video]``): duration, sampled frames and decode time; a video over one, or one
that cannot be decoded, is refused with the reason, and the ingest goes on.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from facesearch.domain import BoundingBox
from facesearch.errors import InvalidInput
from facesearch.vision.ports import FaceDetector, FaceEmbedder

RGB = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class VideoRules:
    sample_fps: float
    max_seconds: float
    max_frames: int
    max_decode_seconds: float
    seconds_per_face: float
    track_similarity: float
    max_pixels: int
    min_face: int = 20


@dataclass
class Appearance:
    """One kept face: the frame it is in and when."""

    track: int
    time: float
    box: BoundingBox
    quality: float
    frame: RGB


@dataclass
class _Track:
    id: int
    last_seen: float
    vector: npt.NDArray[np.float32]
    best: dict[int, Appearance] = field(default_factory=dict)  # window -> best face
    start: float = 0.0


@dataclass
class VideoScan:
    appearances: list[Appearance]
    duration: float
    frames_decoded: int
    frames_sampled: int
    faces_detected: int
    tracks: int
    seconds: float


@dataclass
class Decoded:
    frames: int = 0


def sample_frames(
    path: Path,
    rules: VideoRules,
    clock: Callable[[], float] = time.monotonic,
    decoded: Decoded | None = None,
) -> Iterator[tuple[float, RGB]]:
    """(time in seconds, RGB pixels) every 1/sample_fps seconds; ``decoded`` counts every
    frame decoded on the way."""
    count = decoded if decoded is not None else Decoded()
    import av

    started = clock()
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise InvalidInput(f"cannot read the video: {exc}") from None
    with container:
        if not container.streams.video:
            raise InvalidInput("the file holds no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration and stream.time_base
            else (container.duration or 0) / 1_000_000
        )
        if duration > rules.max_seconds:
            raise InvalidInput(
                f"the video lasts {duration:.0f} s, over the limit of {rules.max_seconds:.0f} s "
                "(video.max_seconds)"
            )
        step, due, sampled = 1.0 / rules.sample_fps, 0.0, 0
        at = 0.0
        try:
            for frame in container.decode(stream):
                count.frames += 1
                if clock() - started > rules.max_decode_seconds:
                    raise InvalidInput(
                        f"decoding took over {rules.max_decode_seconds:.0f} s "
                        "(video.max_decode_seconds)"
                    )
                if frame.time is None:
                    continue
                at = float(frame.time)
                if at > rules.max_seconds:
                    raise InvalidInput(
                        f"the video runs past {rules.max_seconds:.0f} s (video.max_seconds)"
                    )
                if at + 1e-6 < due:
                    continue
                due = at + step
                sampled += 1
                if sampled > rules.max_frames:
                    raise InvalidInput(
                        f"over {rules.max_frames} sampled frames (video.max_frames); lower "
                        "video.sample_fps or split the video"
                    )
                if frame.width * frame.height > rules.max_pixels:
                    raise InvalidInput(
                        f"frames of {frame.width}x{frame.height} are over the pixel limit"
                    )
                yield at, np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        except av.FFmpegError as exc:
            raise InvalidInput(f"the video is damaged after {at:.1f} s: {exc}") from None


def scan_video(
    path: Path,
    rules: VideoRules,
    detector: FaceDetector,
    embedder: FaceEmbedder,
    clock: Callable[[], float] = time.monotonic,
) -> VideoScan:
    """Sample, detect, embed and track; the faces to keep, with counts for the report."""
    started = clock()
    active: list[_Track] = []
    done: list[_Track] = []
    gap = 2.0 / rules.sample_fps + 1e-6
    sampled = detected = 0
    last = 0.0
    decoded = Decoded()
    for at, rgb in sample_frames(path, rules, clock, decoded):
        sampled += 1
        last = at
        still = [t for t in active if at - t.last_seen <= gap]
        done += [t for t in active if at - t.last_seen > gap]
        active = still
        faces = [f for f in detector.detect_faces(rgb) if f.box.width >= rules.min_face]
        if not faces:
            continue
        detected += len(faces)
        vectors = embedder.embed_faces(rgb, faces)
        taken: set[int] = set()
        for face, vector in zip(faces, vectors, strict=True):
            sims = [(float(t.vector @ vector), i) for i, t in enumerate(active) if i not in taken]
            best = max(sims, default=(-1.0, -1))
            if best[0] >= rules.track_similarity:
                track = active[best[1]]
                taken.add(best[1])
            else:
                track = _Track(id=len(done) + len(active), last_seen=at, vector=vector, start=at)
                active.append(track)
                taken.add(len(active) - 1)
            track.last_seen, track.vector = at, vector
            window = int((at - track.start) // rules.seconds_per_face)
            quality = face.box.width * face.box.height * max(face.score, 0.01)
            kept = track.best.get(window)
            if kept is None or quality > kept.quality:
                track.best[window] = Appearance(track.id, at, face.box, quality, rgb)
    tracks = done + active
    appearances = sorted(
        (a for t in tracks for a in t.best.values()), key=lambda a: (a.time, a.track)
    )
    return VideoScan(
        appearances=appearances,
        duration=last,
        frames_decoded=decoded.frames,
        frames_sampled=sampled,
        faces_detected=detected,
        tracks=len(tracks),
        seconds=clock() - started,
    )


def frame_jpeg(frame: RGB) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()
