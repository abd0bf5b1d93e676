"""Do the result bands mean what they say, and do several probes rank better than one?

Embeds every labelled one-face photo of the dev set through the engine (default model,
largest face), like ``calibrate_threshold.py``. Galleries stay within one source (labels
are unique only there).

1. Bands: every labelled photo searches its source's other photos (top ``--top-k``); each
   result gets its band from the shipped calibration at that gallery's size, and the band's
   precision is the share of its results that show the probe's person. Baseline: the
   precision of all results at or above the match threshold (the old "likely match").
   The calibration was measured on these same pairs: the figures are in-sample.
3. Copies: every pair of labelled photos and known copies (``devset.COPIES``: resized,
   recompressed), folded together or not by the search's rule (perceptual hash and face
   similarity). Copies shown twice and different photos merged should both be 0.
2. Several probes: for every identity with 3+ photos, every pair of its photos (up to
   ``--pairs`` per identity) searches the source's other photos; rank-1 (the best result
   shows the person) for each photo alone (baseline), for ``max`` of similarities and for
   the ``mean`` of the two embeddings.

    .venv/bin/python bench/result_bands.py [--top-k 10] [--pairs 6]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

import devset
from facesearch import FaceSearch, Settings
from facesearch.domain import CHANCE
from facesearch.engine.search import COPY_FACE_SIMILARITY, COPY_HASH_BITS
from facesearch.imaging import perceptual_hash
from facesearch.vision.calibration import BANDS, for_model

Photos = dict[str, tuple[np.ndarray, list[str]]]


def embed() -> tuple[str, float, Photos, dict[str, tuple[str, np.ndarray]]]:
    """Per source: embeddings and labels of its labelled photos (copies left out); and
    for every labelled photo and copy, its perceptual hash and embedding."""
    cache = devset.DescriptorCache()
    out: Photos = {}
    hashed: dict[str, tuple[str, np.ndarray]] = {}
    labels = {r["path"]: r["identity"] for r in devset.manifest()}
    copies = [(rel, labels.get(rel, "")) for rel in devset.COPIES]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", workers=1)
        with FaceSearch(settings, **devset.DEFAULT.parts(cache)) as fs:
            model = fs.model.key
            threshold = fs.settings.search.threshold
            for source, photos in [*sorted(devset.labelled_photos().items()), ("", copies)]:
                vecs, idents = [], []
                for rel, ident in photos:
                    probe = fs.probe(devset.DEV / rel)
                    if probe.faces:
                        vecs.append(probe.embeddings[0])
                        idents.append(ident)
                        hashed[rel] = (perceptual_hash(probe.pixels), probe.embeddings[0])
                if source and len(vecs) > 1:
                    out[source] = (np.stack(vecs), idents)
    cache.save()
    return model, threshold, out, hashed


def copy_groups(hashed: dict[str, tuple[str, np.ndarray]]) -> dict[str, Any]:
    """Every pair of photos: would the search fold them into one result? Known copies
    (devset.COPIES, resized or recompressed) should be; no other pair should."""
    paths = sorted(hashed)
    bits = np.array([int(hashed[p][0], 16) for p in paths], dtype=np.uint64)
    vecs = np.stack([hashed[p][1] for p in paths])
    copy_of = {p: devset.COPIES_OF.get(p, p) for p in paths}
    merged_wrong: list[list[str]] = []
    merged_right = missed = 0
    for i in range(len(paths)):
        xor = bits[i] ^ bits[i + 1 :]
        distance = np.array([int(x).bit_count() for x in xor])
        sims = vecs[i + 1 :] @ vecs[i]
        together = (distance <= COPY_HASH_BITS) & (sims >= COPY_FACE_SIMILARITY)
        for j in range(i + 1, len(paths)):
            same = copy_of[paths[i]] == copy_of[paths[j]]
            if together[j - i - 1]:
                if same:
                    merged_right += 1
                else:
                    merged_wrong.append([paths[i], paths[j]])
            elif same:
                missed += 1
    return {
        "photos": len(paths),
        "pairs": len(paths) * (len(paths) - 1) // 2,
        "known_copy_pairs": merged_right + missed,
        "copies_shown_twice": missed,
        "different_photos_merged": len(merged_wrong),
        "merged_wrongly": merged_wrong[:20],
        "rule": {
            "hash_bits_at_most": COPY_HASH_BITS,
            "face_similarity_at_least": COPY_FACE_SIMILARITY,
        },
    }


def bands(model: str, data: dict[str, Any], top_k: int, threshold: float) -> dict[str, Any]:
    calibration = for_model(model)
    assert calibration is not None, f"no shipped calibration for {model}"
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    unreliable = [0, 0]  # searches whose best result is at chance: [searches, best right]
    for vecs, idents in data.values():
        labels = np.asarray(idents)
        sims = vecs @ vecs.T
        np.fill_diagonal(sims, -2.0)
        gallery = len(idents) - 1
        for i in range(len(idents)):
            if (labels == labels[i]).sum() < 2:
                continue  # nobody to find: every result is another person
            order = np.argsort(-sims[i])[:top_k]
            for rank, j in enumerate(order):
                chance = calibration.chance(float(sims[i, j]), gallery)
                right = int(labels[j] == labels[i])
                above = "at or above threshold" if sims[i, j] >= threshold else ""
                for key in (chance.band, above):
                    if key:
                        tally[key][0] += 1
                        tally[key][1] += right
                if rank == 0 and chance.band == CHANCE:
                    unreliable[0] += 1
                    unreliable[1] += right
    order = [name for name, _ in BANDS] + [CHANCE, "at or above threshold"]
    return {
        "results_per_search": top_k,
        "per_band": {
            k: {
                "results": tally[k][0],
                "same_person": tally[k][1],
                "precision": round(tally[k][1] / tally[k][0], 4) if tally[k][0] else None,
            }
            for k in order
        },
        "searches_said_no_reliable_match": unreliable[0],
        "of_which_best_was_right": unreliable[1],
    }


def multi_probe(data: dict[str, Any], pairs: int) -> dict[str, Any]:
    hits: dict[str, int] = defaultdict(int)
    trials = 0
    identities = 0
    for vecs, idents in data.values():
        labels = np.asarray(idents)
        for person in sorted(set(idents)):
            mine = np.flatnonzero(labels == person)
            if len(mine) < 3:
                continue
            identities += 1
            for a, b in list(itertools.combinations(mine, 2))[:pairs]:
                keep = np.ones(len(idents), dtype=bool)
                keep[[a, b]] = False
                gallery, glabels = vecs[keep], labels[keep]
                sa, sb = gallery @ vecs[a], gallery @ vecs[b]
                mean = vecs[a] + vecs[b]
                mean /= np.linalg.norm(mean)
                trials += 1
                hits["single (each photo alone)"] += int(glabels[sa.argmax()] == person)
                hits["single (each photo alone)"] += int(glabels[sb.argmax()] == person)
                hits["max of similarities"] += int(glabels[np.maximum(sa, sb).argmax()] == person)
                hits["mean of embeddings"] += int(glabels[(gallery @ mean).argmax()] == person)
    single = hits["single (each photo alone)"] / (2 * trials)
    return {
        "identities_with_3_or_more_photos": identities,
        "probe_pairs": trials,
        "rank1": {
            "single (each photo alone)": round(single, 4),
            "max of similarities": round(hits["max of similarities"] / trials, 4),
            "mean of embeddings": round(hits["mean of embeddings"] / trials, 4),
        },
        "gain_over_single": {
            k: round(hits[k] / trials - single, 4)
            for k in ("max of similarities", "mean of embeddings")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=6, help="probe pairs per identity")
    args = parser.parse_args()
    model, threshold, data, hashed = embed()
    print(
        json.dumps(
            {
                "model": model,
                "threshold": threshold,
                "photos": sum(len(i) for _, i in data.values()),
                "bands": bands(model, data, args.top_k, threshold),
                "several_probes": multi_probe(data, args.pairs),
                "copies": copy_groups(hashed),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
