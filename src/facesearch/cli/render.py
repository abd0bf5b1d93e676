"""Turning engine results into JSON-able dicts and into text for a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from facesearch.domain import ImageRecord, Match, SearchResult
from facesearch.ingest.report import IngestReport


def emit(as_json: bool, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if as_json else text)


# -- JSON ------------------------------------------------------------------------------
def image_json(image: ImageRecord) -> dict[str, Any]:
    data = asdict(image)
    data["path"] = image.path
    for face in data["faces"]:
        face["landmarks"] = [list(p) for p in face["landmarks"]]
    return data


def match_json(match: Match) -> dict[str, Any]:
    image = match.image
    return {
        "rank": match.rank,
        "similarity": round(match.similarity, 4),
        "is_match": match.is_match,
        "band": match.chance.band if match.chance else None,
        "expected_false_matches": match.chance.expected_false if match.chance else None,
        "upper_bound": match.chance.upper_bound if match.chance else False,
        "probes_matched": list(match.probes),
        "copies": [
            {
                "image_id": c.image.id,
                "face_id": c.face_id,
                "similarity": round(c.similarity, 4),
                "width": c.image.width,
                "height": c.image.height,
                "provenance": [asdict(p) for p in c.image.provenance],
            }
            for c in match.copies
        ],
        "face_id": match.face_id,
        "box": match.box.as_dict(),
        "image_id": image.id,
        "path": image.path,
        "sha256": image.sha256,
        "provenance": [asdict(p) for p in image.provenance],
    }


def results_json(results: list[SearchResult]) -> dict[str, Any]:
    return {
        "model": results[0].model.key if results else None,
        "probe_faces": [asdict(f) for f in results[0].probe_faces] if results else [],
        "results": [
            {
                "probe_face": asdict(r.probe_face),
                "combine": r.combine,
                "threshold": r.threshold,
                "faces_searched": r.faces_searched,
                "reliable": r.reliable,
                "verdict": verdict(r),
                "matches": [match_json(m) for m in r.matches],
            }
            for r in results
        ],
    }


# -- text ------------------------------------------------------------------------------
def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 file``, ``2 files``; ``nouns`` for the irregular ones (``entries``)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def ingest_summary(report: IngestReport) -> str:
    parts = [
        plural(report.files, "file"),
        plural(report.images_added, "new image"),
        plural(report.copies_added, "new copy", "new copies") + " of known images",
        f"{report.unchanged} unchanged",
        plural(report.faces_indexed, "face") + " indexed",
        plural(report.faces_skipped, "face") + " skipped",
        *([f"{report.faces_suppressed} suppressed"] if report.faces_suppressed else []),
        f"{len(report.failed)} failed",
        *(
            [
                f"{plural(report.videos, 'video')} ({report.video_seconds:.0f} s: "
                f"{report.video_frames_analysed} frames analysed, "
                f"{report.video_faces_detected} faces seen, {report.video_faces_kept} kept)"
            ]
            if report.videos
            else []
        ),
    ]
    head = "Interrupted after " if report.interrupted else "Ingested "
    return (
        head
        + ", ".join(parts)
        + f" in {report.seconds:.1f} s ({report.images_per_second:.1f} images/s)"
    )


def verdict(result: SearchResult) -> str:
    """The outcome first: a best result no better than chance says so."""
    if not result.matches:
        return "No results: the collection searched holds no faces."
    if result.reliable is False:
        return (
            "NO RELIABLE MATCH: even the best result scores no higher than different people "
            f"are expected to among the {result.faces_searched} faces searched."
        )
    best = result.matches[0].chance
    if best is None:
        return "This model has no calibration: similarities are not tied to the collection."
    return f"Best result: {best.band}."


def expected_text(m: Match) -> str:
    """``~0.012 others`` as high; ``<0.002`` when the calibration saw none that high."""
    if m.chance is None:
        return ""
    sign = "<" if m.chance.upper_bound else "~"
    return f"{sign}{m.chance.expected_false:.2g} others as high"


def results_text(results: list[SearchResult]) -> str:
    lines: list[str] = []
    faces = results[0].probe_faces if results else ()
    lines.append(f"Probe: {len(faces)} face(s)")
    for r in results:
        b = r.probe_face.box
        lines.append(
            f"\nFace {r.probe_face.index} at ({b.x1},{b.y1})-({b.x2},{b.y2}): "
            f"{sum(m.is_match for m in r.matches)} likely match(es) at similarity >= "
            f"{r.threshold:.2f}, {r.faces_searched} faces searched"
        )
        if r.combine:
            lines.append(f"{len(faces)} probes combined by {r.combine}")
        lines.append(verdict(r))
        for m in r.matches:
            band = m.chance.band if m.chance else ("MATCH" if m.is_match else "below")
            matched = ""
            if r.combine:
                matched = "  probes " + (",".join(str(p) for p in m.probes) or "none")
            lines.append(
                f"  {m.rank:>3}. {m.similarity:6.3f} {band:<9} {expected_text(m):<24}"
                f"image {m.image.id} face {m.face_id}  {m.image.path}{matched}"
            )
            if m.copies:
                lines.append(f"        {len(m.copies)} copies of this photo, the largest first:")
            for c in m.copies or [None]:
                image = c.image if c else m.image
                if c:
                    lines.append(
                        f"        image {image.id} ({image.width}x{image.height}) "
                        f"similarity {c.similarity:.3f}"
                    )
                for p in image.provenance:
                    urls = " ".join(u for u in (p.source_url, p.page_url) if u)
                    extra = f"  {urls}" if urls else ""
                    lines.append(f"        source {p.source}: {p.path}{extra}")
    lines.append("\nA match is an investigative lead, not an identification.")
    return "\n".join(lines)


def image_text(image: ImageRecord) -> str:
    lines = [
        f"Image {image.id}: {image.width}x{image.height} {image.format}, {image.bytes} bytes",
        f"  sha256 {image.sha256}",
        f"  ingested {image.ingested_at}",
        f"  {len(image.faces)} face(s) indexed, {len(image.skipped_faces)} skipped",
    ]
    for f in image.faces:
        b = f.box
        lines.append(
            f"    face {f.id}: box ({b.x1},{b.y1})-({b.x2},{b.y2}) size {f.size}px "
            f"score {f.score:.2f} sharpness {f.sharpness:.1f}"
        )
    for s in image.skipped_faces:
        lines.append(f"    skipped: {s.get('reason')}")
    lines.append("  provenance:")
    for p in image.provenance:
        lines.append(f"    [{p.source}] {p.path}")
        for label, value in (
            ("source_url", p.source_url),
            ("page_url", p.page_url),
            ("captured_at", p.captured_at),
        ):
            if value:
                lines.append(f"        {label}: {value}")
    return "\n".join(lines)


def stats_text(stats: dict[str, Any]) -> str:
    index = stats["index"]
    state = "consistent with the catalog" if index["consistent"] else "OUT OF STEP (run reindex)"
    return "\n".join(
        [
            f"Home:     {stats['home']}",
            f"Images:   {stats['images']} ({stats['images_without_faces']} without faces)",
            f"Faces:    {stats['faces']}",
            f"Copies:   {stats['provenance']} provenance rows",
            f"Sources:  {stats['sources']}",
            f"Failures: {stats['failures']}",
            f"Model:    {stats['model'] or '(none yet)'}",
            f"Detector: {stats.get('detector') or '(none yet)'}",
            f"Index:    {index['kind']}, {index['faces']} faces, {state}",
        ]
    )


def failures_text(failed: list[dict[str, str]]) -> str:
    if not failed:
        return ""
    shown = [f"\n  failed: {f['path']}: {f['reason']}" for f in failed[:20]]
    more = f"\n  ... and {len(failed) - 20} more (see --report)" if len(failed) > 20 else ""
    return "".join(shown) + more


def eval_text(report: dict[str, Any]) -> str:
    lines = [
        f"Pairs: {report['pairs']} ({report['same']} same, {report['different']} different), "
        f"{report['images']} images, {len(report['images_without_face'])} without a face",
        f"ROC AUC: {report['roc_auc']:.4f}",
    ]
    if "k_fold" in report:
        k = report["k_fold"]
        lines.append(f"{k['folds']}-fold accuracy: {k['accuracy']:.2%} ± {k['accuracy_std']:.2%}")
    best = report["best_threshold"]
    lines.append(
        f"Best accuracy {best['accuracy']:.2%} at similarity {best['threshold']:.3f} "
        "(fit on these pairs: optimistic)"
    )
    lines.append(
        f"At the configured threshold {report['threshold']:.3f}: accuracy "
        f"{report['accuracy_at_threshold']:.2%}, false match rate "
        f"{report['false_match_rate_at_threshold']:.2%}, true match rate "
        f"{report['true_match_rate_at_threshold']:.2%}"
    )
    for t in report["tar_at_far"]:
        lines.append(
            f"TAR at FAR {t['far_target']:g}: {t['tar']:.2%} (threshold {t['threshold']:.3f}; "
            f"{t.get('negatives', 0)} different-person pairs, so FAR resolution "
            f"{t.get('far_resolution', float('nan')):.1e})"
        )
    return "\n".join(lines)


# -- progress --------------------------------------------------------------------------
@contextmanager
def ingest_progress(enabled: bool) -> Iterator[Callable[[IngestReport, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]Ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} images/s"),
        TextColumn("{task.fields[faces]} faces"),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=_stderr_console(),
    ) as bar:
        task = bar.add_task("ingest", total=None, rate="0.0", faces=0, failed=0)

        def update(report: IngestReport, done: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            bar.update(
                task,
                completed=done,
                total=report.files,
                rate=f"{done / elapsed:.1f}" if elapsed else "0.0",
                faces=report.faces_indexed,
                failed=len(report.failed),
            )

        yield update


@contextmanager
def count_progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=_stderr_console()) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(file=sys.stderr)
