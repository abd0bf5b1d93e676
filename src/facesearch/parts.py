"""build_parts(settings): the parts an engine is made of, built from the settings.

This is the only module that names adapters. Each store is chosen by the scheme of its
URL (``catalog.url``, ``index.url``) from a registry below: adding a backend is one
factory and one registry entry. Unset URLs follow ``home``: ``sqlite://<home>/catalog.sqlite``
and ``local://<home>/index``. Everything after ``scheme://`` is the location, for the
file-based schemes a path, absolute (``sqlite:///srv/faces/catalog.sqlite``) or relative
to the working directory (``sqlite://data/catalog.sqlite``).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from facesearch.accounts.ports import AccountStore
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.catalog.ports import Catalog
from facesearch.catalog.sqlite import SqliteCatalog
from facesearch.catalog.sqlite_audit import SqliteAuditStore
from facesearch.catalog.sqlite_suppression import SqliteSuppressionStore
from facesearch.config import IndexSettings, Settings
from facesearch.errors import ConfigError
from facesearch.execution.local import local_executor, thread_executor
from facesearch.execution.ports import Executor
from facesearch.governance.audit import (
    KEY_ACTION,
    AnchorStore,
    AuditLog,
    CatalogAnchor,
    key_fingerprint,
    parse_key,
)
from facesearch.governance.suppression import SuppressionList
from facesearch.index.local.adapter import LocalIndex
from facesearch.index.ports import ManagedIndex
from facesearch.security.sealing import Sealer
from facesearch.security.templates import TemplateCodec
from facesearch.vision.ports import FaceDetector, FaceEmbedder
from facesearch.vision.registry import DETECTOR_META, FIRST_DETECTOR, ModelSpec

# url -> the catalog, and where it keeps the audit log's anchor (the latest entry).
CatalogFactory = Callable[[str, Sealer], tuple[Catalog, AnchorStore]]
# (url, index settings, catalog, whether templates are encrypted) -> index
IndexFactory = Callable[[str, IndexSettings, Catalog, bool], ManagedIndex]
# workers -> executor
ExecutorFactory = Callable[[int], Executor]


def _sqlite_catalog(url: str, sealer: Sealer) -> tuple[Catalog, AnchorStore]:
    catalog = SqliteCatalog(Path(location(url)), TemplateCodec(sealer))
    return catalog, CatalogAnchor(catalog)


def _local_index(
    url: str, settings: IndexSettings, catalog: Catalog, encrypted: bool
) -> ManagedIndex:
    # Encrypted homes keep no index files: they would be a plaintext copy of templates.
    return LocalIndex(Path(location(url)), settings, catalog, in_memory=encrypted)


CATALOGS: dict[str, CatalogFactory] = {"sqlite": _sqlite_catalog}
INDEXES: dict[str, IndexFactory] = {"local": _local_index}
EXECUTORS: dict[str, ExecutorFactory] = {"local": local_executor, "threads": thread_executor}


def catalog_url(settings: Settings) -> str:
    """The catalog's URL: ``catalog.url``, or the SQLite file in ``home``."""
    return settings.catalog.url or f"sqlite://{Path(settings.home) / 'catalog.sqlite'}"


def index_url(settings: Settings) -> str:
    """The index's URL: ``index.url``, or the local index folder in ``home``."""
    return settings.index.url or f"local://{Path(settings.home) / 'index'}"


def scheme(url: str, setting: str, known: Mapping[str, object]) -> str:
    """The scheme of ``url``, one of ``known``, or ConfigError naming the known ones."""
    name, sep, rest = url.partition("://")
    if sep and name in known and rest:
        return name
    schemes = ", ".join(f"{k}://" for k in sorted(known))
    if not sep or not rest:
        raise ConfigError(f"{setting} {url!r} is not a URL (scheme://...); known: {schemes}")
    raise ConfigError(f"{setting}: unknown scheme {name}://; known: {schemes}")


def location(url: str) -> str:
    """What follows ``scheme://`` (a path, for the file-based schemes)."""
    return url.partition("://")[2]


def executor_factory(settings: Settings) -> ExecutorFactory:
    factory = EXECUTORS.get(settings.executor)
    if factory is None:
        raise ConfigError(
            f"executor: unknown executor {settings.executor!r}; known: {', '.join(EXECUTORS)}"
        )
    return factory


@dataclass(frozen=True, slots=True)
class Parts:
    """What an engine is made of. The index is built, not yet opened (``index.open()``)."""

    model_spec: ModelSpec
    sealer: Sealer
    catalog: Catalog
    index: ManagedIndex
    audit: AuditLog
    suppressions: SuppressionList
    executor: ExecutorFactory  # workers -> the executor of an ingest


