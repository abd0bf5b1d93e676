"""The catalog port, and the ports of the stores kept beside it (the audit log's rows,
the suppression list, the locks every process sharing the catalog takes). SQLite is the
embedded default; other engines implement the same.

A catalog applies no governance rule of its own: it stores the expiry dates it is given
(``governance.retention`` computes them), is told which sources retention covers (legal
hold is the caller's rule), and keeps templates as the bytes of the ``TemplateCodec`` it
was built with (sealed or not is the builder's decision).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facesearch.domain import DetectedFace, ImageRecord, Person, Provenance, Source

# (captured_at, ingested_at) -> expires_at of one stored copy: governance.retention.expiry_rule
ExpiryRule = Callable[[str | None, str], str]


@dataclass(frozen=True, slots=True)
class NewImage:
    """Everything ingest learned about one new file, written in one transaction."""

    sha256: str
    width: int
    height: int
    format: str
    bytes: int
    faces: Sequence[DetectedFace]
    embeddings: npt.NDArray[np.float32]
    skipped_faces: Sequence[dict[str, Any]] = field(default=())
    # The image's perceptual hash (16 hex digits, facesearch.imaging.perceptual_hash), kept
    # as ImageRecord.phash: search groups copies of one photo by it. None: not computed.
    phash: str | None = None


@dataclass(frozen=True, slots=True)
class FileStamp:
    """Size and modification time: lets a re-run skip a file without reading it."""

    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Removal:
    """What a removal took out: for receipts, the index and caches."""

    provenance: int
    images: tuple[tuple[int, str], ...]  # (image id, sha256)
    face_ids: tuple[int, ...]


class WriteCounter(Protocol):
    @property
    def version(self) -> tuple[int, int]:
        """Changes whenever anything was written to the catalog: by this process (second
        item) or by another one (first item). Cheap: compared on every catch-up."""
        ...


class UrlQuery(Protocol):
    """Where an access request by URL looks (``governance.urls.PublishedAt``): the rule
    of what matches is governance's; a catalog only narrows its scan and asks."""

    def like_pattern(self) -> str:
        """A SQL LIKE pattern (escape ``\\``) that every matching URL satisfies."""
        ...

    def matches(self, stored: str | None) -> bool:
        """Whether a stored ``page_url`` or ``source_url`` falls under the request."""
        ...


