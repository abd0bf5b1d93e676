"""Ingest jobs: photos, zipped folders and manifests uploaded together, ingested in the
background while the web page polls the job for its progress.

The upload is checked whole before the job starts: a file that is neither an image, a zip
nor a manifest, or a zip that breaks a rule of ``ingest.archive``, refuses the request and
nothing is stored. The job then moves each file into the home's ``uploads/`` (named by
content, as a single upload is, so erasure finds it by hash), ingests a few files at a
time under the engine's lock (searches go on between), and removes again every file that
failed: only what is in the catalog stays on disk.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from facesearch.api.gateway import Gateway
from facesearch.domain import Requester
from facesearch.errors import InvalidInput
from facesearch.ingest.analyse import sha256_of
from facesearch.ingest.archive import ArchiveLimits, Member, is_zip, unpack_zip
from facesearch.ingest.items import (
    MANIFEST_SUFFIXES,
    MEDIA_SUFFIXES,
    IngestItem,
    read_manifest,
)
from facesearch.ingest.report import IngestReport

# Files ingested per hold of the engine's lock: searches wait at most this many files.
CHUNK_FILES = 8
# Finished jobs kept for their pages to read (oldest forgotten first).
KEEP_JOBS = 200
STAGING = ".staging"


@dataclass
class Staged:
    """An upload checked and laid out in the staging folder, ready to ingest."""

    items: list[IngestItem]
    folder: Path


@dataclass
class IngestJob:
    id: str
    source: str
    owner: str  # the caller's rate key: only they (or an admin) read the job
    files: int
    state: str = "queued"  # queued, running, done, failed
    done: int = 0
    report: IngestReport | None = None
    failed: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def as_dict(self) -> dict[str, Any]:
        r = self.report or IngestReport(source=self.source)
        return {
            "id": self.id,
            "source": self.source,
            "state": self.state,
            "files": self.files,
            "done": self.done,
            "images_added": r.images_added,
            "copies_added": r.copies_added,
            "unchanged": r.unchanged,
            "faces_indexed": r.faces_indexed,
            "images_without_faces": r.images_without_faces,
            "failed": list(self.failed),
            "error": self.error,
            "seconds": round((self.finished or time.time()) - self.started, 3),
        }


class IngestJobs:
    """The jobs of one app: run one at a time on a background thread, kept in memory."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, IngestJob] = OrderedDict()
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()

    def get(self, job_id: str) -> IngestJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def start(
        self, gw: Gateway, staged: Staged, source: str, owner: str, who: Requester
    ) -> IngestJob:
        job = IngestJob(id=uuid.uuid4().hex, source=source, owner=owner, files=len(staged.items))
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP_JOBS:
                self._jobs.popitem(last=False)
        thread = threading.Thread(
            target=self._run, args=(gw, job, staged, who), name=f"ingest-{job.id}", daemon=True
        )
        thread.start()
        return job

    def _run(self, gw: Gateway, job: IngestJob, staged: Staged, who: Requester) -> None:
        with self._one_at_a_time:
            job.state = "running"
            try:
                run_job(gw, job, staged, who)
                job.state = "done"
            except Exception as exc:  # the page shows it; the files were cleaned up
                job.error = str(exc) or type(exc).__name__
                job.state = "failed"
            finally:
                shutil.rmtree(staged.folder, ignore_errors=True)
                job.finished = time.time()


def run_job(gw: Gateway, job: IngestJob, staged: Staged, who: Requester) -> None:
    uploads = Path(gw.engine.home) / "uploads"
    total = IngestReport(source=job.source)
    job.report = total
    for start in range(0, len(staged.items), CHUNK_FILES):
        chunk = [_keep(item, uploads) for item in staged.items[start : start + CHUNK_FILES]]
        shown = {str(i.path): i.origin or i.path.name for i in chunk}

        def progress(report: IngestReport, done: int, offset: int = start) -> None:
            job.done = min(offset + done, job.files)

        report = gw.ingest_items(chunk, job.source, progress, who)
        _add(total, report)
        for failure in report.failed:
            file = shown.get(failure["path"], failure["path"])
            reason = failure["reason"].removeprefix(f"{file}: ")
            job.failed.append({"file": file, "path": failure["path"], "reason": reason})
            _discard(gw, Path(failure["path"]), uploads)
        job.done = min(start + len(chunk), job.files)


def _keep(item: IngestItem, uploads: Path) -> IngestItem:
    """The item with its file moved from staging into ``uploads/<sha256>-<name>``."""
    if item.problem is not None:
        return item
    try:
        data = item.path.read_bytes()
    except OSError:
        return item  # the ingest reports it (the manifest named a file not sent)
    final = uploads / f"{sha256_of(data)}-{safe_name(item.path.name)}"
    uploads.mkdir(parents=True, exist_ok=True)
    if final.exists():
        item.path.unlink()
    else:
        os.replace(item.path, final)
    return replace(item, path=final)


