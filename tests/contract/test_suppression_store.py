"""The suppression list's contract, run against every store in ``adapters.SUPPRESSION_LISTS``
(plain and sealed): templates of people who objected, kept with their consent reference,
compared at the strict threshold with faces being ingested and search results, and only
with vectors of the same model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facesearch.config import STRICT_MATCH_THRESHOLD
from facesearch.errors import InvalidInput, NotFound

from ..synthetic import clustered
from .adapters import SUPPRESSION_LISTS, SuppressionStore, params

MODEL = "dlib-resnet-v1:128"
VECTORS = clustered(50, 11, groups=50)
PERSON, OTHER, STRANGER = VECTORS[0], VECTORS[10], VECTORS[20]
# Another photo of the suppressed person: close, above the strict threshold.
_near = PERSON + 0.012 * np.random.default_rng(3).standard_normal(PERSON.shape)
NEAR = (_near / np.linalg.norm(_near)).astype(np.float32)


def unit(rows: list[np.ndarray]) -> np.ndarray:
    return np.stack(rows).astype(np.float32)


@pytest.fixture(params=params(SUPPRESSION_LISTS))
def adapter(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "suppression"


@pytest.fixture
def store(adapter: str, folder: Path) -> Iterator[SuppressionStore]:
    opened = SUPPRESSION_LISTS[adapter].open(folder)
    yield opened
    opened.close()


def test_the_test_vectors_are_what_they_claim() -> None:
    assert float(NEAR @ PERSON) >= STRICT_MATCH_THRESHOLD
    assert float(STRANGER @ PERSON) < 0.9 and float(STRANGER @ OTHER) < 0.9


def test_suppressions_are_added_listed_and_removed(store: SuppressionStore) -> None:
    first = store.add(PERSON, MODEL, "consent-17", "objected by email")
    second = store.add(OTHER, MODEL, "consent-18", "")
    assert store.count() == 2 and first != second
    listed = store.list()
    assert [(s["id"], s["consent_ref"], s["note"], s["model"]) for s in listed] == [
        (first, "consent-17", "objected by email", MODEL),
        (second, "consent-18", "", MODEL),
    ]
    assert all(s["created_at"] for s in listed)
    store.remove(first)
    assert [s["id"] for s in store.list()] == [second] and store.count() == 1
    with pytest.raises(NotFound):
        store.remove(first)


def test_a_suppression_needs_a_consent_reference(store: SuppressionStore) -> None:
    with pytest.raises(InvalidInput):
        store.add(PERSON, MODEL, "  ", "no reference")
    assert store.count() == 0


def test_a_close_face_matches_at_the_strict_threshold_and_a_far_one_does_not(
    store: SuppressionStore,
) -> None:
    probe = unit([STRANGER, NEAR, PERSON])
    assert store.matches(probe, MODEL, STRICT_MATCH_THRESHOLD).tolist() == [False] * 3
    store.add(PERSON, MODEL, "consent-17", "")
    assert store.matches(probe, MODEL, STRICT_MATCH_THRESHOLD).tolist() == [False, True, True]
    assert store.matches(probe[:0], MODEL, STRICT_MATCH_THRESHOLD).tolist() == []
    suppression = store.list()[0]["id"]
    store.remove(suppression)
    assert store.matches(probe, MODEL, STRICT_MATCH_THRESHOLD).tolist() == [False] * 3


def test_a_template_of_another_model_never_matches(store: SuppressionStore) -> None:
    store.add(PERSON, MODEL, "consent-17", "")
    probe = unit([PERSON])
    assert store.matches(probe, MODEL, STRICT_MATCH_THRESHOLD).tolist() == [True]
    # The same numbers from another model mean nothing: never compared.
    assert store.matches(probe, "arcface-r100:512", STRICT_MATCH_THRESHOLD).tolist() == [False]
    assert store.matches(probe, MODEL, STRICT_MATCH_THRESHOLD).tolist() == [True]


def test_a_suppression_made_elsewhere_is_honoured_at_once(
    adapter: str, folder: Path, store: SuppressionStore
) -> None:
    """The CLI adds a suppression while the server runs: the server's next ingest or search
    must withhold that person, without a restart."""
    probe = unit([NEAR])
    assert store.matches(probe, MODEL, STRICT_MATCH_THRESHOLD).tolist() == [False]
    elsewhere = SUPPRESSION_LISTS[adapter].open(folder)
    try:
        added = elsewhere.add(PERSON, MODEL, "consent-17", "")
        assert store.matches(probe, MODEL, STRICT_MATCH_THRESHOLD).tolist() == [True]
        elsewhere.remove(added)
        assert store.matches(probe, MODEL, STRICT_MATCH_THRESHOLD).tolist() == [False]
    finally:
        elsewhere.close()


def test_templates_are_kept_only_as_the_store_allows(
    adapter: str, folder: Path, store: SuppressionStore
) -> None:
    """Sealed, no template is readable in what the store keeps; removed, none is left."""
    removed = store.add(PERSON, MODEL, "consent-17", "")
    store.add(OTHER, MODEL, "consent-18", "")
    stored = SUPPRESSION_LISTS[adapter].stored(folder)
    if SUPPRESSION_LISTS[adapter].sealed:
        assert PERSON.tobytes() not in stored and OTHER.tobytes() not in stored
        assert PERSON[:8].tobytes() not in stored
    else:  # the check can see a template that is there
        assert PERSON.tobytes() in stored
    store.remove(removed)
    assert PERSON[:8].tobytes() not in SUPPRESSION_LISTS[adapter].stored(folder)
    assert store.matches(unit([OTHER]), MODEL, STRICT_MATCH_THRESHOLD).tolist() == [True]
