"""The catalog applies no governance rule of its own: it keeps the expiry dates it is
given, rewrites them with the rule it is handed, looks for expired copies only in the
sources it is told, and keeps templates as its codec encodes them (sealed or not)."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from facesearch.catalog.ports import NewImage
from facesearch.catalog.sqlite import SqliteCatalog
from facesearch.domain import BoundingBox, DetectedFace, Provenance, Source
from facesearch.errors import ConfigError, InvalidInput
from facesearch.governance.retention import expiry_rule, stamp
from facesearch.imaging import DecodeLimits
from facesearch.index.local.memory import MemoryIndex
from facesearch.ingest.analyse import sha256_of
from facesearch.ingest.items import IngestItem
from facesearch.ingest.runner import IngestRun
from facesearch.security.sealing import MAGIC, Sealer
from facesearch.security.templates import TemplateCodec

from ..synthetic import clustered

KEY = base64.b64encode(bytes(range(32))).decode()
FACE = DetectedFace(box=BoundingBox(0, 0, 100, 100), score=1.0, landmarks=(), sharpness=9.0)


def _source(name: str, hold: bool = False) -> Source:
    return Source(name, "legitimate_interests", "legal_claims", 30, legal_hold=hold)


def _image(n: int, vector: np.ndarray) -> NewImage:
    return NewImage(f"{n:064x}", 100, 100, "JPEG", 1, faces=[FACE], embeddings=vector[None, :])


def test_dates_are_stored_as_given_and_rewritten_by_the_rule_handed_in(tmp_path: Path) -> None:
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    catalog.add_source(_source("press"))
    vecs = clustered(5, 1)
    # A date no rule of the catalog's would give: it is kept as it is.
    given = Provenance("press", "/a.jpg", ingested_at="2026-01-01T00:00:00+00:00")
    given = replace(given, expires_at="2031-07-14T00:00:00+00:00")
    image_id, _, _ = catalog.add_image(_image(1, vecs[0]), given, None)
    taken = stamp(Provenance("press", "/b.jpg", captured_at="2020-02-28"), 2)
    other_id, _, _ = catalog.add_image(_image(2, vecs[1]), taken, None)
    images = catalog.get_images([image_id, other_id])
    assert images[image_id].provenance[0].expires_at == "2031-07-14T00:00:00+00:00"
    assert images[image_id].provenance[0].ingested_at == "2026-01-01T00:00:00+00:00"
    assert images[other_id].provenance[0].expires_at == "2020-03-01T00:00:00+00:00"

    with pytest.raises(InvalidInput, match="expiry"):  # a new copy without its dates
        catalog.add_image(_image(3, vecs[2]), Provenance("press", "/c.jpg"), None)

    # A change of retention: every copy of the source gets what the rule returns.
    catalog.update_source(replace(_source("press"), retention_days=365), expiry_rule(365))
    images = catalog.get_images([image_id, other_id])
    assert images[image_id].provenance[0].expires_at == "2027-01-01T00:00:00+00:00"
    assert images[other_id].provenance[0].expires_at == "2021-02-27T00:00:00+00:00"
    # A change of policy with no rule leaves the dates alone.
    catalog.update_source(replace(_source("press"), retention_days=365, contact="dpo@x"))
    assert catalog.get_images([image_id])[image_id].provenance[0].expires_at == (
        "2027-01-01T00:00:00+00:00"
    )
    catalog.close()


def test_expired_copies_are_looked_for_in_the_sources_named_only(tmp_path: Path) -> None:
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    for source in (_source("press"), _source("case-1234", hold=True), _source("web")):
        catalog.add_source(source)
    past = "2020-01-01T00:00:00+00:00"
    for seed, name in enumerate(("press", "case-1234", "web")):
        catalog.bulk_add_embeddings(name, clustered(5, seed), prefix=name, expires_at=past)
    now = "2026-01-01T00:00:00+00:00"
    described = catalog.describe_provenance(catalog.expired_provenance(now, ["press"]))
    assert {d["source"] for d in described} == {"press"} and len(described) == 5
    # Legal hold is the caller's rule: a held source named is searched like any other.
    assert len(catalog.expired_provenance(now, ["case-1234", "web"])) == 10
    assert catalog.expired_provenance(now, []) == []
    assert catalog.expired_provenance("2019-01-01T00:00:00+00:00", ["press"]) == []
    catalog.close()


def test_templates_are_kept_as_the_codec_encodes_them(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    sealed = TemplateCodec(Sealer.from_secret(KEY))
    catalog = SqliteCatalog(path, sealed)
    catalog.add_source(_source("press"))
    vecs = clustered(10, 3)
    ids = catalog.bulk_add_embeddings("press", vecs)
    blobs = [r[0] for r in catalog.db.execute("SELECT embedding FROM faces ORDER BY id")]
    assert all(b.startswith(MAGIC) for b in blobs)  # nothing stored in the clear
    assert all(vecs[0].tobytes() not in b for b in blobs)
    assert np.array_equal(catalog.embeddings(ids.tolist()), vecs)
    assert np.array_equal(catalog.embeddings_found(ids.tolist())[1], vecs)
    assert np.array_equal(np.concatenate([v for _, v in catalog.iter_embeddings(4)]), vecs)
    catalog.close()
    plain = SqliteCatalog(path)  # the same file opened without the key
    with pytest.raises(ConfigError, match="encrypted"):
        plain.embeddings(ids.tolist())
    plain.close()


def test_an_ingest_dates_its_copies_by_the_retention_in_force_when_it_writes(
    tmp_path: Path,
) -> None:
    """A source's period changed while an ingest runs applies to the copies it writes next."""
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    for name in ("press", "archive"):
        catalog.add_source(_source(name))
    photo = tmp_path / "copy.jpg"
    photo.write_bytes(b"the same content, known already")
    known = Provenance("press", "/first.jpg", ingested_at="2026-01-01T00:00:00+00:00")
    image = replace(_image(0, clustered(5, 5)[0]), sha256=sha256_of(photo.read_bytes()))
    catalog.add_image(image, replace(known, expires_at="2026-02-01T00:00:00+00:00"), None)
    run = IngestRun(catalog, MemoryIndex(), "archive", DecodeLimits(10**6, 10**7))
    catalog.update_source(replace(_source("archive"), retention_days=3650), expiry_rule(3650))
    taken = datetime.now(UTC).date() - timedelta(days=1)
    assert run.prepare(IngestItem(photo, captured_at=taken.isoformat())) is None  # a copy
    run.flush()
    (image,) = catalog.get_images(catalog.list_image_ids(source="archive")).values()
    copy = next(p for p in image.provenance if p.source == "archive")
    assert copy.expires_at == f"{taken + timedelta(days=3650)}T00:00:00+00:00"
    catalog.close()
