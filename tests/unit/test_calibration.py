"""What a similarity means in a collection: expected different-person faces and bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesearch.domain import CHANCE
from facesearch.vision.calibration import (
    CALIBRATIONS,
    Calibration,
    band_of,
    file_name,
    for_model,
)

DEFAULT_MODEL = "dlib_face_recognition_resnet_model_v1@0.3.0/chip150p25+flip/128/cosine"


def made_up(n: int = 100_000, seed: int = 0) -> tuple[Calibration, np.ndarray]:
    scores = np.random.default_rng(seed).normal(0.6, 0.08, n).clip(-1, 1)
    return Calibration.from_scores("m@1/4/cosine", scores, genuine_pairs=10), scores


def test_the_rate_counts_impostors_scoring_as_high_never_fewer() -> None:
    calibration, scores = made_up()
    for s in (0.3, 0.55, 0.6, 0.7, 0.8, 0.85, float(np.sort(scores)[-5])):
        rate, bound = calibration.false_match_rate(s)
        exact = float((scores >= s).mean())
        assert not bound
        assert exact <= rate <= exact + 0.02, s  # the grid step below counts a few more
    third = float(np.sort(scores)[-3])
    assert calibration.false_match_rate(third) == (3 / len(scores), False)


def test_above_every_impostor_the_rate_is_an_upper_bound_not_zero() -> None:
    calibration, scores = made_up()
    for above in (float(scores.max()) + 0.01, float(np.sort(scores)[-2])):
        rate, bound = calibration.false_match_rate(above)
        assert bound and rate == pytest.approx(3 / len(scores))
    rates = [calibration.false_match_rate(s)[0] for s in np.linspace(0.5, 1.0, 400)]
    assert rates == sorted(rates, reverse=True)  # never rises with the score
    chance = calibration.chance(0.999, comparisons=10_000_000)
    assert chance.upper_bound and chance.expected_false == pytest.approx(300.0)
    assert chance.band == CHANCE  # a bound this large is no reassurance


def test_one_similarity_means_less_in_a_bigger_collection() -> None:
    calibration, scores = made_up()
    s = float(np.quantile(scores, 1 - 1e-4))  # about 1 impostor pair in 10,000
    bands = [calibration.chance(s, n).band for n in (10, 100, 1_000, 100_000)]
    assert bands == ["strong", "possible", "weak lead", CHANCE]
    expected = [calibration.chance(s, n).expected_false for n in (10, 100, 1_000)]
    assert expected[1] == pytest.approx(10 * expected[0])


def test_bands_are_named_by_the_expected_count() -> None:
    assert [band_of(x) for x in (0, 0.009, 0.05, 0.5, 1.0, 80)] == [
        "strong",
        "strong",
        "possible",
        "weak lead",
        CHANCE,
        CHANCE,
    ]


def test_a_calibration_survives_saving(tmp_path: Path) -> None:
    calibration, _ = made_up(5_000)
    calibration.save(tmp_path / calibration.file_name)
    assert for_model(calibration.model, tmp_path) == calibration
    assert for_model("other@1/4/cosine", tmp_path) is None


def test_the_default_model_ships_its_calibration() -> None:
    shipped = for_model(DEFAULT_MODEL)
    assert shipped is not None, f"no {file_name(DEFAULT_MODEL)} in {CALIBRATIONS}"
    assert shipped.model == DEFAULT_MODEL
    assert shipped.impostor_pairs > 100_000 and shipped.genuine_pairs > 1_000
    # The example: unrelated people at 0.87 are common; at 0.935 still seen.
    assert shipped.false_match_rate(0.87)[0] > 1e-3
    assert shipped.chance(0.935, 300).band != "strong"
    for path in CALIBRATIONS.glob("*.json"):
        assert file_name(Calibration.load(path).model) == path.name
