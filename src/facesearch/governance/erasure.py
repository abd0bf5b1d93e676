"""Removal that leaves nothing behind: the one path used by erasure and by retention.

Order: the catalog deletes the rows (one transaction; SQLite's secure_delete zeroes the
freed bytes), the index drops the faces and rewrites its files without them, cached files
derived from the removed faces and images are deleted, and finally the catalog is
checkpointed and vacuumed so neither the database nor its WAL holds a copy. The receipt
lists what went (counts, ids, content hashes) and no biometric data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facesearch.catalog.ports import Catalog, Removal
from facesearch.index.ports import VectorIndex


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof of a removal, safe to keep: no templates, no pixels."""

    action: str  # erasure or retention
    scope: dict[str, Any]
    at: str
    dry_run: bool
    provenance_removed: int
    images_removed: int
    faces_removed: int
    image_ids: tuple[int, ...]
    image_sha256: tuple[str, ...]
    face_ids: tuple[int, ...]
    files_deleted: int
    # When the index that held the faces finished rewriting its storage without them (a
    # server's compaction, Milvus); None when the index erases at once (local files).
    index_erased_at: str | None = None
    receipt_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def remove(
    catalog: Catalog,
    index: VectorIndex,
    provenance_ids: Sequence[int],
    *,
    action: str,
    scope: dict[str, Any],
    dry_run: bool,
    derived_files: Callable[[Removal], list[Path]],
) -> Receipt:
    """Remove provenance rows and everything that depended only on them."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    if dry_run:
        rows = catalog.describe_provenance(provenance_ids)
        # An image goes only when every one of its provenance rows goes.
        images = sorted({r["image_id"] for r in rows})
        keep = set(catalog.provenance_of(image_ids=images)) - set(provenance_ids)
        kept_images = {r["image_id"] for r in catalog.describe_provenance(sorted(keep))}
        going = [i for i in images if i not in kept_images]
        records = catalog.get_images(going)
        face_ids = tuple(sorted(f.id for img in records.values() for f in img.faces))
        return _receipt(
            action,
            scope,
            at,
            True,
            len(rows),
            tuple((i, records[i].sha256) for i in going),
            face_ids,
            0,
        )
    relabel = getattr(index, "relabel", None)
    touched = (
        {int(r["image_id"]) for r in catalog.describe_provenance(provenance_ids)}
        if callable(relabel)
        else set()
    )
    removal = catalog.remove_provenance(provenance_ids)
    erased_at = None
    if removal.face_ids:
        index.remove(removal.face_ids)
        compact = getattr(index, "compact", None)
        if callable(compact):
            compact()
        erased_at = getattr(index, "erased_at", None)
    # Images that lost a copy but not all: their faces' sources (an index's labels) change.
    kept = sorted(touched - {i for i, _ in removal.images})
    if kept and callable(relabel):
        relabel([f.id for image in catalog.get_images(kept).values() for f in image.faces])
    deleted = 0
    for path in derived_files(removal):
        if path.exists():
            path.unlink()
            deleted += 1
    if removal.provenance:
        catalog.scrub()
    return _receipt(
        action,
        scope,
        at,
        False,
        removal.provenance,
        removal.images,
        removal.face_ids,
        deleted,
        erased_at,
    )


def _receipt(
    action: str,
    scope: dict[str, Any],
    at: str,
    dry_run: bool,
    provenance: int,
    images: tuple[tuple[int, str], ...],
    face_ids: tuple[int, ...],
    files: int,
    index_erased_at: str | None = None,
) -> Receipt:
    receipt = Receipt(
        action=action,
        scope=scope,
        at=at,
        dry_run=dry_run,
        provenance_removed=provenance,
        images_removed=len(images),
        faces_removed=len(face_ids),
        image_ids=tuple(i for i, _ in images),
        image_sha256=tuple(h for _, h in images),
        face_ids=face_ids,
        files_deleted=files,
        index_erased_at=index_erased_at,
    )
    digest = hashlib.sha256(json.dumps(receipt.as_dict(), sort_keys=True).encode()).hexdigest()
    return Receipt(**{**receipt.as_dict(), "receipt_id": digest[:16]})
