"""MilvusIndex: the vector index kept in a Milvus server (``milvus://host:port/collection``).

One collection holds one row per face: its id (the primary key), its image's id, the
sources and jurisdictions of the image's copies, the latest expiry date among them, the
id of the model that made the vector, and the vector itself (cosine: inner product of
unit vectors). Source, jurisdiction and expiry filters are pushed down to Milvus as a
scalar filter expression (``FaceFilter``), so no array of allowed face ids is ever built.

Milvus is shared by every process (API servers, ingest workers): there are no files to
lock. The catalog stays the truth: an index that missed writes while Milvus was down is
brought back in step from the catalog (count and id sum, then the differences) on open
and on the first catch-up after Milvus answers again.

Deleted rows are hidden from searches at once; ``compact()`` then rewrites the segments
without them and waits for the compaction to finish (``erased_at`` records when). The old
segment files are removed by Milvus's garbage collector after ``dataCoord.gc.dropTolerance``
(docs/scaling.md). Written against the pymilvus ``MilvusClient`` calls that Milvus 2.3 to
2.6 all answer; tested against Milvus 2.3.5.

Query parameters of the URL choose the index: ``index`` (FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ,
HNSW, DISKANN; default FLAT: exact, and slow past a few million faces, see
docs/scaling.md), ``nlist``, ``nprobe``, ``m`` (IVF_PQ), ``M`` and
``efConstruction``/``ef`` (HNSW), ``timeout`` (seconds, default 10). Approximate index
types return estimates; their candidates (k + ``rerank_margin``) are re-scored exactly
against the catalog's embeddings, as the local approximate index does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import numpy.typing as npt

from facesearch.catalog.ports import Catalog
from facesearch.config import IndexSettings
from facesearch.errors import BackendUnavailable, ConfigError, InvalidInput
from facesearch.index.ports import (
    FaceFilter,
    Ids,
    IndexState,
    Progress,
    Vectors,
    key_dimension,
)

NEVER = 2**62  # expiry of a face with no dated copy (seconds since the epoch)
BATCH = 2_000  # rows per insert (a gRPC message stays far below its 64 MB limit)
REPAIR_CHUNK = 10_000
INDEX_TYPES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "DISKANN")
MAX_LABELS = 256  # sources or jurisdictions one face can carry
COMPACTION_WAIT = 300.0

# (face ids) -> the labels of each face that exists, for the scalar fields
Labeller = Callable[[Sequence[int]], dict[int, "FaceLabels"]]
# (face ids) -> (the ids that exist, their float32 embeddings): the catalog's, for re-ranking
Lookup = Callable[[Sequence[int]], tuple[Ids, Vectors]]


@dataclass(frozen=True, slots=True)
class FaceLabels:
    """What the scalar fields of one face say: filtering and erasure read them."""

    image_id: int = 0
    sources: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    expires_at: int = NEVER  # the latest expiry among the image's copies, epoch seconds


@dataclass(frozen=True, slots=True)
class MilvusLocation:
    host: str
    port: int
    collection: str
    index_type: str = "FLAT"
    params: tuple[tuple[str, int], ...] = ()
    timeout: float = 10.0

    @classmethod
    def parse(cls, url: str) -> MilvusLocation:
        parts = urlsplit(url)
        if parts.scheme != "milvus" or not parts.hostname:
            raise ConfigError(f"index.url {url!r}: expected milvus://HOST:PORT/COLLECTION")
        collection = parts.path.strip("/") or "facesearch"
        if not collection.replace("_", "a").isalnum() or not collection[0].isalpha():
            raise ConfigError(
                f"index.url {url!r}: a Milvus collection name is letters, digits and _, "
                "starting with a letter"
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        index_type = query.pop("index", "FLAT").upper()
        if index_type not in INDEX_TYPES:
            raise ConfigError(
                f"index.url: unknown Milvus index {index_type}; known: {', '.join(INDEX_TYPES)}"
            )
        timeout = float(query.pop("timeout", "10"))
        try:
            params = tuple(sorted((k, int(v)) for k, v in query.items()))
        except ValueError as exc:
            raise ConfigError(f"index.url {url!r}: index parameters are integers") from exc
        return cls(parts.hostname, parts.port or 19530, collection, index_type, params, timeout)


def epoch(iso: str | None) -> int:
    """Seconds since the epoch of an ISO date (the catalog's expiry dates); None: never."""
    if not iso:
        return NEVER
    stamp = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(stamp.timestamp())


def catalog_labeller(catalog: Catalog) -> Labeller:
    """The labels of faces as the catalog knows them (images, their copies, sources)."""

    def labels(face_ids: Sequence[int]) -> dict[int, FaceLabels]:
        to_image = catalog.faces_to_images(list(face_ids))
        images = catalog.get_images(sorted(set(to_image.values())))
        places = {s.name: s.jurisdictions for s in catalog.list_sources(counts=False)}
        out: dict[int, FaceLabels] = {}
        for face_id, image_id in to_image.items():
            image = images.get(image_id)
            if image is None:
                continue
            sources = tuple(sorted({p.source for p in image.provenance}))
            expiries = [epoch(p.expires_at) for p in image.provenance]
            out[face_id] = FaceLabels(
                image_id=image_id,
                sources=sources,
                jurisdictions=tuple(
                    sorted({j.upper() for s in sources for j in places.get(s, ())})
                ),
                expires_at=max(expiries, default=NEVER),
            )
        return out

    return labels


def quoted(values: Iterable[str]) -> str:
    """A list literal of strings for a Milvus filter expression."""
    out = []
    for value in values:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'"{escaped}"')
    return "[" + ", ".join(out) + "]"


