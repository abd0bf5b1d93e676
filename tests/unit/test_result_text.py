"""The outcome of a search in words, first: 'no reliable match' when even the best result
is at chance, the band otherwise."""

from __future__ import annotations

from facesearch.api.schemas import verdict as api_verdict
from facesearch.cli.render import results_text
from facesearch.cli.render import verdict as cli_verdict
from facesearch.domain import (
    BoundingBox,
    Chance,
    ImageRecord,
    Match,
    ModelId,
    ProbeFace,
    SearchResult,
)
from facesearch.vision.calibration import band_of

BOX = BoundingBox(0, 0, 10, 10)
MODEL = ModelId("m", "1", 4, "cosine")


def result(*expected: float, calibrated: bool = True) -> SearchResult:
    matches = tuple(
        Match(
            rank=n,
            similarity=0.9 - n / 100,
            is_match=False,
            face_id=n,
            box=BOX,
            image=ImageRecord(n, f"{n:064x}", 10, 10, "jpeg", 1, "2026-01-01"),
            chance=Chance(0.9, e / 1000, e, False, band_of(e)) if calibrated else None,
        )
        for n, e in enumerate(expected, start=1)
    )
    face = ProbeFace(0, BOX, 1.0, 10)
    return SearchResult(face, 0.93, matches, MODEL, (face,), 1000, calibrated)


def test_a_best_result_at_chance_says_no_reliable_match_first() -> None:
    at_chance = result(2.5, 4.0)
    assert at_chance.reliable is False
    assert api_verdict(at_chance).startswith("No reliable match")
    assert cli_verdict(at_chance).startswith("NO RELIABLE MATCH")
    lines = results_text([at_chance]).splitlines()
    assert lines.index(cli_verdict(at_chance)) < next(
        i for i, line in enumerate(lines) if line.strip().startswith("1.")
    )


def test_otherwise_the_best_band_is_named() -> None:
    good = result(0.004, 3.0)
    assert good.reliable is True
    assert api_verdict(good) == "Best result: strong (0.890)."
    assert "~0.004 others as high" in results_text([good])


def test_without_calibration_nothing_is_claimed() -> None:
    bare = result(0.0, calibrated=False)
    assert bare.reliable is None
    assert "no calibration" in api_verdict(bare) and "no calibration" in cli_verdict(bare)
