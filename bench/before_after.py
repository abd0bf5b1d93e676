"""Did a change of structure cost speed? The same ingest and search, on two trees of the code.

The baseline is the package as it was at a git ref (default: the commit before the
"one engine, any backend" work), unpacked with ``git archive`` into a temporary folder;
the candidate is ``src/`` as it is now. Each round runs one fresh subprocess per tree,
alternating (A B, B A, ...) so that the machine's load falls on both alike, and each
subprocess:

- ingests the same seeded sample of dev photos with one worker into a new home
  (images/s and CPU seconds: dlib dominates, so this shows the engine's added work), and
- searches that home with probes embedded beforehand (``FaceSearch.probe``), so the
  timing is the engine's own path: index, catalog reads, suppression check, audit entry.

It prints JSON: the median of each figure over the rounds for both trees, and the ratio
candidate / baseline (1.0 is no change; the target is within 5%).

    .venv/bin/python bench/before_after.py [--ref 7fd1576] [--photos 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Runs inside each subprocess, against whichever tree PYTHONPATH names.
WORKER = r"""
import json, random, resource, sys, tempfile, time
from pathlib import Path
import numpy as np
from facesearch import FaceSearch, Settings
try:
    from facesearch.domain import Source
except ImportError:  # the baseline kept it in governance
    from facesearch.governance.policy import Source  # noqa: F401

dev, n, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rows = [l.split(",")[0] for l in (dev / "manifest.csv").read_text().splitlines()[1:]]
photos = sorted(p for p in rows if p.startswith("lfw/"))
random.Random(seed).shuffle(photos)
chosen = [dev / p for p in photos[:n]]
probes = [dev / p for p in photos[n : n + 10]]
with tempfile.TemporaryDirectory() as tmp:
    with FaceSearch(Settings(home=Path(tmp) / "home", workers=1)) as fs:
        fs.add_source(Source(name="bench", lawful_basis="legitimate_interests",
                             special_category_condition="legal_claims", retention_days=3650))
        fs.probe(chosen[0])  # load the models outside the timing
        cpu0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        t0 = time.perf_counter()
        report = fs.ingest(chosen, source="bench")
        wall = time.perf_counter() - t0
        cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0
        ready = [p for p in (fs.probe(q) for q in probes) if p.faces]
        times = []
        for _ in range(20):
            for probe in ready:
                t = time.perf_counter()
                fs.search(probe)
                times.append(time.perf_counter() - t)
print(json.dumps({
    "images": report.images_added,
    "ingest_images_per_s": report.images_added / wall,
    "ingest_cpu_s": cpu,
    "search_p50_ms": 1000 * float(np.median(times)),
    "search_p90_ms": 1000 * float(np.percentile(times, 90)),
}))
"""


def unpack(ref: str, into: Path) -> Path:
    archive = into / "src.tar"
    with open(archive, "wb") as fh:
        subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run(tree: Path, dev: Path, photos: int, seed: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(dev), str(photos), str(seed)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the run on {tree} failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="7fd1576", help="the baseline's git ref")
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    dev = Path(os.environ.get("FACESEARCH_DEV", ROOT.parent / "shared/data/faces-dev"))
    if not (dev / "manifest.csv").is_file():
        raise SystemExit(f"the dev photos are not at {dev} (set FACESEARCH_DEV)")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"baseline": unpack(args.ref, Path(tmp)), "candidate": ROOT / "src"}
        runs: dict[str, list[dict[str, float]]] = {"baseline": [], "candidate": []}
        for r in range(args.rounds):
            order = ["baseline", "candidate"] if r % 2 == 0 else ["candidate", "baseline"]
            for name in order:
                runs[name].append(run(trees[name], dev, args.photos, args.seed))
                print(f"round {r + 1} {name}: {runs[name][-1]}", file=sys.stderr)
    out: dict[str, Any] = {"ref": args.ref, "photos": args.photos, "rounds": args.rounds}
    for key in runs["baseline"][0]:
        base = statistics.median(x[key] for x in runs["baseline"])
        cand = statistics.median(x[key] for x in runs["candidate"])
        out[key] = {"baseline": base, "candidate": cand, "ratio": cand / base if base else None}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
