"""At what similarity should a result count as a likely match?

Embeds every labelled one-face photo of the dev set through the engine (default model
or ``--variant``, largest face), then scores every pair of photos *within one source*
(labels are unique only within a source): same label = genuine pair, different label =
impostor pair.
The proposed threshold is the lowest similarity, rounded up to 0.01, at which the false
match rate over all impostor pairs is at most ``--fmr`` (default 1e-3). It reports the
false and true match rates there, overall and per source, and at the current default.

    .venv/bin/python bench/calibrate_threshold.py [--fmr 1e-3] [--write]

``--write`` also saves the impostor score distribution as the model's calibration
(``src/facesearch/vision/calibration/``, shipped with the package): the engine reads it to
tell, for every result, how many different-person faces of the searched collection are
expected to score as high (``facesearch.vision.calibration``).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import devset
from facesearch import FaceSearch, Settings
from facesearch.config import DEFAULT_MATCH_THRESHOLD
from facesearch.evaluation import tar_at_far
from facesearch.vision.calibration import CALIBRATIONS, Calibration


def pair_scores(vectors: np.ndarray, identities: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Similarities of every unordered pair, and whether the pair is the same person."""
    sims = vectors @ vectors.T
    upper = np.triu_indices(len(identities), k=1)
    labels = np.asarray(identities)
    return sims[upper].astype(np.float64), labels[upper[0]] == labels[upper[1]]


def rates(scores: np.ndarray, same: np.ndarray, threshold: float) -> dict[str, Any]:
    return {
        "genuine_pairs": int(same.sum()),
        "impostor_pairs": int((~same).sum()),
        "fmr": float((scores[~same] >= threshold).mean()) if (~same).any() else None,
        "false_matches": int((scores[~same] >= threshold).sum()),
        "tmr": float((scores[same] >= threshold).mean()) if same.any() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fmr", type=float, default=1e-3, help="target false match rate")
    parser.add_argument("--variant", default="default", choices=sorted(devset.VARIANTS))
    parser.add_argument(
        "--write",
        action="store_true",
        help="save the impostor distribution as the model's shipped calibration",
    )
    args = parser.parse_args()
    variant = devset.VARIANTS[args.variant]
    cache = devset.DescriptorCache()
    per_source: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    missing: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", workers=1)
        with FaceSearch(settings, **variant.parts(cache)) as fs:
            model = fs.model.key
            for source, photos in sorted(devset.labelled_photos().items()):
                vecs, idents = [], []
                for rel, ident in photos:
                    probe = fs.probe(devset.DEV / rel)
                    if not probe.faces:
                        missing.append(rel)  # a photo without a face can match nothing
                        continue
                    vecs.append(probe.embeddings[0])
                    idents.append(ident)
                per_source[source] = pair_scores(np.stack(vecs), idents)
    cache.save()
    scores = np.concatenate([s for s, _ in per_source.values()])
    same = np.concatenate([m for _, m in per_source.values()])
    exact = tar_at_far(scores, same, args.fmr)
    if args.write:
        calibration = Calibration.from_scores(
            model, scores[~same], int(same.sum()), made_by="bench/calibrate_threshold.py"
        )
        calibration.save(CALIBRATIONS / calibration.file_name)
    proposed = math.ceil(exact["threshold"] * 100) / 100
    print(
        json.dumps(
            {
                "variant": variant.name,
                "model": model,
                "target_fmr": args.fmr,
                "exact_threshold": round(exact["threshold"], 4),
                "tmr_at_exact_threshold": round(exact["tar"], 4),
                "proposed_threshold": proposed,
                "at_proposed": rates(scores, same, proposed)
                | {"per_source": {k: rates(s, m, proposed) for k, (s, m) in per_source.items()}},
                "current_default": DEFAULT_MATCH_THRESHOLD,
                "at_current_default": rates(scores, same, DEFAULT_MATCH_THRESHOLD),
                "photos_without_face": missing,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
