"""``facesearch migrate``: move an embedded home (SQLite catalog, local index, audit log,
suppression list, accounts) into a scale-out catalog and index (PostgreSQL and Milvus).

The catalog's rows are copied as they are, ids and audit hashes included (one
transaction, catalog/postgres/transfer.py); the index is then built in the target from
the copied catalog, the truth, as ``reindex`` builds one. The result is checked: the
target catalog's face count and id checksum equal the home's, the target index's equal
the catalog's, the audit log holds the same entries up to the same last hash and its
chain verifies. The home is read, never changed.

A target that already holds rows is refused, except one that holds exactly this home's
copy (same faces, same audit head): then the copy is skipped and the index step runs
again, so that a migration stopped while building the index is finished by running the
command again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from facesearch.config import Settings
from facesearch.engine.facade import FaceSearch
from facesearch.errors import ConfigError, FacesearchError
from facesearch.parts import catalog_url, home_files, make_tables, migration_target, shown

Progress = Callable[[int, int], None]


def target_settings(settings: Settings, to_catalog: str, to_index: str) -> Settings:
    return settings.model_copy(
        update={
            "catalog": settings.catalog.model_copy(update={"url": to_catalog}),
            "index": settings.index.model_copy(update={"url": to_index}),
        }
    )


def migrate(
    settings: Settings,
    to_catalog: str,
    to_index: str,
    copy_progress: Progress | None = None,
    index_progress: Progress | None = None,
) -> dict[str, Any]:
    """Copy the home of ``settings`` into ``to_catalog`` and ``to_index``; returns what
    was copied and checked. Raises ConfigError when the target holds other data."""
    target = migration_target(to_catalog, to_index, settings.encryption_key is not None)
    files = home_files(settings)
    if to_catalog == catalog_url(settings):
        raise ConfigError("--to-catalog is the home's own catalog")
    with FaceSearch(settings) as home:
        faces = home.catalog.face_state()
        head = home.audit.head()
        home_audit = home.verify_audit()
    make_tables(to_catalog)
    held = target.held(to_catalog)
    resumed = any(held.values())
    copied: dict[str, int] = {}
    if not resumed:
        copied = target.copy(files, to_catalog, copy_progress)
    moved = target_settings(settings, to_catalog, to_index)
    with FaceSearch(moved) as out:
        if resumed and (out.catalog.face_state(), out.audit.head()) != (faces, head):
            rows = sum(held.values())
            raise ConfigError(
                f"the target catalog already holds {rows} rows that are not this home's "
                f"copy: migrate into an empty database"
            )
        index = out.reindex(index_progress)
        state = out.index.state()
        audit = out.verify_audit()
        checks = {
            "catalog_faces": out.catalog.face_state() == faces,
            "index_faces": (state.count, state.id_sum) == faces,
            "audit_head": out.audit.head() == head,
            "audit_verifies": audit.ok or not home_audit.ok,
        }
    result = {
        "catalog": shown(to_catalog),
        "index": to_index,
        "resumed": resumed,
        "copied": copied,
        "faces": faces[0],
        "face_id_sum": faces[1],
        "index_kind": index.get("kind"),
        "audit_entries": audit.entries,
        "audit_ok": audit.ok,
        "checks": checks,
        "ok": all(checks.values()),
    }
    if not result["ok"]:
        failed = ", ".join(k for k, v in checks.items() if not v)
        raise FacesearchError(f"the migrated copy does not match the home ({failed})")
    return result
