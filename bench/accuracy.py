"""How accurate is facesearch on the dev photos, and which model choices earn their keep?

For each model variant, through the engine (``FaceSearch`` with that variant's detector
and embedder, in a temporary home):

- verification with ``FaceSearch.evaluate`` on the two dev pair files, plus a 10-fold
  accuracy (folds assigned to the pairs with a fixed seed, threshold fit on 9 folds);
- a 1:N experiment: per source, every labelled one-face photo is ingested (the gallery);
  every photo of an identity with 2+ photos is searched against the rest of its source
  (its own image left out); rank-1 and rank-5 say whether a photo of the same person is
  first, or in the first five.

The baseline is plain dlib as face_recognition 1.3 runs it (HOG upsample 1, chip
150/0.25, no flip), measured in the same run; every variant reports its difference.

    .venv/bin/python bench/accuracy.py [--variants default,plain-dlib,...]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import devset
from facesearch import FaceSearch, Settings
from facesearch.errors import NoFaceFound
from facesearch.imaging import DecodeLimits, decode_image

FOLDS = 10
SEED = 20261126
TOP = 6  # one more than rank-5 needs: the probe's own image is dropped from the results


def with_folds(pairs_csv: Path, out: Path) -> Path:
    """A copy of a pair file with a seeded ``fold`` column (the files carry none)."""
    with open(pairs_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    for fold_pos, i in enumerate(order):
        rows[i]["fold"] = str(fold_pos % FOLDS)
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0].keys()])
        writer.writeheader()
        writer.writerows(rows)
    return out


def verification(fs: FaceSearch, tmp: Path) -> dict[str, Any]:
    out = {}
    for name in devset.PAIR_FILES:
        report = fs.evaluate(with_folds(devset.DEV / name, tmp / name), devset.DEV)
        tar = {f"{t['far_target']:g}": round(t["tar"], 4) for t in report["tar_at_far"]}
        out[name] = {
            "pairs": report["pairs"],
            "same": report["same"],
            "accuracy_10fold": round(report["k_fold"]["accuracy"], 4),
            "accuracy_at_default_threshold": round(report["accuracy_at_threshold"], 4),
            "fmr_at_default_threshold": round(report["false_match_rate_at_threshold"], 4),
            "tmr_at_default_threshold": round(report["true_match_rate_at_threshold"], 4),
            "roc_auc": round(report["roc_auc"], 4),
            "tar_at_far": tar,
            "images_without_face": report["images_without_face"],
            "unreadable": report["unreadable"],  # counted as failed pairs
        }
    return out


def one_to_n(fs: FaceSearch) -> dict[str, Any]:
    dev = devset.DEV.resolve()
    per_source: dict[str, Any] = {}
    hits1 = hits5 = probes_all = 0
    for source, photos in sorted(devset.labelled_photos().items()):
        identity = {str(dev / p): ident for p, ident in photos}
        counts: dict[str, int] = {}
        for _, ident in photos:
            counts[ident] = counts.get(ident, 0) + 1
        devset.register_bench_source(fs, source)
        fs.ingest([dev / p for p, _ in photos], source=source, workers=1)
        probes = [p for p, ident in photos if counts[ident] >= 2]
        r1 = r5 = 0
        no_face = []
        for rel in probes:
            path = str(dev / rel)
            try:
                [result] = fs.search(path, top_k=TOP, sources=[source])
            except NoFaceFound:
                no_face.append(rel)
                continue
            ranked = [identity.get(m.image.path) for m in result.matches if m.image.path != path]
            same = [i for i, ident in enumerate(ranked[:5]) if ident == identity[path]]
            r1 += bool(same and same[0] == 0)
            r5 += bool(same)
        per_source[source] = {
            "gallery": len(photos),
            "identities": len(counts),
            "probes": len(probes),
            "rank1": round(r1 / len(probes), 4) if probes else None,
            "rank5": round(r5 / len(probes), 4) if probes else None,
            "probes_without_face": no_face,
        }
        hits1, hits5, probes_all = hits1 + r1, hits5 + r5, probes_all + len(probes)
    return {
        "probes": probes_all,
        "rank1": round(hits1 / probes_all, 4),
        "rank5": round(hits5 / probes_all, 4),
        "per_source": per_source,
    }


def detection_check(fs: FaceSearch) -> dict[str, Any]:
    """What the detector does on the aligned Glint360k crops and on the no-face photos."""
    rows = devset.manifest()
    limits = DecodeLimits()
    crops = [r["path"] for r in rows if r["path"].startswith("glint360k_celebs/")]
    nofaces = [r["path"] for r in rows if r["kind"] == "noface"]
    by_detector = by_fallback = none = 0
    for rel in crops:
        faces = fs.detector.detect_faces(
            decode_image((devset.DEV / rel).read_bytes(), limits).pixels
        )
        none += not faces
        by_fallback += bool(faces) and faces[0].fallback
        by_detector += bool(faces) and not faces[0].fallback
    found_in_noface = {}
    for rel in nofaces:
        pixels = decode_image((devset.DEV / rel).read_bytes(), limits).pixels
        if n := len(fs.detector.detect_faces(pixels)):
            found_in_noface[rel] = n
    return {
        "glint360k_crops": len(crops),
        "crops_face_by_detector": by_detector,
        "crops_face_by_whole_crop_fallback": by_fallback,
        "crops_without_face": none,
        "noface_photos": len(nofaces),
        "noface_photos_with_faces_found": found_in_noface,
    }


def run_variant(variant: devset.Variant, cache: devset.DescriptorCache) -> dict[str, Any]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", workers=1)
        with FaceSearch(settings, **variant.parts(cache)) as fs:
            result = {
                "variant": variant.name,
                "model": fs.model.key,
                "verification": verification(fs, Path(tmp)),
                "one_to_n": one_to_n(fs),
                "detection": detection_check(fs),
            }
    cache.save()
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def headline(r: dict[str, Any]) -> dict[str, float]:
    v = r["verification"]
    return {
        "lfw_view1_accuracy_10fold": v["pairs_lfw_view1_clean.csv"]["accuracy_10fold"],
        "deepface_accuracy_10fold": v["pairs_deepface_master.csv"]["accuracy_10fold"],
        "lfw_view1_roc_auc": v["pairs_lfw_view1_clean.csv"]["roc_auc"],
        "deepface_roc_auc": v["pairs_deepface_master.csv"]["roc_auc"],
        "rank1": r["one_to_n"]["rank1"],
        "rank5": r["one_to_n"]["rank5"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(devset.VARIANTS))
    args = parser.parse_args()
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in devset.VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}; known: {', '.join(devset.VARIANTS)}")
    # Variants that flip-average run first: they fill the cache with both descriptors.
    names.sort(key=lambda n: not devset.VARIANTS[n].flip_average)
    cache = devset.DescriptorCache()
    results = {}
    for name in names:
        results[name] = run_variant(devset.VARIANTS[name], cache)
        print(json.dumps({name: headline(results[name])}), file=sys.stderr, flush=True)
    base = headline(results["plain-dlib"]) if "plain-dlib" in results else None
    summary = {}
    for name, r in results.items():
        h = headline(r)
        summary[name] = h | (
            {"vs_plain_dlib": {k: round(h[k] - base[k], 4) for k in h}} if base else {}
        )
    print(json.dumps({"summary": summary, "variants": results}, indent=1))


if __name__ == "__main__":
    main()
