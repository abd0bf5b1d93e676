"""The ``facesearch`` command: parse arguments, call the engine, render the answer.

Every command takes ``--home``, ``--json`` for machine-readable output and ``--debug``.
Errors print one line to stderr and exit non-zero (``--debug`` shows the traceback);
the exit codes are listed in docs/cli.md (written by scripts/cli_docs.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from facesearch import cli_governance
from facesearch.cli_args import jurisdiction, record_id, whole
from facesearch.errors import FacesearchError, InvalidInput, NoFaceFound, NotFound

EXIT_ERROR = 1
EXIT_USAGE = 2  # bad input: a wrong option or file, an id or source that does not exist
EXIT_NO_FACE = 3
EXIT_CLOSED_PIPE = 141  # what a shell reports for a command killed by SIGPIPE

# The common options' defaults, filled in after parsing: they are SUPPRESSed in the
# parsers so that a group's value (`sources --home X list`) is not reset by its action's.
COMMON_DEFAULTS: dict[str, Any] = {"home": None, "json": False, "debug": False}
# Commands that may start a new home; every other one refuses a home that does not
# exist, so that a mistyped --home is an error instead of a new, empty collection.
CREATES_HOME = frozenset(
    {"ingest", "eval", "serve", "sources add", "suppress add", "keys create", "users add"}
)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("facesearch")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "--home", type=Path, help="data directory (env FACESEARCH_HOME; default ./facesearch-data)"
    )
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    parser = argparse.ArgumentParser(
        prog="facesearch",
        description="Search photo collections you lawfully hold by face.",
    )
    parser.add_argument("--version", action="version", version=f"facesearch {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "ingest",
        parents=[common],
        help="add folders, files or manifests",
        description="Detect and index every face in folders (recursive, following "
        "symlinked folders), image files and manifests (CSV or JSON Lines with path, "
        "source_url, page_url, captured_at; the URLs must be http(s)). A manifest row "
        "that cannot be used is reported with its line as a failure, and the other rows "
        "go on. Idempotent and resumable. Exits 1 when no file could be ingested.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument(
        "--source",
        required=True,
        help="registered collection the images belong to (see `sources add`)",
    )
    p.add_argument("--workers", type=whole, help="worker processes (default: all cores)")
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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    for name, default in COMMON_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        code = run(args)
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return code
    except BrokenPipeError:
        return closed_pipe()
    except NoFaceFound as exc:
        return fail(args, exc, EXIT_NO_FACE)
    except (InvalidInput, NotFound) as exc:
        return fail(args, exc, EXIT_USAGE)
    except FacesearchError as exc:
        return fail(args, exc, EXIT_ERROR)
    except OSError as exc:  # a file that cannot be written (--report, --html, --output)
        where = f": {exc.filename}" if exc.filename else ""
        return fail(args, f"{exc.strerror or exc}{where}", EXIT_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def closed_pipe() -> int:
    """The reader of our output went away (`facesearch stats | head -3`): stop quietly.

    What is still buffered goes to /dev/null, so that Python's flush at exit does not
    print a second error.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (a test's capture): nothing to do
        pass
    return EXIT_CLOSED_PIPE


def fail(args: argparse.Namespace, exc: Exception | str, code: int) -> int:
    if getattr(args, "debug", False) and isinstance(exc, Exception):
        import traceback

        traceback.print_exc()
    if getattr(args, "json", False):
        kind = type(exc).__name__ if isinstance(exc, Exception) else "OSError"
        print(json.dumps({"error": {"type": kind, "message": str(exc)}}))
    print(f"facesearch: error: {exc}", file=sys.stderr)
    return code


def command_name(args: argparse.Namespace) -> str:
    """The command as typed without options: ``stats``, ``sources add``, ``keys list``."""
    for attr in ("action", "keys_command", "users_command"):
        if getattr(args, attr, None):
            return f"{args.command} {getattr(args, attr)}"
    return str(args.command)


def settings_for(args: argparse.Namespace) -> Any:
    """The settings, with a home that exists unless this command may create one."""
    from pydantic import ValidationError

    from facesearch.config import load_settings
    from facesearch.errors import ConfigError

    try:
        settings = load_settings(home=args.home)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
    if command_name(args) not in CREATES_HOME and not Path(settings.home).is_dir():
        raise NotFound(
            f"there is no facesearch home at {settings.home}: check --home (or "
            "FACESEARCH_HOME); `facesearch sources add` or `ingest` starts a new one"
        )
    return settings


def open_engine(args: argparse.Namespace) -> Any:
    from facesearch.engine import FaceSearch

    return FaceSearch(settings_for(args))


def run(args: argparse.Namespace) -> int:
    from facesearch import render
    from facesearch.api import commands

    if args.command in commands.COMMANDS:
        return commands.run(args, settings_for(args))

    with open_engine(args) as engine:
        place = getattr(args, "requester_jurisdiction", None)
        who = replace(
            engine.default_requester(),
            channel="cli",
            purpose=(getattr(args, "purpose", None) or "").strip() or None,
            case_ref=(getattr(args, "case_ref", None) or "").strip() or None,
            **({"jurisdiction": place} if place else {}),
        )
        if args.command in cli_governance.COMMANDS:
            return cli_governance.run(args, engine, who)
        if args.command == "ingest":
            return ingest(args, engine)
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
                who=who,
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
                args.json,
                result,
                f"Rebuilt the {result['kind']} index: {render.plural(result['faces'], 'face')}",
            )
            return 0
        if args.command == "compact":
            result = engine.compact()
            render.emit(
                args.json,
                result,
                f"Compacted the {result['kind']} index: {render.plural(result['faces'], 'face')}",
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


def ingest(args: argparse.Namespace, engine: Any) -> int:
    """Ingest, and exit non-zero when there was nothing to ingest or nothing could be."""
    from facesearch import render
    from facesearch.ingest.items import IMAGE_SUFFIXES, iter_items

    if args.workers is not None and args.workers < 1:
        raise InvalidInput("--workers must be at least 1")
    engine.source(args.source)  # an unregistered source first, before walking folders
    items = list(iter_items(args.paths))
    if not items:
        raise InvalidInput(
            f"nothing to ingest in {', '.join(args.paths)}: no image files "
            f"({' '.join(sorted(IMAGE_SUFFIXES))}) and no manifest rows"
        )
    show_bar = not (args.json or args.no_progress) and sys.stderr.isatty()
    with render.ingest_progress(enabled=show_bar) as progress:
        report = engine.ingest(items, source=args.source, workers=args.workers, progress=progress)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
