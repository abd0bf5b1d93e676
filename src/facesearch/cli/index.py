"""Index maintenance: ``reindex`` and ``compact``."""

from __future__ import annotations

import argparse
from typing import Any

from facesearch.cli import render
from facesearch.domain import Requester
from facesearch.engine import FaceSearch

COMMANDS = ("reindex", "compact")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    if args.command == "reindex":
        result = engine.reindex(kind=args.kind)
        done = "Rebuilt"
    else:
        result = engine.compact()
        done = "Compacted"
    render.emit(
        args.json,
        result,
        f"{done} the {result['kind']} index: {render.plural(result['faces'], 'face')}",
    )
    return 0