class Catalog(Protocol):
    @property
    def writes(self) -> WriteCounter:
        """The catalog's write counter (another process's writes show in ``version[0]``)."""
        ...

    def meta(self, key: str) -> str | None:
        """A value kept with the catalog (the audit log's head, the encryption key's
        fingerprint), or None."""

    def set_meta(self, key: str, value: str) -> None: ...

    def setdefault_meta(self, key: str, value: str) -> str:
        """The value kept under ``key``; ``value`` is stored first when there is none
        (atomically: two processes doing this at once get the same answer)."""
        ...

    def replace_meta(self, key: str, old: str, new: str) -> bool:
        """Set ``new`` only if the value is still ``old`` (atomically: another writer may
        have moved on). Returns whether it was set."""
        ...

    def model_key(self) -> str | None: ...

    def set_model_key(self, key: str) -> None: ...

    def add_source(self, source: Source) -> Source: ...

    def update_source(self, source: Source, expiry: ExpiryRule | None = None) -> Source:
        """Replace a source's policy. With ``expiry`` (its retention changed), every copy
        of the source gets ``expiry(captured_at, ingested_at)`` as its expiry date, in the
        same transaction."""
        ...

    def get_source(self, name: str, counts: bool = True) -> Source | None:
        """The source, or None; without ``counts`` (images, faces), which can be slow."""
        ...

    def list_sources(self, counts: bool = True) -> list[Source]:
        """Every source by name; without ``counts`` (images, faces), which can be slow."""
        ...

    def seen_file(self, source: str, path: str, stamp: FileStamp) -> bool:
        """True when this exact file (same size and mtime) was already ingested here."""
        ...

    def image_id_by_sha(self, sha256: str) -> int | None: ...

    def add_image(
        self, image: NewImage, provenance: Provenance, stamp: FileStamp | None
    ) -> tuple[int, list[int], bool]:
        """Store an image with its faces, or only the provenance when the content is known.

        The provenance carries its ``ingested_at`` and ``expires_at`` (``retention.stamp``),
        and for a frame of a video the video's path and the moment (``video``,
        ``video_time``), stored and returned with it;
        a copy already stored keeps its dates. Returns (image id, new face ids, whether the
        image was new).
        """
        ...

    def add_provenance(
        self, image_id: int, provenance: Provenance, stamp: FileStamp | None
    ) -> bool:
        """Returns False when that provenance row was already there (dates as for
        ``add_image``)."""
        ...

    def record_failure(self, source: str, path: str, reason: str) -> None: ...

    def get_images(self, image_ids: Sequence[int]) -> dict[int, ImageRecord]: ...

    def list_image_ids(
        self, after: int = 0, limit: int = 50, source: str | None = None
    ) -> list[int]: ...

    def images_published_at(self, where: UrlQuery, limit: int | None = None) -> list[int]:
        """Ids of the images with a copy whose ``page_url`` or ``source_url`` falls under
        ``where`` (``PublishedAt.matches``), in id order: an access request by URL. With
        ``limit``, the search stops once it has found more than that many."""
        ...

    def faces_to_images(self, face_ids: Sequence[int]) -> dict[int, int]: ...

    def face_ids(self, sources: Sequence[str] | None = None) -> npt.NDArray[np.int64]: ...

    def iter_embeddings(
        self, batch: int = 10_000
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]: ...

    def embeddings(self, face_ids: Sequence[int]) -> npt.NDArray[np.float32]: ...

    def face_state(self) -> tuple[int, int]:
        """(number of faces, sum of their ids), compared with the index on open."""
        ...

    def embeddings_found(
        self, face_ids: Sequence[int]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The embeddings of those ids that exist (for re-ranking approximate results)."""
        ...

    def sample_embeddings(self, n: int, seed: int = 0) -> npt.NDArray[np.float32]:
        """Up to n embeddings drawn at random (to train an approximate index)."""
        ...

    def images_to_restage(self, model_key: str) -> list[int]:
        """Ids of the images with a face that has no vector of ``model_key`` staged."""
        ...

    def restage(
        self, model_key: str, face_ids: Sequence[int], embeddings: npt.NDArray[np.float32]
    ) -> None:
        """Keep these faces' vectors of another model aside, until :meth:`swap_restaged`."""
        ...

    def swap_restaged(self, model_key: str) -> int:
        """In one transaction: every face's vector becomes its staged one and the home's
        model key ``model_key``. InvalidInput when a face has none; returns faces changed."""
        ...

    def stats(self) -> dict[str, Any]: ...

    def failures(self, limit: int = 100, source: str | None = None) -> list[dict[str, Any]]:
        """Files that could not be ingested (source, path, reason, at), oldest first;
        with ``source``, only that source's."""
        ...

    # -- persons (faces grouped, for sources whose policy declares it) -----------------
    def person_assignments(self) -> tuple[dict[int, int], dict[int, int]]:
        """(every grouped face's person, the confirmed faces' persons)."""
        ...

    def write_grouping(
        self, person_of: Mapping[int, int], ungroup: Sequence[int] = ()
    ) -> dict[int, int]:
        """Store a grouping run in one transaction: each face of ``person_of`` goes to its
        person (a negative number: the n-th new person, created here), except confirmed
        faces, which stay; the faces of ``ungroup`` leave theirs, confirmed or not (their
        source no longer declares grouping). Persons left with no face are deleted.
        Returns the new persons' ids by their numbers."""
        ...

    def place_faces(self, face_ids: Sequence[int], person_id: int | None) -> int:
        """A person's decision: move the faces to ``person_id`` (None: a new person) and
        mark them confirmed; persons left empty are deleted. Returns the person's id;
        NotFound for an unknown person."""
        ...

    def rename_person(self, person_id: int, name: str) -> None:
        """NotFound for an unknown person."""
        ...

    def persons(self, person_ids: Sequence[int] | None = None) -> list[Person]:
        """Persons with at least one face (all, or those of ``person_ids``), by id."""
        ...

    def expired_provenance(self, at: str, sources: Sequence[str]) -> list[int]:
        """Ids of the copies of ``sources`` whose expiry date is ``at`` or earlier."""
        ...

    def provenance_of(
        self, sources: Sequence[str] | None = None, image_ids: Sequence[int] | None = None
    ) -> list[int]: ...

    def describe_provenance(self, provenance_ids: Sequence[int]) -> list[dict[str, Any]]:
        """provenance_id, image_id, source, path, expires_at, sha256 and video (the video
        a frame was taken from, or None) of each copy."""
        ...

    def video_in_use(self, video: str) -> bool:
        """Whether any stored copy is a frame of the video at this path."""
        ...

    def remove_provenance(self, provenance_ids: Sequence[int]) -> Removal:
        """Delete copies, every image left with none, its faces, and persons left with
        no face."""
        ...

    def scrub(self) -> None:
        """Physically purge deleted rows (no copy left in files or journals)."""
        ...

    def close(self) -> None: ...


# -- the audit store ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit entry as stored: ``details`` is the canonical JSON the hash covers (kept
    as that exact text, or the hash could not be checked)."""

    seq: int
    at: str
    actor: str
    action: str
    purpose: str | None
    case_ref: str | None
    details: str
    prev_hash: str
    hash: str


class AuditStore(Protocol):
    """Where the audit log's rows live. It knows nothing of hashes: the chain
    (governance.audit.AuditLog) computes them; the store keeps rows and their order."""

    def append(self, make: Callable[[tuple[int, str] | None], AuditRow]) -> AuditRow:
        """Store the row ``make`` returns, given the head (seq and hash of the last row,
        None when empty) as it is while nothing else can append, in this process or
        another: head read and insert are one transaction. If ``make`` raises, nothing
        is stored."""
        ...

    def rows(
        self,
        *,
        case_ref: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditRow]:
        """Rows by seq, filtered (``since`` inclusive, ``until`` exclusive, ``after`` a
        seq); ``limit`` the most returned."""
        ...

    def stored(self) -> Iterator[AuditRow]:
        """Every row in the order it lies in storage, not sorted by seq: verify reads
        this, so that rows moved or renumbered show."""
        ...

    def head(self) -> tuple[int, str] | None:
        """Seq and hash of the row with the highest seq, or None when empty."""
        ...

    def close(self) -> None: ...


# -- the suppression store ---------------------------------------------------------------
# Ids of suppressions and their templates (one row each, unit vectors).
Templates = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]


class SuppressionStore(Protocol):
    """The templates of people who objected, apart from the gallery. Templates are kept as
    the bytes of the ``TemplateCodec`` the store was built with (sealed or not is the
    builder's decision); matching is governance.suppression's."""

    def add(
        self, template: npt.NDArray[np.float32], model: str, consent_ref: str, note: str
    ) -> int:
        """Store a template with the consent it is kept under; returns its id."""
        ...

    def remove(self, suppression_id: int) -> None:
        """Delete it, leaving no copy in files or journals; NotFound when absent."""
        ...

    def list(self) -> list[dict[str, Any]]:
        """id, consent_ref, note, model and created_at of each, by id (no template)."""
        ...

    def templates(self, model: str) -> Templates:
        """The ids and templates of the suppressions made with ``model`` (only those), by
        id; current with what other processes wrote."""
        ...

    def count(self) -> int: ...

    def close(self) -> None: ...


# -- locks shared by the processes of a deployment ------------------------------------------
class Locks(Protocol):
    """Named locks held across every process that shares the catalog (API servers,
    command-line runs, on one machine or several), for jobs that must run in one process
    at a time (a retention run). A process that dies releases what it held."""

    def exclusive(self, name: str, wait: float | None) -> AbstractContextManager[None]:
        """Hold the lock ``name`` for the block, waiting up to ``wait`` seconds for the
        process holding it (None: as long as it takes); BackendUnavailable past that."""
        ...
