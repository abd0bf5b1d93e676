"""The ``facesearch`` command: parse arguments, call the engine, render the answer.

This module holds the parser and the dispatch; each group of commands has its module
(ingest, search, index, governance, serve, accounts, db) with its parsers and its ``run``.
Every command takes ``--home``, ``--catalog`` and ``--index`` (the stores' URLs),
``--json`` for machine-readable output and ``--debug``.
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

from facesearch.cli import accounts, db, governance, index, ingest, models, people, search, serve
from facesearch.errors import FacesearchError, InvalidInput, NoFaceFound, NotFound

EXIT_ERROR = 1
EXIT_USAGE = 2  # bad input: a wrong option or file, an id or source that does not exist
EXIT_NO_FACE = 3
EXIT_CLOSED_PIPE = 141  # what a shell reports for a command killed by SIGPIPE

# The common options' defaults, filled in after parsing: they are SUPPRESSed in the
# parsers so that a group's value (`sources --home X list`) is not reset by its action's.
COMMON_DEFAULTS: dict[str, Any] = {
    "home": None,
    "catalog": None,
    "index": None,
    "json": False,
    "debug": False,
}
# Commands that may start a new home; every other one refuses a home that does not
# exist, so that a mistyped --home is an error instead of a new, empty collection.
CREATES_HOME = frozenset(
    {"ingest", "eval", "serve", "sources add", "suppress add", "keys create", "users add"}
)
# Commands that need no home: the catalog they work on may be on a server.
NO_HOME = frozenset({"db upgrade"})


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
    common.add_argument(
        "--catalog",
        metavar="URL",
        help="catalog URL: sqlite://PATH or postgresql://USER@HOST:PORT/DB "
        "(env FACESEARCH_CATALOG__URL; default sqlite://HOME/catalog.sqlite)",
    )
    common.add_argument(
        "--index",
        metavar="URL",
        help="vector index URL: local://PATH or milvus://HOST:PORT/COLLECTION "
        "(env FACESEARCH_INDEX__URL; "
        "default local://HOME/index)",
    )
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    parser = argparse.ArgumentParser(
        prog="facesearch",
        description="Search photo collections you lawfully hold by face.",
    )
    parser.add_argument("--version", action="version", version=f"facesearch {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest.add_parsers(sub, common)
    search.add_parsers(sub, common)
    index.add_parsers(sub, common)
    models.add_parsers(sub, common)
    search.add_eval_parser(sub, common)
    governance.add_parsers(sub, common)
    people.add_parsers(sub, common)
    serve.add_parsers(sub, common)
    accounts.add_parsers(sub, common)
    db.add_parsers(sub, common)
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
        settings = load_settings(
            home=args.home,
            cluster=getattr(args, "cluster", None),
            catalog={"url": args.catalog} if args.catalog else None,
            index={"url": args.index} if args.index else None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
    from facesearch.parts import home_holds_stores

    if (
        command_name(args) not in CREATES_HOME | NO_HOME
        and not Path(settings.home).is_dir()
        and home_holds_stores(settings)
    ):
        raise NotFound(
            f"there is no facesearch home at {settings.home}: check --home (or "
            "FACESEARCH_HOME); `facesearch sources add` or `ingest` starts a new one"
        )
    return settings


def open_engine(args: argparse.Namespace) -> Any:
    from facesearch.engine import FaceSearch

    return FaceSearch(settings_for(args))


def run(args: argparse.Namespace) -> int:
    # serve and the accounts need no engine of their own: no model loaded, no catalog.
    if args.command in serve.COMMANDS:
        return serve.run(args, settings_for(args))
    if args.command in accounts.COMMANDS:
        return accounts.run(args, settings_for(args))
    if args.command in db.COMMANDS:
        return db.run(args, settings_for(args))

    with open_engine(args) as engine:
        place = getattr(args, "requester_jurisdiction", None)
        who = replace(
            engine.default_requester(),
            channel="cli",
            purpose=(getattr(args, "purpose", None) or "").strip() or None,
            case_ref=(getattr(args, "case_ref", None) or "").strip() or None,
            **({"jurisdiction": place} if place else {}),
        )
        if args.command in governance.COMMANDS:
            return governance.run(args, engine, who)
        if args.command in ingest.COMMANDS:
            return ingest.run(args, engine, who)
        if args.command in search.COMMANDS:
            return search.run(args, engine, who)
        if args.command in index.COMMANDS:
            return index.run(args, engine, who)
        if args.command in models.COMMANDS:
            return models.run(args, engine, who)
        if args.command in people.COMMANDS:
            return people.run(args, engine, who)
    raise InvalidInput(f"unknown command {args.command}")  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
