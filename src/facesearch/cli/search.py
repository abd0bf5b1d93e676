"""Searching and reading a home: ``search``, ``stats``, ``show`` and ``eval``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from facesearch.cli import render
from facesearch.cli.args import jurisdiction, record_id, whole
from facesearch.domain import Requester
from facesearch.engine import FaceSearch
from facesearch.errors import InvalidInput

COMMANDS = ("search", "stats", "show", "eval")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """``search``, ``stats`` and ``show`` (``eval`` comes later in the help)."""
    p = sub.add_parser(
        "search",
        parents=[common],
        help="find images of the person in a photo",
        description="Find the faces in PHOTO and rank stored images by the "
        "similarity of their faces (cosine, -1..1, higher is closer). Each result says "
        "how many different-person faces of the collection are expected to score as high, "
        "and its band (strong, possible, weak lead, chance). Several photos of one person, "
        "or stored faces (--face-id, a result's face id), search together.",
    )
    p.add_argument("photos", type=Path, nargs="*", metavar="PHOTO")
    p.add_argument(
        "--face-id",
        type=record_id,
        action="append",
        dest="face_ids",
        default=[],
        metavar="ID",
        help="search with a stored face, e.g. a result's face id (repeatable)",
    )
    p.add_argument(
        "--combine",
        choices=("max", "mean"),
        default="mean",
        help="how several probes combine: a face's best similarity to any probe (max), "
        "or its similarity to their mean embedding (mean)",
    )
    p.add_argument("--face", type=whole, help="which probe face to search (0 = largest)")
    p.add_argument("--all-faces", action="store_true", help="search every face in the probe")
    p.add_argument("--top-k", type=whole, help="number of images to return (default 20)")
    p.add_argument("--threshold", type=float, help="similarity counted as a likely match")
    p.add_argument(
        "--source",
        action="append",
        dest="sources",
        metavar="NAME",
        help="only search this source (repeatable)",
    )
    p.add_argument("--purpose", help="why this search is made (recorded in the audit log)")
    p.add_argument("--case-ref", help="the case or matter it belongs to")
    p.add_argument(
        "--jurisdiction",
        dest="requester_jurisdiction",
        type=jurisdiction,
        help="where the requester is (ISO 3166 code)",
    )

    p = sub.add_parser("stats", parents=[common], help="counts and index state")
    p = sub.add_parser("show", parents=[common], help="one image with faces and provenance")
    p.add_argument("image_id", type=record_id, metavar="IMAGE_ID")


def add_eval_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "eval",
        parents=[common],
        help="verification metrics on labelled pairs",
        description="Score labelled pairs (CSV: path_a,path_b,same[,fold]) and "
        "report accuracy (10-fold when folds are given), ROC AUC, TAR at FAR "
        "1e-3 and 1e-2, and the thresholds that give them.",
    )
    p.add_argument("pairs", type=Path, metavar="PAIRS.csv")
    p.add_argument("--root", type=Path, default=Path("."), help="directory the paths are under")


def run(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    if args.command == "search":
        if args.face is not None and args.all_faces:
            raise InvalidInput("use either --face or --all-faces, not both")
        if not args.photos and not args.face_ids:
            raise InvalidInput("give a PHOTO to search with, or a stored face with --face-id")
        several = len(args.photos) + len(args.face_ids) > 1
        if several and (args.face is not None or args.all_faces):
            raise InvalidInput(
                "--face and --all-faces pick faces of one photo; several probes each use "
                "their largest face"
            )
        if len(args.photos) == 1 and not args.face_ids:
            results = engine.search(
                args.photos[0],
                face=args.face,
                all_faces=args.all_faces,
                top_k=args.top_k,
                threshold=args.threshold,
                sources=args.sources,
                who=who,
            )
        else:
            results = [
                engine.search_many(
                    args.photos,
                    face_ids=args.face_ids,
                    combine=args.combine,
                    top_k=args.top_k,
                    threshold=args.threshold,
                    sources=args.sources,
                    who=who,
                )
            ]
        render.emit(args.json, render.results_json(results), render.results_text(results))
    elif args.command == "stats":
        stats = engine.stats()
        render.emit(args.json, stats, render.stats_text(stats))
    elif args.command == "show":
        image = engine.show(args.image_id)
        render.emit(args.json, render.image_json(image), render.image_text(image))
    else:
        with render.count_progress(
            "Embedding", enabled=not args.json and sys.stderr.isatty()
        ) as progress:
            report = engine.evaluate(args.pairs, args.root, progress=progress)
        render.emit(args.json, report, render.eval_text(report))
    return 0
