"""What to ingest: folders (recursive), single files, and manifests (CSV or JSON Lines)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from facesearch.errors import InvalidInput

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff"}
)
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl", ".ndjson"})
MANIFEST_FIELDS = ("path", "source_url", "page_url", "captured_at")


@dataclass(frozen=True, slots=True)
class IngestItem:
    """One file to ingest and the provenance that comes with it."""

    path: Path
    source_url: str | None = None
    page_url: str | None = None
    captured_at: str | None = None


def iter_items(paths: Sequence[str | Path]) -> Iterator[IngestItem]:
    """Expand the command line's PATHs into items, in a stable order."""
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if file.suffix.lower() in IMAGE_SUFFIXES:
                    yield IngestItem(path=file)
        elif path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
            yield from read_manifest(path)
        elif path.exists():
            yield IngestItem(path=path)
        else:
            raise InvalidInput(f"no such file or directory: {path}")


def read_manifest(path: Path) -> Iterator[IngestItem]:
    """Rows of a CSV or JSON Lines manifest; relative paths are relative to the manifest."""
    base = path.parent
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "path" not in reader.fieldnames:
                raise InvalidInput(f"{path}: a manifest needs a 'path' column")
            for line, row in enumerate(reader, start=2):
                yield _item(base, row, f"{path}:{line}")
    else:
        with open(path, encoding="utf-8") as fh:
            for line, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{path}:{line}: not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise InvalidInput(f"{path}:{line}: each line must be a JSON object")
                yield _item(base, row, f"{path}:{line}")


def _item(base: Path, row: dict[str, object], where: str) -> IngestItem:
    raw = row.get("path")
    if not raw or not isinstance(raw, str):
        raise InvalidInput(f"{where}: 'path' is missing")
    values = {k: _text(row.get(k)) for k in MANIFEST_FIELDS[1:]}
    file = Path(raw)
    return IngestItem(path=file if file.is_absolute() else base / file, **values)


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