def expression(where: FaceFilter | None, allowed_ids: Ids | None = None) -> str:
    """The Milvus filter expression of a search's filter ("" for none)."""
    terms = []
    if where is not None:
        if where.sources is not None:
            terms.append(f"array_contains_any(sources, {quoted(where.sources)})")
        if where.jurisdictions is not None:
            places = (j.upper() for j in where.jurisdictions)
            terms.append(f"array_contains_any(jurisdictions, {quoted(places)})")
        if where.now is not None:
            terms.append(f"expires_at > {epoch(where.now)}")
    if allowed_ids is not None:
        terms.append(f"face_id in {np.asarray(allowed_ids, dtype=np.int64).tolist()}")
    return " and ".join(terms)


def _unavailable(where: MilvusLocation, exc: Exception) -> BackendUnavailable:
    reason = getattr(exc, "message", None) or str(exc)
    return BackendUnavailable(
        f"Milvus at {where.host}:{where.port} did not answer ({reason.splitlines()[0][:200]})"
    )


class MilvusIndex:
    """A VectorIndex with its lifecycle, in one Milvus collection."""

    def __init__(
        self,
        url: str,
        settings: IndexSettings | None = None,
        catalog: Catalog | None = None,
        *,
        labeller: Labeller | None = None,
        lookup: Lookup | None = None,
    ) -> None:
        self.where = MilvusLocation.parse(url)
        self.settings = settings or IndexSettings()
        self.catalog = catalog
        self.labeller = labeller or (catalog_labeller(catalog) if catalog is not None else None)
        self.lookup = lookup or (catalog.embeddings_found if catalog is not None else None)
        self.erased_at: str | None = None  # when the last compaction completed
        self._client: Any = None
        self._missed = False  # a write failed: sync from the catalog once Milvus answers
        self._wrote = False  # wrote since the last search: the next one waits to see it
        self._loaded = False
        self._model: str | None = None  # the collection's description: its model key
        self._dim = 0  # the collection's vector dimension (0: no collection yet)

    # -- connection ------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            from pymilvus import MilvusClient
            from pymilvus.exceptions import MilvusException

            try:
                self._client = MilvusClient(
                    uri=f"http://{self.where.host}:{self.where.port}", timeout=self.where.timeout
                )
            except MilvusException as exc:
                raise _unavailable(self.where, exc) from exc
        return self._client

    @contextmanager
    def _calling(self, writes: bool = False) -> Iterator[Any]:
        """Milvus's and gRPC's errors as BackendUnavailable; a failed write marks the
        index as out of step with the catalog."""
        from pymilvus.exceptions import MilvusException

        try:
            if writes:
                self._wrote = True
            yield self.client
        except MilvusException as exc:
            if writes:
                self._missed = True
            self._drop_client()
            raise _unavailable(self.where, exc) from exc
        except BackendUnavailable:
            self._missed = self._missed or writes
            raise

    def _drop_client(self) -> None:
        client, self._client, self._loaded = self._client, None, False
        if client is not None:
            with suppress(Exception):  # closing a dead connection may fail any way
                client.close()

    @property
    def name(self) -> str:
        return self.where.collection

    # -- the collection --------------------------------------------------------------------
    def _index_params(self, client: Any) -> Any:
        params = dict(self.where.params)
        kind = self.where.index_type
        build: dict[str, int] = {}
        if kind.startswith("IVF"):
            build["nlist"] = params.get("nlist", 1024)
            if kind == "IVF_PQ":
                build["m"] = params.get("m", 32)
                build["nbits"] = params.get("nbits", 8)
        elif kind == "HNSW":
            build["M"] = params.get("M", 16)
            build["efConstruction"] = params.get("efConstruction", 200)
        index = client.prepare_index_params()
        index.add_index("vector", index_type=kind, metric_type="IP", params=build)
        return index

    def _search_params(self, k: int) -> dict[str, Any]:
        params = dict(self.where.params)
        kind = self.where.index_type
        if kind.startswith("IVF"):
            nprobe = params.get("nprobe") or self.settings.nprobe or 64
            return {"metric_type": "IP", "params": {"nprobe": nprobe}}
        if kind == "HNSW":
            return {"metric_type": "IP", "params": {"ef": max(params.get("ef", 128), k)}}
        if kind == "DISKANN":
            return {"metric_type": "IP", "params": {"search_list": max(100, k)}}
        return {"metric_type": "IP", "params": {}}

    def _create(self, client: Any, model_key: str | None, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(
            auto_id=False, enable_dynamic_field=False, description=model_key or ""
        )
        schema.add_field("face_id", DataType.INT64, is_primary=True)
        schema.add_field("image_id", DataType.INT64)
        for name, length in (("sources", 256), ("jurisdictions", 16)):
            schema.add_field(
                name,
                DataType.ARRAY,
                element_type=DataType.VARCHAR,
                max_capacity=MAX_LABELS,
                max_length=length,
            )
        schema.add_field("expires_at", DataType.INT64)
        schema.add_field("model", DataType.VARCHAR, max_length=256)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        client.create_collection(
            self.name,
            schema=schema,
            index_params=self._index_params(client),
            consistency_level="Strong",  # a write is seen by the next search
        )

    def _ready(self, client: Any, dim: int = 0) -> bool:
        """Load the collection, creating it if missing with the dimension its model key
        names (or ``dim``, that of the vectors about to be added). False while there is
        no collection and no dimension to make one with: nothing is held yet."""
        if self._loaded:
            return True
        if not client.has_collection(self.name):
            model = self._model or (self.catalog.model_key() if self.catalog else None)
            dim = key_dimension(model) or dim
            if not dim:
                return False
            self._create(client, model, dim)
        client.load_collection(self.name)
        described = client.describe_collection(self.name)
        self._model = str(described.get("description") or "") or None
        self._dim = next(
            int(f.get("params", {}).get("dim", 0))
            for f in described.get("fields", [])
            if f.get("name") == "vector"
        )
        self._loaded = True
        return True

    def model_key(self) -> str | None:
        with self._calling() as client:
            self._ready(client)
        return self._model

    # -- VectorIndex -----------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return f"milvus-{self.where.index_type.lower()}"

    def _rerank(self) -> bool:
        return self.where.index_type != "FLAT" and self.lookup is not None

    def add(self, ids: Ids, vectors: Vectors) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(ids) == 0:
            return
        if vectors.ndim != 2 or len(vectors) != len(ids):
            raise InvalidInput(f"expected {len(ids)} vectors, got shape {vectors.shape}")
        labels = self.labeller(ids.tolist()) if self.labeller else {}
        with self._calling(writes=True) as client:
            self._ready(client, dim=vectors.shape[1])
            if vectors.shape[1] != self._dim:
                raise InvalidInput(
                    f"Milvus index holds {self._dim}-d vectors, got shape {vectors.shape}"
                )
            model = self._model or ""
            for start in range(0, len(ids), BATCH):
                rows = []
                for face_id, vector in zip(
                    ids[start : start + BATCH], vectors[start : start + BATCH], strict=True
                ):
                    label = labels.get(int(face_id), FaceLabels())
                    rows.append(
                        {
                            "face_id": int(face_id),
                            "image_id": label.image_id,
                            "sources": list(label.sources),
                            "jurisdictions": list(label.jurisdictions),
                            "expires_at": label.expires_at,
                            "model": model,
                            "vector": vector.tolist(),
                        }
                    )
                client.upsert(self.name, rows)

    def relabel(self, face_ids: Sequence[int]) -> None:
        """The catalog's copies of these faces changed (a copy added or removed, a
        source's jurisdictions or retention changed): rewrite their scalar fields."""
        if not len(face_ids) or self.catalog is None:
            return
        for start in range(0, len(face_ids), REPAIR_CHUNK):
            chunk = [int(i) for i in face_ids[start : start + REPAIR_CHUNK]]
            ids, vectors = self.catalog.embeddings_found(chunk)
            self.add(ids, vectors)  # an upsert: the row is replaced whole

    def remove(self, ids: Iterable[int]) -> int:
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return 0
        removed = 0
        with self._calling(writes=True) as client:
            if not self._ready(client):
                return 0
            for start in range(0, len(wanted), REPAIR_CHUNK):
                chunk = wanted[start : start + REPAIR_CHUNK]
                held = client.query(
                    self.name, filter=f"face_id in {chunk}", output_fields=["face_id"]
                )
                present = [int(row["face_id"]) for row in held]
                if present:
                    client.delete(self.name, filter=f"face_id in {present}")
                removed += len(present)
        return removed

    def search(
        self,
        query: Vectors,
        k: int,
        allowed_ids: Ids | None = None,
        where: FaceFilter | None = None,
    ) -> tuple[Ids, npt.NDArray[np.float32]]:
        query = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        rerank = self._rerank()
        fetch = k + self.settings.rerank_margin if rerank else k
        out_ids = np.full((len(query), k), -1, dtype=np.int64)
        out_sims = np.full((len(query), k), -np.inf, dtype=np.float32)
        if allowed_ids is not None and len(allowed_ids) == 0:
            return out_ids, out_sims
        with self._calling() as client:
            if not self._ready(client):
                return out_ids, out_sims
            found = client.search(
                self.name,
                data=query.tolist(),
                limit=min(fetch, 16_384),  # Milvus's largest top-k
                filter=expression(where, allowed_ids),
                output_fields=[],
                search_params=self._search_params(fetch),
                # Strong (wait for the server's next time tick, ~200 ms) only for the
                # first search after this process wrote: an erasure, then a search, must
                # not show the erased face. Otherwise Session: no wait, and another
                # process's writes show within a tick. A face erased by another process is
                # never shown either way: matches are read from the catalog, without it.
                consistency_level="Strong" if self._wrote else "Session",
            )
            self._wrote = False
        for r, hits in enumerate(found):
            ids = np.array([int(h["id"]) for h in hits], dtype=np.int64)
            sims = np.array([float(h["distance"]) for h in hits], dtype=np.float32)
            if rerank and len(ids) and self.lookup is not None:
                ids, vectors = self.lookup(ids.tolist())
                sims = vectors @ query[r] if len(ids) else sims[:0]
            order = np.argsort(-sims, kind="stable")[:k]
            out_ids[r, : len(order)] = ids[order]
            out_sims[r, : len(order)] = sims[order]
        return out_ids, out_sims

    def ids(self) -> Ids:
        with self._calling() as client:
            # pymilvus warns that a 2.3 server gives no snapshot time: the client's is
            # used. Set once pymilvus is imported: importing it configures its loggers
            # anew, which would undo a level set before.
            logging.getLogger("pymilvus.orm.iterator").setLevel(logging.ERROR)
            if not self._ready(client):
                return np.empty(0, dtype=np.int64)
            it = client.query_iterator(
                self.name, batch_size=16_000, filter="face_id >= 0", output_fields=["face_id"]
            )
            out: list[int] = []
            try:
                while batch := it.next():
                    out.extend(int(row["face_id"]) for row in batch)
            finally:
                it.close()
        return np.sort(np.array(out, dtype=np.int64))

    def state(self) -> IndexState:
        held = self.ids()
        return IndexState(self.kind, len(held), int(held.sum()), self.model_key())

    def compact(self) -> None:
        """Rewrite the segments without deleted rows and wait until Milvus says done."""
        with self._calling(writes=True) as client:
            if not self._ready(client):
                return
            client.flush(self.name)
            job = client.compact(self.name)
            deadline = time.monotonic() + COMPACTION_WAIT
            while client.get_compaction_state(job) != "Completed":
                if time.monotonic() > deadline:
                    raise BackendUnavailable(
                        f"Milvus did not finish compacting {self.name} in {COMPACTION_WAIT:.0f} s"
                    )
                time.sleep(0.2)
        self.erased_at = datetime.now().astimezone().isoformat(timespec="seconds")

    def reset(self, model_key: str | None) -> None:
        with self._calling(writes=True) as client:
            if client.has_collection(self.name):
                client.drop_collection(self.name)
            self._model, self._loaded, self._dim = model_key, False, 0
            # A key that names no dimension: made by the first add, from its vectors.
            self._ready(client)

    def close(self) -> None:
        self._drop_client()

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> dict[str, int]:
        """Connect, create the collection if missing and repair it from the catalog."""
        return self.sync()

    def sync(self) -> dict[str, int]:
        """Bring the collection in line with the catalog (the truth)."""
        if self.catalog is None:
            return {}
        count, id_sum = self.catalog.face_state()
        held = self.ids()
        if self.model_key() != self.catalog.model_key() and self.catalog.model_key():
            if len(held):
                raise BackendUnavailable(
                    f"Milvus collection {self.name} holds vectors of model {self.model_key()}, "
                    f"the catalog's are {self.catalog.model_key()}: run facesearch reindex"
                )
            self.reset(self.catalog.model_key())
        self._missed = False
        if len(held) == count and int(held.sum()) == id_sum:
            return {}
        catalog_ids = self.catalog.face_ids()
        extra = np.setdiff1d(held, catalog_ids)
        missing = np.setdiff1d(catalog_ids, held)
        removed = self.remove(extra.tolist()) if len(extra) else 0
        for start in range(0, len(missing), REPAIR_CHUNK):
            chunk = missing[start : start + REPAIR_CHUNK]
            self.add(chunk, self.catalog.embeddings(chunk.tolist()))
        return {"added": len(missing), "removed": removed}

    def fit(self) -> bool:
        return False  # Milvus builds and rebuilds its own index per segment

    def rebuild(self, kind: str | None = None, progress: Progress | None = None) -> None:
        if kind not in (None, "auto", "ann", "exact"):
            raise InvalidInput(f"unknown index kind {kind!r}; known kinds: auto, exact, ann")
        if self.catalog is None:
            return
        self.reset(self.catalog.model_key())
        total, done = self.catalog.face_state()[0], 0
        for ids, vectors in self.catalog.iter_embeddings(REPAIR_CHUNK):
            self.add(ids, vectors)
            done += len(ids)
            if progress:
                progress(done, total)

    def catch_up(self) -> bool:
        """Repair from the catalog once Milvus answers again after a write was missed
        (other processes write to Milvus themselves: nothing to reload)."""
        if self._missed:
            try:
                self.sync()
            except BackendUnavailable:
                return True  # searches will say Milvus is down
        return True

    @contextmanager
    def writing(self, wait: float | None, changes: bool = False) -> Iterator[None]:
        yield  # Milvus orders concurrent writers itself