def build_parts(
    settings: Settings,
    *,
    detector: FaceDetector | None = None,
    embedder: FaceEmbedder | None = None,
) -> Parts:
    """Build every part from ``settings``; refuses a wrong encryption or audit key."""
    # What every process (ingest workers, the server's threads) builds its models from;
    # made first, so that an unknown model name is refused before any file is opened.
    model_spec = ModelSpec.from_settings(
        settings.faces,
        cache=Path(settings.home) / "models",
        detector=detector,
        embedder=embedder,
    )
    # So are unknown schemes.
    catalogs = CATALOGS[scheme(catalog_url(settings), "catalog.url", CATALOGS)]
    indexes = INDEXES[scheme(index_url(settings), "index.url", INDEXES)]
    executor = executor_factory(settings)
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    secret = settings.encryption_key
    sealer = Sealer.from_secret(secret.get_secret_value() if secret else None)
    catalog, anchor = catalogs(catalog_url(settings), sealer)
    check_encryption(catalog, sealer)
    model_spec = model_spec.for_home(
        home_detector(catalog), configured="detector" in settings.faces.model_fields_set
    )
    index = indexes(index_url(settings), settings.index, catalog, sealer.enabled)
    audit = AuditLog(SqliteAuditStore(home / "audit.sqlite"), anchor)
    check_audit_key(settings, catalog, audit)
    suppressions = SuppressionList(
        SqliteSuppressionStore(home / "suppression.sqlite", TemplateCodec(sealer))
    )
    return Parts(
        model_spec=model_spec,
        sealer=sealer,
        catalog=catalog,
        index=index,
        audit=audit,
        suppressions=suppressions,
        executor=executor,
    )


def home_detector(catalog: Catalog) -> str | None:
    """The detector whose faces a home holds: recorded at its first ingest; a home made
    before detectors were recorded used the only one there was. None: a new home."""
    recorded = catalog.meta(DETECTOR_META)
    if recorded is None and catalog.model_key() is not None:
        return FIRST_DETECTOR
    return recorded


def build_accounts(settings: Settings) -> AccountStore:
    """API keys, users and web sessions (the server and ``facesearch keys``/``users``)."""
    return SqliteAccountStore(Path(settings.home) / "accounts.sqlite")


def check_encryption(catalog: Catalog, sealer: Sealer) -> None:
    """Refuse a missing or wrong encryption key, or turning encryption on too late."""
    stored = catalog.meta("encryption")
    mine = sealer.fingerprint()
    if stored is None:
        if mine is not None and catalog.face_state()[0] > 0:
            raise ConfigError(
                "this home holds unencrypted templates; encryption can only be turned on "
                "for a new home"
            )
        if mine is not None:
            catalog.set_meta("encryption", mine)
    elif mine is None:
        raise ConfigError("this home is encrypted: set FACESEARCH_ENCRYPTION_KEY")
    elif stored != mine:
        raise ConfigError("FACESEARCH_ENCRYPTION_KEY is not the key this home was made with")


def check_audit_key(settings: Settings, catalog: Catalog, audit: AuditLog) -> None:
    """Key the audit chain with FACESEARCH_AUDIT_KEY, refusing a missing or wrong key.

    The catalog records the key's fingerprint and the first keyed entry; a home made
    before it had a key is keyed from the next entry on (an ``audit.key`` entry)."""
    secret = settings.audit_key
    key = parse_key(secret.get_secret_value() if secret else None)
    stored = catalog.meta("audit_key")
    if stored is not None:
        fingerprint, start = stored.split(":", 1)
        if key is None:
            raise ConfigError("this home's audit log is keyed: set FACESEARCH_AUDIT_KEY")
        if key_fingerprint(key) != fingerprint:
            raise ConfigError(
                "FACESEARCH_AUDIT_KEY is not the key this home's audit log is keyed with"
            )
        audit.key, audit.keyed_from = key, int(start)
        return
    if key is None:
        return
    audit.key = key

    def first_marker() -> int | None:
        for entry in audit.entries(action=KEY_ACTION):
            if entry.details.get("fingerprint") == key_fingerprint(key):
                return entry.seq
        return None

    # A marker already there: a crash came after it and before the catalog recorded it.
    if first_marker() is None:
        head = audit.head()
        # The engine's default requester: the keying is this local user's doing.
        audit.start_keying(f"local:{getpass.getuser()}", head[0] if head else 0)
    # Another process keying the home at the same moment may have written one first.
    audit.keyed_from = first_marker()
    catalog.set_meta("audit_key", f"{key_fingerprint(key)}:{audit.keyed_from}")
