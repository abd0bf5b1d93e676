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
    p.add_argument(
        "--re-embed",
        action="store_true",
        help="re-embed every stored face with the configured embedder (faces.embedder), "
        "reading the original files, and move the home to its model; resumable",
    )
    p = sub.add_parser(
        "compact",
        parents=[common],
        help="drop removed faces from the index files",
        description="Rewrite the index files so that no removed face's vector stays on disk.",
    )


def run(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    if args.command == "reindex" and args.re_embed:
        return reembed(args, engine, who)
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


def reembed(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    with render.count_progress("re-embedding", not args.json) as progress:
        result = engine.reembed(progress, who)
    if result["previous_model"] in (None, result["model"]):
        text = f"Nothing to re-embed: the home already holds {result['model']} (or nothing)"
    elif result["switched"]:
        text = (
            f"Re-embedded {render.plural(result['faces'], 'face')} of "
            f"{render.plural(result['images'], 'image')}; the home now holds {result['model']}"
        )
    else:
        missing = result.get("unreadable_count", 0)
        lines = [
            f"Re-embedded {render.plural(result['faces'], 'face')}; the home keeps "
            f"{result['previous_model']}: "
            + (
                f"{render.plural(missing, 'image')} could not be read from their files "
                "(gone or changed). Restore them, or erase them, and run this again: "
                "it resumes where it stopped."
                if missing
                else "faces were added meanwhile; run this again to finish."
            )
        ]
        lines += [f"  image {u['image_id']}: {u['path']}" for u in result["unreadable"]]
        text = "\n".join(lines)
    render.emit(args.json, result, text)
    return 0 if result["switched"] or result["previous_model"] in (None, result["model"]) else 1
