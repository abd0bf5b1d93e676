"""The face ids of a source, as a source-restricted search reads them, follow every write:
this connection's, and another process's on the same catalog file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facesearch.catalog.sqlite import SqliteCatalog
from facesearch.domain import Source

from ..synthetic import clustered


def _source(name: str) -> Source:
    return Source(
        name=name,
        lawful_basis="legitimate_interests",
        special_category_condition="legal_claims",
        retention_days=30,
    )


def test_source_face_ids_follow_every_write(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    catalog = SqliteCatalog(path)
    for name in ("a", "b"):
        catalog.add_source(_source(name))
    in_a = catalog.bulk_add_embeddings("a", clustered(30, 1))
    in_b = catalog.bulk_add_embeddings("b", clustered(20, 2))
    first = catalog.face_ids(["a"])
    assert np.array_equal(first, in_a)
    assert catalog.face_ids(["a"]) is first  # asked again, unchanged: not read again
    assert not first.flags.writeable

    more = catalog.bulk_add_embeddings("a", clustered(10, 3))  # a write here
    assert np.array_equal(catalog.face_ids(["a"]), np.concatenate([in_a, more]))

    other = SqliteCatalog(path)  # another process's connection to the same file
    late = other.bulk_add_embeddings("a", clustered(5, 4))
    images = list(other.faces_to_images(in_a[:3].tolist()).values())
    removal = other.remove_provenance(other.provenance_of(image_ids=images))
    other.close()
    expected = np.setdiff1d(np.concatenate([in_a, more, late]), removal.face_ids)
    assert np.array_equal(catalog.face_ids(["a"]), expected)
    assert np.array_equal(catalog.face_ids(["b", "a", "b"]), np.union1d(expected, in_b))
    catalog.close()
