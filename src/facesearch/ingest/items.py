"""What to ingest: folders (recursive), single files, and manifests (CSV or JSON Lines)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from facesearch.errors import InvalidInput

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff"}
)
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl", ".ndjson"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".3gp", ".ts"}
)
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
MANIFEST_FIELDS = ("path", "source_url", "page_url", "captured_at")
URL_FIELDS = ("source_url", "page_url")


@dataclass(frozen=True, slots=True)
class IngestItem:
    """One file to ingest and the provenance that comes with it.

    ``origin`` is the manifest row it came from (``manifest.csv:12``), named in its
    failure if it fails. ``problem`` is set for a row that cannot be used (no path, a URL
    that is not http(s), a line that is not JSON): the ingest reports it as a failure and
    goes on with the other rows.
    """

    path: Path
    source_url: str | None = None
    page_url: str | None = None
    captured_at: str | None = None
    origin: str | None = None
    problem: str | None = None
    video: str | None = None  # a frame taken from this video ...
    video_time: float | None = None  # ... at this moment (seconds)


def http_url(value: str | None, field: str) -> str | None:
    """``value`` if it is an http(s) URL, None if empty; anything else is refused.

    Provenance URLs are shown as links (web UI, access reports), so ``javascript:``,
    ``file:``, ``ftp:`` or a bare word must never be stored as one.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        raise InvalidInput(f"{field} must be an http(s) URL")
    return value


def iter_items(paths: Sequence[str | Path]) -> Iterator[IngestItem]:
    """Expand the command line's PATHs into items, in a stable order."""
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_dir():
            for file in image_files(path):
                yield IngestItem(path=file)
        elif path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
            yield from read_manifest(path)
        elif path.exists():
            yield IngestItem(path=path)
        else:
            raise InvalidInput(f"no such file or directory: {path}")


def image_files(folder: Path) -> list[Path]:
    """The image (and video) files under ``folder``, sorted, following symlinked folders.

    A folder reached twice (two links to it, or a link back up the tree: a loop) is
    walked once.
    """
    seen: set[tuple[int, int]] = set()
    found: list[Path] = []
    for where, dirs, files in os.walk(folder, followlinks=True):
        try:
            st = os.stat(where)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        found += (
            p
            for name in files
            if (p := Path(where) / name).suffix.lower() in MEDIA_SUFFIXES and p.is_file()
        )
    return sorted(found)


def read_manifest(path: Path) -> Iterator[IngestItem]:
    """Rows of a CSV or JSON Lines manifest; relative paths are relative to the manifest.

    A row that cannot be used becomes an item with a ``problem``; a manifest that cannot
    be read at all (not UTF-8, no 'path' column) is refused whole.
    """
    try:
        yield from _manifest_rows(path)
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: a manifest must be UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the manifest ({exc.strerror})") from None


def _manifest_rows(path: Path) -> Iterator[IngestItem]:
    base = path.parent
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "path" not in reader.fieldnames:
                raise InvalidInput(f"{path}: a manifest needs a 'path' column")
            for row in reader:
                # the reader's line number, not a count of rows: a quoted field may span lines
                yield _item(base, row, f"{path}:{reader.line_num}")
    else:
        with open(path, encoding="utf-8") as fh:
            for line, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                where = f"{path}:{line}"
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    yield _bad(where, f"not valid JSON ({exc.msg})")
                    continue
                if not isinstance(row, dict):
                    yield _bad(where, "each line must be a JSON object")
                    continue
                yield _item(base, row, where)


def _item(base: Path, row: dict[str, object], where: str) -> IngestItem:
    raw = row.get("path")
    if not raw or not isinstance(raw, str):
        return _bad(where, "'path' is missing")
    file = Path(raw)
    file = file if file.is_absolute() else base / file
    values = {k: _text(row.get(k)) for k in MANIFEST_FIELDS[1:]}
    try:
        for field in URL_FIELDS:
            values[field] = http_url(values[field], field)
    except InvalidInput as exc:
        return IngestItem(path=file, origin=where, problem=f"{exc}, not {values[field]!r:.80}")
    return IngestItem(
        path=file,
        origin=where,
        source_url=values["source_url"],
        page_url=values["page_url"],
        captured_at=values["captured_at"],
    )


def _bad(where: str, problem: str) -> IngestItem:
    # No usable file path: the row itself ("manifest.csv:3") stands for it in the report.
    return IngestItem(path=Path(where), problem=problem)


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
