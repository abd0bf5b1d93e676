"""build_parts(settings): the parts an engine is made of, built from the settings.

This is the only module that names adapters. Each store is chosen by the scheme of its
URL (``catalog.url``, ``index.url``) from a registry below: adding a backend is one
factory and one registry entry. ``milvus://host:port/collection`` keeps the index in a
Milvus server (index/milvus.py). Unset URLs follow ``home``: ``sqlite://<home>/catalog.sqlite``
and ``local://<home>/index``. Everything after ``scheme://`` is the location, for the
file-based schemes a path, absolute (``sqlite:///srv/faces/catalog.sqlite``) or relative
to the working directory (``sqlite://data/catalog.sqlite``).

The stores kept beside the catalog (the audit log, the suppression list, the accounts,
the locks shared by its processes) follow the catalog's scheme (``STORES``): with a
``sqlite://`` catalog, files in ``home``; with a ``postgresql://`` catalog, tables in the
same database, so that every process of a deployment shares one audit chain.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from facesearch.accounts.ports import AccountStore
from facesearch.accounts.postgres import PostgresAccountStore
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.catalog.ports import AuditStore, Catalog, Locks, SuppressionStore
from facesearch.catalog.postgres.audit import PostgresAuditStore
from facesearch.catalog.postgres.catalog import PostgresCatalog, upgrade_database
from facesearch.catalog.postgres.connections import redacted
from facesearch.catalog.postgres.locks import AdvisoryLocks
from facesearch.catalog.postgres.suppression import PostgresSuppressionStore
from facesearch.catalog.postgres.transfer import copy_files, held
from facesearch.catalog.sqlite import SqliteCatalog, upgrade_file
from facesearch.catalog.sqlite_audit import SqliteAuditStore
from facesearch.catalog.sqlite_locks import FileLocks
from facesearch.catalog.sqlite_suppression import SqliteSuppressionStore
from facesearch.config import IndexSettings, Settings
from facesearch.errors import ConfigError
from facesearch.execution.local import local_executor, thread_executor
from facesearch.execution.ports import Executor
from facesearch.execution.ray import check_address, ray_executor
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
from facesearch.index.milvus import MilvusIndex
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
# (cluster address, workers) -> executor; the local ones have no address
ExecutorKind = Callable[[str | None, int], Executor]


def _sqlite_catalog(url: str, sealer: Sealer) -> tuple[Catalog, AnchorStore]:
    catalog = SqliteCatalog(Path(location(url)), TemplateCodec(sealer))
    return catalog, CatalogAnchor(catalog)


def _local_index(
    url: str, settings: IndexSettings, catalog: Catalog, encrypted: bool
) -> ManagedIndex:
    # Encrypted homes keep no index files: they would be a plaintext copy of templates.
    return LocalIndex(Path(location(url)), settings, catalog, in_memory=encrypted)


def _no_plaintext_copy(encrypted: bool) -> None:
    if encrypted:
        # Milvus keeps vectors in plaintext: sealing the catalog would then protect nothing.
        raise ConfigError(
            "an encrypted home keeps no plaintext copy of a template: Milvus cannot hold "
            "its index (unset FACESEARCH_ENCRYPTION_KEY or use a local:// index)"
        )


def _milvus_index(
    url: str, settings: IndexSettings, catalog: Catalog, encrypted: bool
) -> ManagedIndex:
    _no_plaintext_copy(encrypted)
    return MilvusIndex(url, settings, catalog)


def _postgres_catalog(url: str, sealer: Sealer) -> tuple[Catalog, AnchorStore]:
    catalog = PostgresCatalog(url, TemplateCodec(sealer))
    return catalog, CatalogAnchor(catalog)


CATALOGS: dict[str, CatalogFactory] = {
    "sqlite": _sqlite_catalog,
    "postgresql": _postgres_catalog,
}
# url -> (schema version before, after): ``facesearch db upgrade``.
CATALOG_UPGRADES: dict[str, Callable[[str], tuple[int, int]]] = {
    "sqlite": lambda url: upgrade_file(Path(location(url))),
    "postgresql": upgrade_database,
}
INDEXES: dict[str, IndexFactory] = {"local": _local_index, "milvus": _milvus_index}
EXECUTORS: dict[str, ExecutorKind] = {
    "local": lambda _, workers: local_executor(workers),
    "threads": lambda _, workers: thread_executor(workers),
    "ray": ray_executor,
}


@dataclass(frozen=True, slots=True)
class StoreFactories:
    """The stores kept beside a catalog, each built from (the catalog's URL, home)."""

    audit: Callable[[str, Path], AuditStore]
    suppressions: Callable[[str, Path, TemplateCodec], SuppressionStore]
    accounts: Callable[[str, Path], AccountStore]
    locks: Callable[[str, Path], Locks]
    in_home: bool  # kept in files of the home (else the home holds only caches)


# The catalog's scheme -> its stores. A SQLite catalog keeps them in files of their own
# in ``home`` (the locks beside the catalog file, which is what its processes share).
STORES: dict[str, StoreFactories] = {
    "sqlite": StoreFactories(
        audit=lambda url, home: SqliteAuditStore(home / "audit.sqlite"),
        suppressions=lambda url, home, codec: SqliteSuppressionStore(
            home / "suppression.sqlite", codec
        ),
        accounts=lambda url, home: SqliteAccountStore(home / "accounts.sqlite"),
        locks=lambda url, home: FileLocks(Path(location(url)).parent),
        in_home=True,
    ),
    "postgresql": StoreFactories(
        audit=lambda url, home: PostgresAuditStore(url),
        suppressions=lambda url, home, codec: PostgresSuppressionStore(url, codec),
        accounts=lambda url, home: PostgresAccountStore(url),
        locks=lambda url, home: AdvisoryLocks(url),
        in_home=False,
    ),
}


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


def store_factories(settings: Settings) -> StoreFactories:
    """The stores that go with the configured catalog."""
    return STORES[scheme(catalog_url(settings), "catalog.url", STORES)]


def home_holds_stores(settings: Settings) -> bool:
    """Whether the home's folder holds stores that cannot be rebuilt (the audit log, the
    suppression list, the accounts), so that a missing folder is a mistyped home; with a
    PostgreSQL catalog it holds only caches and a fresh one is as good."""
    return store_factories(settings).in_home


def upgrade_catalog(settings: Settings) -> tuple[str, int, int]:
    """Bring the catalog's schema to this release's: (its URL without a password, version
    before, after)."""
    url = catalog_url(settings)
    before, after = CATALOG_UPGRADES[scheme(url, "catalog.url", CATALOG_UPGRADES)](url)
    return redacted(url), before, after


@dataclass(frozen=True, slots=True)
class MigrationTarget:
    """Where ``facesearch migrate`` can copy an embedded home: ``held(url)`` counts the
    rows a database holds by table, ``copy(files, url, progress)`` copies the home's
    SQLite files into it (made and empty) and returns the rows copied by table."""

    held: Callable[[str], dict[str, int]]
    copy: Callable[[list[Path], str, Callable[[int, int], None] | None], dict[str, int]]


# The catalog's scheme -> how a home is copied into it.
MIGRATION_TARGETS: dict[str, MigrationTarget] = {
    "postgresql": MigrationTarget(held=held, copy=copy_files),
}


def home_files(settings: Settings) -> list[Path]:
    """The files an embedded home keeps what cannot be rebuilt in (the catalog, the audit
    log, the suppression list, the accounts); ConfigError when its catalog is not one."""
    url = catalog_url(settings)
    if scheme(url, "catalog.url", CATALOGS) != "sqlite":
        raise ConfigError(
            f"migrate copies an embedded home (a sqlite:// catalog); this one is {redacted(url)}"
        )
    catalog = Path(location(url))
    home = Path(settings.home)
    files = [catalog, home / "audit.sqlite", home / "suppression.sqlite", home / "accounts.sqlite"]
    return [f for f in files if f.is_file()]


def shown(url: str) -> str:
    """``url`` as it may be printed (without a password)."""
    return redacted(url)


def migration_target(url: str, index: str, encrypted: bool) -> MigrationTarget:
    """How a home is copied into the catalog at ``url``; ConfigError for a catalog or an
    index URL it cannot be copied into (checked before anything is opened or copied)."""
    if scheme(index, "--to-index", INDEXES) == "milvus":
        _no_plaintext_copy(encrypted)
    name = scheme(url, "--to-catalog", CATALOGS)
    target = MIGRATION_TARGETS.get(name)
    if target is None:
        known = ", ".join(f"{k}://" for k in sorted(MIGRATION_TARGETS))
        raise ConfigError(f"migrate copies a home into {known} catalogs, not {name}://")
    return target


def make_tables(url: str) -> None:
    """Make the tables of the catalog and of its stores at ``url``, without writing
    anything else (no engine is opened on it: that would start its own audit chain)."""
    name = scheme(url, "--to-catalog", CATALOGS)
    catalog, _ = CATALOGS[name](url, Sealer.from_secret(None))
    catalog.close()
    stores = STORES[name]
    nowhere = Path("/nonexistent")  # the PostgreSQL stores keep nothing in a home
    for store in (
        stores.audit(url, nowhere),
        stores.suppressions(url, nowhere, TemplateCodec()),
        stores.accounts(url, nowhere),
    ):
        store.close()


def executor_factory(settings: Settings) -> ExecutorFactory:
    """workers -> the executor of an ingest; a ``cluster`` address selects ``ray``."""
    name = "ray" if settings.cluster else settings.executor
    kind = EXECUTORS.get(name)
    if kind is None:
        raise ConfigError(
            f"executor: unknown executor {settings.executor!r}; known: {', '.join(EXECUTORS)}"
        )
    cluster = check_address(settings.cluster) if settings.cluster else None
    return lambda workers: kind(cluster, workers)


@dataclass(frozen=True, slots=True)
class Parts:
    """What an engine is made of. The index is built, not yet opened (``index.open()``)."""

    model_spec: ModelSpec
    sealer: Sealer
    catalog: Catalog
    index: ManagedIndex
    audit: AuditLog
    suppressions: SuppressionList
    locks: Locks
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
    stores = store_factories(settings)
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
    url = catalog_url(settings)
    audit = AuditLog(stores.audit(url, home), anchor)
    check_audit_key(settings, catalog, audit)
    suppressions = SuppressionList(stores.suppressions(url, home, TemplateCodec(sealer)))
    return Parts(
        model_spec=model_spec,
        sealer=sealer,
        catalog=catalog,
        index=index,
        audit=audit,
        suppressions=suppressions,
        locks=stores.locks(url, home),
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
    home = Path(settings.home)
    return store_factories(settings).accounts(catalog_url(settings), home)


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
