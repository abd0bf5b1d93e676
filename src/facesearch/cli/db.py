"""The catalog's schema, ``db upgrade``, and moving a home to other backends, ``migrate``.

cli/main.py hands these to ``run`` before it opens an engine: a catalog at an older
schema version cannot be opened by one (a shared PostgreSQL catalog is upgraded only by
this command; an embedded SQLite one is also upgraded when opened).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Progress = Callable[[int, int], None]

COMMANDS = ("db", "migrate")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    db = sub.add_parser("db", parents=[common], help="the catalog's schema")
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "upgrade",
        parents=[common],
        help="bring the catalog's schema to this release's (back it up first); refuses "
        "a catalog made by a newer release",
    )
    p = sub.add_parser(
        "migrate",
        parents=[common],
        help="copy an embedded home into PostgreSQL and Milvus (or other backends)",
        description="Copy the home (its SQLite catalog, audit log, suppression list and "
        "accounts) into an empty catalog database, rows as they are (ids, audit hashes), "
        "and build the index there from it; then check face count and id checksum of "
        "the catalog and the index, and the audit chain. The home is not changed. Stop "
        "the home's writers first. A run stopped while building the index is finished "
        "by running the command again; a target holding other data is refused.",
    )
    p.add_argument(
        "--to-catalog",
        required=True,
        metavar="URL",
        help="the catalog to copy into: postgresql://USER@HOST:PORT/DB (made and empty)",
    )
    p.add_argument(
        "--to-index",
        required=True,
        metavar="URL",
        help="the index to build there: milvus://HOST:PORT/COLLECTION or local://PATH",
    )


def run(args: argparse.Namespace, settings: Any) -> int:
    if args.command == "migrate":
        return migrate(args, settings)
    from facesearch.parts import upgrade_catalog

    url, before, after = upgrade_catalog(settings)
    if args.json:
        print(json.dumps({"catalog": url, "before": before, "after": after}))
    elif before == after:
        print(f"Catalog {url} is at schema version {after}: nothing to do.")
    else:
        print(f"Catalog {url} upgraded from schema version {before} to {after}.")
    return 0


def migrate(args: argparse.Namespace, settings: Any) -> int:
    from facesearch.cli import render
    from facesearch.engine.migrate import migrate as run_migration

    if args.json:
        result = run_migration(settings, args.to_catalog, args.to_index)
    else:
        with two_bars("copying rows", "building the index") as (copying, indexing):
            result = run_migration(settings, args.to_catalog, args.to_index, copying, indexing)
    entries = render.plural(result["audit_entries"], "audit entry", "audit entries")
    text = (
        f"Migrated into {result['catalog']} and {result['index']}: "
        f"{render.plural(result['faces'], 'face')} (id checksum {result['face_id_sum']}) "
        f"in the catalog and the index, {entries}"
        f", chain {'verified' if result['audit_ok'] else 'NOT verified (as in the home)'}"
        + (" (the copy was already there: index rebuilt)" if result["resumed"] else "")
    )
    render.emit(args.json, result, text)
    return 0


@contextmanager
def two_bars(first: str, second: str) -> Iterator[tuple[Progress, Progress]]:
    """Two progress bars on stderr, one per stage (rich shows one live display at once),
    drawn from the first update: a refusal before any work prints its one line alone."""
    from rich.console import Console
    from rich.progress import Progress as Bars

    bars = Bars(console=Console(file=sys.stderr))
    tasks = [bars.add_task(first, total=None), bars.add_task(second, total=None)]
    started = False

    def updater(task: Any) -> Progress:
        def update(done: int, total: int) -> None:
            nonlocal started
            if not started:
                bars.start()
                started = True
            bars.update(task, completed=done, total=total)

        return update

    try:
        yield updater(tasks[0]), updater(tasks[1])
    finally:
        if started:
            bars.stop()
