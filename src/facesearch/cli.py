"""The ``facesearch`` command: parse arguments, call the engine, render the answer.

Every command takes ``--json`` for machine-readable output. Errors print one line to
stderr and exit non-zero (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from facesearch import cli_governance
from facesearch.errors import FacesearchError, InvalidInput, NoFaceFound

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_FACE = 3


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home", type=Path, help="data directory (env FACESEARCH_HOME; default ./facesearch-data)"
    )
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    parser = argparse.ArgumentParser(
        prog="facesearch",
        description="Search photo collections you lawfully hold by face.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "ingest",
        parents=[common],
        help="add folders, files or manifests",
        description="Detect and index every face in folders (recursive), image "
        "files and manifests (CSV or JSON Lines with path, source_url, page_url, "
        "captured_at). Idempotent and resumable.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument(
        "--source",
        required=True,
        help="registered collection the images belong to (see `sources add`)",
    )
    p.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    p.add_argument("--report", type=Path, help="write the full ingest report as JSON here")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser(
        "search",
        parents=[common],
        help="find images of the person in a photo",
        description="Find the faces in PHOTO and rank stored images by the "
        "similarity of their faces (cosine, -1..1, higher is closer).",
    )
    p.add_argument("photo", type=Path, metavar="PHOTO")
    p.add_argument("--face", type=int, help="which probe face to search (0 = largest)")
    p.add_argument("--all-faces", action="store_true", help="search every face in the probe")
    p.add_argument("--top-k", type=int, help="number of images to return (default 20)")
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
        help="where the requester is (ISO 3166 code)",
    )

    p = sub.add_parser("stats", parents=[common], help="counts and index state")
    p = sub.add_parser("show", parents=[common], help="one image with faces and provenance")
    p.add_argument("image_id", type=int, metavar="IMAGE_ID")

    p = sub.add_parser(
        "reindex",
        parents=[common],
        help="rebuild the index from the catalog",
        description="Rebuild the vector index from the catalog. --kind exact or ann forces "
        "that index from now on; auto (the default) picks by collection size.",
    )
    p.add_argument("--kind", choices=["auto", "exact", "ann"], help="force an index kind")
    p = sub.add_parser(
        "compact",
        parents=[common],
        help="drop removed faces from the index files",
        description="Rewrite the index files so that no removed face's vector stays on disk.",
    )

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
    cli_governance.add_parsers(sub, common)

    from facesearch.api.commands import add_parsers

    add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except NoFaceFound as exc:
        return fail(args, exc, EXIT_NO_FACE)
    except FacesearchError as exc:
        return fail(args, exc, EXIT_USAGE if isinstance(exc, InvalidInput) else EXIT_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def fail(args: argparse.Namespace, exc: Exception, code: int) -> int:
    if getattr(args, "debug", False):
        import traceback

        traceback.print_exc()
    if getattr(args, "json", False):
        print(json.dumps({"error": {"type": type(exc).__name__, "message": str(exc)}}))
    print(f"facesearch: error: {exc}", file=sys.stderr)
    return code


def open_engine(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from facesearch.config import load_settings
    from facesearch.engine import FaceSearch
    from facesearch.errors import ConfigError

    try:
        settings = load_settings(home=args.home)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
    return FaceSearch(settings)


def run(args: argparse.Namespace) -> int:
    from facesearch import render
    from facesearch.api import commands

    if args.command in commands.COMMANDS:
        return commands.run(args)

    with open_engine(args) as engine:
        who = replace(
            engine.default_requester(),
            channel="cli",
            purpose=getattr(args, "purpose", None),
            case_ref=getattr(args, "case_ref", None),
            **(
                {"jurisdiction": args.requester_jurisdiction}
                if getattr(args, "requester_jurisdiction", None)
                else {}
            ),
        )
        if args.command in cli_governance.COMMANDS:
            return cli_governance.run(args, engine, who)
        if args.command == "ingest":
            if args.workers is not None and args.workers < 1:
                raise InvalidInput("--workers must be at least 1")
            show_bar = not (args.json or args.no_progress) and sys.stderr.isatty()
            with render.ingest_progress(enabled=show_bar) as progress:
                report = engine.ingest(
                    args.paths, source=args.source, workers=args.workers, progress=progress
                )
            data = report.as_dict()
            if args.report:
                args.report.write_text(json.dumps(data, indent=2))
            render.emit(args.json, data, report.summary() + render.failures_text(report.failed))
            return 130 if report.interrupted else 0
        if args.command == "search":
            if args.face is not None and args.all_faces:
                raise InvalidInput("use either --face or --all-faces, not both")
            results = engine.search(
                args.photo,
                face=args.face,
                all_faces=args.all_faces,
                top_k=args.top_k,
                threshold=args.threshold,
                sources=args.sources,
            )
            render.emit(args.json, render.results_json(results), render.results_text(results))
            return 0
        if args.command == "stats":
            stats = engine.stats()
            render.emit(args.json, stats, render.stats_text(stats))
            return 0
        if args.command == "show":
            image = engine.show(args.image_id)
            render.emit(args.json, render.image_json(image), render.image_text(image))
            return 0
        if args.command == "reindex":
            result = engine.reindex(kind=args.kind)
            render.emit(
                args.json, result, f"Rebuilt the {result['kind']} index: {result['faces']} faces"
            )
            return 0
        if args.command == "compact":
            result = engine.compact()
            render.emit(
                args.json, result, f"Compacted the {result['kind']} index: {result['faces']} faces"
            )
            return 0
        if args.command == "eval":
            with render.count_progress(
                "Embedding", enabled=not args.json and sys.stderr.isatty()
            ) as progress:
                report = engine.evaluate(args.pairs, args.root, progress=progress)
            render.emit(args.json, report, render.eval_text(report))
            return 0
    raise InvalidInput(f"unknown command {args.command}")  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