def _discard(gw: Gateway, path: Path, uploads: Path) -> None:
    """Remove a failed file from ``uploads/`` unless the catalog holds it (an earlier
    upload of the same content)."""
    if path.parent != uploads or not path.exists():
        return
    if not gw.kept(path, sha256_of(path.read_bytes())):
        path.unlink(missing_ok=True)


def _add(total: IngestReport, part: IngestReport) -> None:
    for name in (
        "files",
        "images_added",
        "copies_added",
        "unchanged",
        "faces_indexed",
        "faces_skipped",
        "faces_suppressed",
        "images_without_faces",
    ):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.failed += part.failed
    total.seconds += part.seconds


def safe_name(name: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", name)[-100:].lstrip(".")
    return base or "upload"


# -- checking and laying out an upload ------------------------------------------------
def stage_upload(files: list[tuple[str, bytes]], home: Path, limits: ArchiveLimits) -> Staged:
    """Lay out uploaded ``(filename, bytes)`` pairs in a new staging folder under the
    home's ``uploads/``: images as they are, zips unpacked, manifests read (their paths
    may only name files of this upload). InvalidInput, with nothing left behind, for a
    file that is none of these or a zip that cannot be unpacked safely."""
    folder = home / "uploads" / STAGING / uuid.uuid4().hex
    loose = folder / "files"
    loose.mkdir(parents=True)
    try:
        return _stage(files, folder, loose, limits)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _stage(
    files: list[tuple[str, bytes]], folder: Path, loose: Path, limits: ArchiveLimits
) -> Staged:
    images: list[IngestItem] = []
    manifests: list[Path] = []
    for n, (raw_name, data) in enumerate(files):
        name = safe_name(Path(raw_name).name)
        suffix = Path(name).suffix.lower()
        if is_zip(data[:4]):
            archive = folder / f"archive-{n}.zip"
            archive.write_bytes(data)
            members = unpack_zip(archive, folder / f"zip-{n}", limits)
            archive.unlink()
            images += _zip_items(raw_name, members, manifests)
        elif suffix in MANIFEST_SUFFIXES:
            target = _unique(loose / name)
            target.write_bytes(data)
            manifests.append(target)
        elif suffix in MEDIA_SUFFIXES:
            target = _unique(loose / name)
            target.write_bytes(data)
            images.append(IngestItem(path=target, origin=raw_name))
        else:
            raise InvalidInput(
                f"{raw_name!r} is not an image, a video, a zip or a manifest (.csv, .jsonl); "
                "nothing was stored"
            )
    named: list[IngestItem] = []
    for manifest in manifests:
        shown = manifest.relative_to(folder).as_posix()
        for item in read_manifest(manifest):
            named.append(_confined(item, folder, shown))
    listed = {i.path.resolve() for i in named if i.problem is None}
    # A file a manifest names is ingested once, with the manifest's provenance.
    rest = [i for i in images if i.path.resolve() not in listed]
    return Staged(items=rest + named, folder=folder)


def _zip_items(zip_name: str, members: list[Member], manifests: list[Path]) -> list[IngestItem]:
    items: list[IngestItem] = []
    for m in members:
        origin = f"{zip_name}/{m.name}"
        suffix = Path(m.name).suffix.lower()
        if m.path is not None and suffix in MANIFEST_SUFFIXES:
            manifests.append(m.path)
        elif m.path is None or suffix not in MEDIA_SUFFIXES:
            why = m.problem or f"not an image file ({suffix or 'no suffix'})"
            if m.path is not None:
                m.path.unlink()
            items.append(IngestItem(path=Path(origin), origin=origin, problem=why))
        else:
            items.append(IngestItem(path=m.path, origin=origin))
    return items


def _confined(item: IngestItem, folder: Path, manifest: str) -> IngestItem:
    """A manifest row may only name a file sent in the same upload, never one elsewhere
    on the server. Rows are named as the uploader knows them (no staging folder)."""

    def shown(text: str) -> str:
        return text.replace(str(folder) + os.sep, "")

    origin = shown(item.origin) if item.origin else None
    if item.problem is not None:
        return replace(item, path=Path(shown(str(item.path))), origin=origin)
    if not item.path.resolve().is_relative_to(folder.resolve()):
        return replace(
            item,
            path=Path(origin or manifest),
            origin=None,
            problem=f"{item.path} is outside this upload; a manifest may only name files "
            "sent with it",
        )
    return replace(item, origin=origin)


def _unique(path: Path) -> Path:
    stem, n = path, 1
    while path.exists():
        path = stem.with_name(f"{stem.stem}-{n}{stem.suffix}")
        n += 1
    return path
