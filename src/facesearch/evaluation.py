"""Verification metrics on labelled pairs, so an operator can calibrate the threshold.

Scores are similarities (higher is closer). Every metric here is plain numpy over the
scores and labels; embedding the photos is the engine's job.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch.errors import InvalidInput

Scores = npt.NDArray[np.float64]
Labels = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Pair:
    path_a: str
    path_b: str
    same: bool
    fold: int | None


def read_pairs(path: Path) -> list[Pair]:
    """Read ``path_a,path_b,same[,fold]``; ``same`` is 1/0, true/false or yes/no."""
    truthy, falsy = {"1", "true", "yes", "same"}, {"0", "false", "no", "different"}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            need = {"path_a", "path_b", "same"}
            if reader.fieldnames is None or not need <= set(reader.fieldnames):
                raise InvalidInput(f"{path}: needs the columns path_a, path_b, same")
            pairs = []
            for line, row in enumerate(reader, start=2):
                same = (row["same"] or "").strip().lower()
                if same not in truthy | falsy:
                    raise InvalidInput(f"{path}:{line}: 'same' must be 1 or 0, not {same!r}")
                fold = (row.get("fold") or "").strip()
                if fold and not fold.lstrip("-").isdigit():
                    raise InvalidInput(f"{path}:{line}: 'fold' must be an integer")
                pairs.append(
                    Pair(row["path_a"], row["path_b"], same in truthy, int(fold) if fold else None)
                )
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not a UTF-8 CSV file") from None
    if not pairs:
        raise InvalidInput(f"{path}: no pairs")
    return pairs


def best_threshold(scores: Scores, labels: Labels) -> tuple[float, float]:
    """The threshold with the highest accuracy on these pairs, and that accuracy."""
    candidates = np.unique(scores)
    # Midpoints between neighbouring scores generalise better than the scores themselves.
    mids = np.concatenate([[candidates[0] - 1e-6], (candidates[:-1] + candidates[1:]) / 2])
    accs = np.array([((scores >= t) == labels).mean() for t in mids])
    i = int(accs.argmax())
    return float(mids[i]), float(accs[i])


def k_fold_accuracy(scores: Scores, labels: Labels, folds: Sequence[int]) -> dict[str, Any]:
    """Accuracy on each fold at the threshold chosen on the other folds (LFW protocol)."""
    fold_ids = np.asarray(folds)
    accs, thresholds = [], []
    for f in np.unique(fold_ids):
        test = fold_ids == f
        t, _ = best_threshold(scores[~test], labels[~test])
        accs.append(float(((scores[test] >= t) == labels[test]).mean()))
        thresholds.append(t)
    return {
        "folds": len(accs),
        "accuracy": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "thresholds": thresholds,
    }


def roc_auc(scores: Scores, labels: Labels) -> float:
    """Probability that a same-person pair outscores a different-person pair (ties half)."""
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    # Average ranks over ties.
    allscores = np.concatenate([pos, neg])
    for value in np.unique(allscores):
        tie = allscores == value
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def tar_at_far(scores: Scores, labels: Labels, far: float) -> dict[str, Any]:
    """True accept rate at the lowest threshold whose false accept rate is at most ``far``."""
    pos, neg = np.sort(scores[labels]), np.sort(scores[~labels])
    if len(neg) == 0 or len(pos) == 0:
        return {"far_target": far, "tar": float("nan"), "threshold": float("nan")}
    allowed = int(np.floor(far * len(neg)))  # false accepts we may make
    # Accept scores strictly above the (allowed+1)-th highest negative.
    threshold = float(np.nextafter(neg[-(allowed + 1)], np.inf))
    return {
        "far_target": far,
        "far": float((neg >= threshold).mean()),
        "tar": float((pos >= threshold).mean()),
        "threshold": threshold,
        "negatives": len(neg),
        # With n negatives the smallest measurable FAR is 1/n.
        "far_resolution": 1.0 / len(neg),
    }


def verification_report(
    scores: Scores, labels: Labels, folds: Sequence[int | None], threshold: float
) -> dict[str, Any]:
    """Everything ``facesearch eval`` prints."""
    report: dict[str, Any] = {
        "pairs": len(scores),
        "same": int(labels.sum()),
        "different": int((~labels).sum()),
        "roc_auc": roc_auc(scores, labels),
        "threshold": threshold,
        "accuracy_at_threshold": float(((scores >= threshold) == labels).mean()),
        "false_match_rate_at_threshold": float((scores[~labels] >= threshold).mean())
        if (~labels).any()
        else float("nan"),
        "true_match_rate_at_threshold": float((scores[labels] >= threshold).mean())
        if labels.any()
        else float("nan"),
        "tar_at_far": [tar_at_far(scores, labels, far) for far in (1e-3, 1e-2)],
    }
    if all(f is not None for f in folds) and len(set(folds)) > 1:
        report["k_fold"] = k_fold_accuracy(scores, labels, [int(f or 0) for f in folds])
    t, acc = best_threshold(scores, labels)
    report["best_threshold"] = {"threshold": t, "accuracy": acc, "note": "fit on these pairs"}
    return report
