from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesearch.errors import InvalidInput
from facesearch.evaluation import (
    best_threshold,
    k_fold_accuracy,
    read_pairs,
    roc_auc,
    tar_at_far,
    verification_report,
)


def test_perfectly_separated_scores() -> None:
    scores = np.array([0.9, 0.8, 0.95, 0.1, 0.2, 0.3])
    labels = np.array([True, True, True, False, False, False])
    assert roc_auc(scores, labels) == 1.0
    t, acc = best_threshold(scores, labels)
    assert 0.3 < t <= 0.8 and acc == 1.0
    tar = tar_at_far(scores, labels, 1e-3)
    assert tar["tar"] == 1.0 and tar["far"] == 0.0


def test_auc_counts_ties_as_half() -> None:
    assert roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5
    assert roc_auc(np.array([0.1, 0.9]), np.array([True, False])) == 0.0


def test_tar_at_far_allows_the_stated_false_accepts() -> None:
    rng = np.random.default_rng(0)
    neg = rng.normal(0.0, 1.0, 1000)
    pos = rng.normal(3.0, 1.0, 1000)
    scores = np.concatenate([pos, neg])
    labels = np.concatenate([np.ones(1000, bool), np.zeros(1000, bool)])
    r = tar_at_far(scores, labels, 1e-2)
    assert r["far"] <= 1e-2
    assert (neg >= r["threshold"]).sum() <= 10
    # Threshold near the 99th percentile of N(0,1), 2.33: TAR = P(N(3,1) >= 2.33) = 0.75.
    assert 0.70 < r["tar"] < 0.80


def test_k_fold_picks_thresholds_on_other_folds() -> None:
    scores = np.array([0.9, 0.1] * 10)
    labels = np.array([True, False] * 10)
    folds = [i // 2 for i in range(20)]
    k = k_fold_accuracy(scores, labels, folds)
    assert k["folds"] == 10 and k["accuracy"] == 1.0


def test_report_has_k_fold_only_with_folds() -> None:
    scores = np.array([0.9, 0.1, 0.8, 0.2])
    labels = np.array([True, False, True, False])
    assert "k_fold" not in verification_report(scores, labels, [None] * 4, 0.5)
    assert "k_fold" in verification_report(scores, labels, [0, 0, 1, 1], 0.5)


def test_read_pairs_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInput, match="columns"):
        read_pairs(bad)
    bad.write_text("path_a,path_b,same\nx,y,maybe\n")
    with pytest.raises(InvalidInput, match="'same'"):
        read_pairs(bad)
    good = tmp_path / "good.csv"
    good.write_text("path_a,path_b,same,fold\nx,y,1,3\nx,z,0,4\n")
    assert [p.fold for p in read_pairs(good)] == [3, 4]
