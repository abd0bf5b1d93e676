"""The local index resolves a FaceFilter through the catalog: each condition on its own,
on any copy of a face's image (as Milvus applies the same filter to its labels; the two
are compared in test_milvus_engine.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facesearch.catalog.sqlite import SqliteCatalog
from facesearch.domain import Provenance, Source
from facesearch.index.local.adapter import filtered_ids
from facesearch.index.ports import FaceFilter

from ..synthetic import clustered

PAST = "2020-01-01T00:00:00+00:00"


def _source(name: str, places: tuple[str, ...]) -> Source:
    return Source(
        name=name,
        lawful_basis="legitimate_interests",
        special_category_condition="legal_claims",
        retention_days=30,
        jurisdictions=places,
    )


def test_sources_jurisdictions_and_expiry_each_narrow_the_faces(tmp_path: Path) -> None:
    catalog = SqliteCatalog(tmp_path / "catalog.sqlite")
    catalog.add_source(_source("a", ("DE",)))
    catalog.add_source(_source("b", ("FR",)))
    old = catalog.bulk_add_embeddings("a", clustered(10, 1), expires_at=PAST)
    new = catalog.bulk_add_embeddings("b", clustered(5, 2))
    # One old image also turns up in b, where it has not expired.
    copied = int(old[0])
    image = catalog.faces_to_images([copied])[copied]
    copy = Provenance(
        source="b",
        path="copy.jpg",
        ingested_at="2026-01-01T00:00:00+00:00",
        expires_at="2999-01-01T00:00:00+00:00",
    )
    catalog.add_provenance(image, copy, None)

    def ids(**where: object) -> list[int]:
        return filtered_ids(catalog, FaceFilter(**where)).tolist()  # type: ignore[arg-type]

    everyone = sorted([*old.tolist(), *new.tolist()])
    assert ids() == everyone
    assert ids(sources=("a",)) == old.tolist()
    assert ids(sources=("b",)) == sorted([copied, *new.tolist()])
    assert ids(jurisdictions=("fr",)) == ids(sources=("b",))
    assert ids(jurisdictions=("IT",)) == [] and ids(sources=()) == []
    assert ids(now="2019-12-31T00:00:00+00:00") == everyone
    assert ids(now="2021-01-01T00:00:00+00:00") == sorted([copied, *new.tolist()])
    # Each condition on its own: the copied face has a copy in a, and an unexpired one.
    assert ids(sources=("a",), now="2021-01-01T00:00:00+00:00") == [copied]
    assert np.array_equal(filtered_ids(catalog, FaceFilter(sources=("a",))), old)
    catalog.close()
