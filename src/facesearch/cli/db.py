"""The catalog's schema: ``db upgrade``.

cli/main.py hands these to ``run`` before it opens an engine: a catalog at an older
schema version cannot be opened by one (a shared PostgreSQL catalog is upgraded only by
this command; an embedded SQLite one is also upgraded when opened).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

COMMANDS = ("db",)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    db = sub.add_parser("db", parents=[common], help="the catalog's schema")
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "upgrade",
        parents=[common],
        help="bring the catalog's schema to this release's (back it up first); refuses "
        "a catalog made by a newer release",
    )


def run(args: argparse.Namespace, settings: Any) -> int:
    from facesearch.parts import upgrade_catalog

    url, before, after = upgrade_catalog(settings)
    if args.json:
        print(json.dumps({"catalog": url, "before": before, "after": after}))
    elif before == after:
        print(f"Catalog {url} is at schema version {after}: nothing to do.")
    else:
        print(f"Catalog {url} upgraded from schema version {before} to {after}.")
    return 0
