"""What a similarity means in a collection of a given size: the model's measured impostor
scores, shipped with the package, turned into an expected count of different people.

A search compares the probe with every face searched. If a fraction ``FMR(s)`` of
different-person pairs score ``s`` or more (measured on the dev set by
``bench/calibrate_threshold.py --write``), then among ``N`` faces of other people about
``FMR(s) x N`` are expected to score as high as a result at ``s``. That number, not the
bare similarity, says whether a result stands out from chance in *this* collection:

* it assumes the collection's people are as unlike each other as the dev set's (faces of
  one ethnicity, age or photo style can score higher among themselves: fewer impostor
  pairs of that kind were measured);
* it counts every face searched as another person's (the person sought may fill some);
* where fewer than 3 impostor pairs of the calibration scored ``s`` or more, the rate is
  shown as 3 / pairs and flagged as a bound (for none seen, the "rule of three": the 95%
  upper bound for zero events), never zero.

Bands name the expected count in plain words (see :data:`BANDS`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesearch.domain import CHANCE, Chance

CALIBRATIONS = Path(__file__).resolve().parent / "calibrations"
GRID_STEP = 0.005  # similarity steps of the stored survival counts
TOP_KEPT = 2000  # the highest impostor scores, kept exactly (the tail that matters)
# Below this many impostor pairs at a score the calibration cannot tell rates apart: the
# rate shown is FLOOR_COUNT / pairs, flagged as a bound (for none seen it is the "rule of
# three", the 95% upper bound; it also keeps the rate from rising with the score).
FLOOR_COUNT = 3

# (band, the expected number of different-person faces scoring as high, below which a
# result gets it). A result at or above the last bound is no better than chance.
BANDS: tuple[tuple[str, float], ...] = (
    ("strong", 0.01),
    ("possible", 0.1),
    ("weak lead", 1.0),
)


def band_of(expected_false: float) -> str:
    for name, below in BANDS:
        if expected_false < below:
            return name
    return CHANCE


@dataclass(frozen=True, slots=True)
class Calibration:
    """A model's impostor score distribution: counts at or above each grid step, and the
    highest scores exactly."""

    model: str
    impostor_pairs: int
    genuine_pairs: int
    at_least: tuple[int, ...]  # at_least[i]: impostor scores >= -1 + i * GRID_STEP
    top: tuple[float, ...]  # the TOP_KEPT highest impostor scores, highest first
    made_by: str = ""

    @property
    def file_name(self) -> str:
        return file_name(self.model)

    @classmethod
    def from_scores(
        cls, model: str, impostor: np.ndarray, genuine_pairs: int, made_by: str = ""
    ) -> Calibration:
        scores = np.sort(np.asarray(impostor, dtype=np.float64))
        grid = -1.0 + GRID_STEP * np.arange(round(2 / GRID_STEP) + 1)
        below = np.searchsorted(scores, grid, side="left")
        return cls(
            model=model,
            impostor_pairs=len(scores),
            genuine_pairs=genuine_pairs,
            at_least=tuple(int(len(scores) - b) for b in below),
            top=tuple(round(float(s), 6) for s in scores[::-1][:TOP_KEPT]),
            made_by=made_by,
        )

    def false_match_rate(self, similarity: float) -> tuple[float, bool]:
        """The fraction of impostor pairs scoring ``similarity`` or more, and whether it is
        a bound (fewer than 3 did: 3 / pairs)."""
        if self.top and similarity > self.top[-1]:
            count = sum(1 for s in self.top if s >= similarity)
        else:
            # The grid step at or below the score: counts a few more, never fewer.
            i = min(max(math.floor((similarity + 1) / GRID_STEP + 1e-9), 0), len(self.at_least) - 1)
            count = self.at_least[i]
        if count < FLOOR_COUNT:
            return FLOOR_COUNT / self.impostor_pairs, True
        return count / self.impostor_pairs, False

    def chance(self, similarity: float, comparisons: int) -> Chance:
        """``similarity`` against ``comparisons`` faces of other people."""
        rate, bound = self.false_match_rate(similarity)
        expected = rate * max(comparisons, 0)
        return Chance(
            similarity=similarity,
            false_match_rate=rate,
            expected_false=expected,
            upper_bound=bound,
            band=band_of(expected),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "model": self.model,
            "made_by": self.made_by,
            "impostor_pairs": self.impostor_pairs,
            "genuine_pairs": self.genuine_pairs,
            "grid_step": GRID_STEP,
            "at_least": list(self.at_least),
            "top": list(self.top),
        }
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        data = json.loads(path.read_text())
        if data.get("grid_step") != GRID_STEP:
            raise ValueError(f"{path}: grid step {data.get('grid_step')} is not {GRID_STEP}")
        return cls(
            model=str(data["model"]),
            impostor_pairs=int(data["impostor_pairs"]),
            genuine_pairs=int(data["genuine_pairs"]),
            at_least=tuple(int(c) for c in data["at_least"]),
            top=tuple(float(s) for s in data["top"]),
            made_by=str(data.get("made_by", "")),
        )


def file_name(model_key: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", model_key) + ".json"


def for_model(model_key: str, folder: Path = CALIBRATIONS) -> Calibration | None:
    """The shipped calibration of a model, or None (a model nobody calibrated yet: its
    results carry no expected count and no band)."""
    path = folder / file_name(model_key)
    return Calibration.load(path) if path.exists() else None


def chances(
    calibration: Calibration | None, similarities: Sequence[float], comparisons: int
) -> list[Chance | None]:
    if calibration is None:
        return [None] * len(similarities)
    return [calibration.chance(s, comparisons) for s in similarities]
