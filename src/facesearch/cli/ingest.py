"""The ``ingest`` command: folders, files and manifests into a registered source."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from facesearch.cli import render
from facesearch.cli.args import whole
from facesearch.domain import Requester
from facesearch.engine import FaceSearch
from facesearch.errors import InvalidInput
from facesearch.ingest.items import MEDIA_SUFFIXES, iter_items

COMMANDS = ("ingest",)
EXIT_ERROR = 1


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "ingest",
        parents=[common],
        help="add folders, files or manifests",
        description="Detect and index every face in folders (recursive, following "
        "symlinked folders), image files, video files (frames sampled at video.sample_fps, "
        "faces tracked so each appearance is indexed once with its moment) and manifests "
        "(CSV or JSON Lines with path, source_url, page_url, captured_at; the URLs must "
        "be http(s)). A manifest row that cannot be used is reported with its line as a "
        "failure, and the other rows go on. Idempotent and resumable. Exits 1 when no "
        "file could be ingested.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument(
        "--source",
        required=True,
        help="registered collection the images belong to (see `sources add`)",
    )
    p.add_argument(
        "--workers", type=whole, help="worker processes, or Ray workers (default: all cores)"
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="analyse on a Ray cluster: ray://HOST:PORT, or auto for the Ray of this machine "
        "(env FACESEARCH_CLUSTER)",
    )
    p.add_argument("--report", type=Path, help="write the full ingest report as JSON here")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    """Ingest, and exit non-zero when there was nothing to ingest or nothing could be."""
    if args.workers is not None and args.workers < 1:
        raise InvalidInput("--workers must be at least 1")
    engine.source(args.source)  # an unregistered source first, before walking folders
    items = list(iter_items(args.paths))
    if not items:
        raise InvalidInput(
            f"nothing to ingest in {', '.join(args.paths)}: no image files "
            f"({' '.join(sorted(MEDIA_SUFFIXES))}, videos included) and no manifest rows"
        )
    show_bar = not (args.json or args.no_progress) and sys.stderr.isatty()
    with render.ingest_progress(enabled=show_bar) as progress:
        report = engine.ingest(
            items, source=args.source, workers=args.workers, progress=progress, who=who
        )
    data = report.as_dict()
    if args.report:
        args.report.write_text(json.dumps(data, indent=2))
    render.emit(
        args.json, data, render.ingest_summary(report) + render.failures_text(report.failed)
    )
    if report.interrupted:
        return 130
    if report.failed and not (report.images_added + report.copies_added + report.unchanged):
        what = (
            "the file could not be ingested"
            if report.files == 1
            else f"none of the {report.files} files could be ingested"
        )
        print(
            f"facesearch: error: {what} (the reasons are listed above"
            + (" and in --report)" if args.report else ")"),
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0
