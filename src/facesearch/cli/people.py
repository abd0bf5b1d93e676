"""People: ``facesearch people group|list|show|name|merge|split|search|review``.

Only the faces of sources whose policy declares grouping (``sources update NAME
--group-people``) are grouped; every run and every correction is audited.
"""

from __future__ import annotations

import argparse
from typing import Any

from facesearch.cli import render
from facesearch.cli.args import record_id, whole
from facesearch.domain import Person, Requester
from facesearch.engine import FaceSearch

COMMANDS = ("people",)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "people",
        parents=[common],
        help="faces grouped into persons (sources that declare it)",
        description="Persons: the faces of sources whose policy declares grouping "
        "(sources update NAME --group-people), grouped as they are ingested. Names, "
        "merges and splits are people's corrections: later runs keep them.",
    )
    psub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = psub.add_parser("group", parents=[common], help="group faces not yet grouped")
    q.add_argument(
        "--full",
        action="store_true",
        help="regroup every face not confirmed by a person (names and corrections kept)",
    )
    psub.add_parser("list", parents=[common], help="every person with counts")
    q = psub.add_parser("show", parents=[common], help="one person: faces and images")
    q.add_argument("person", type=record_id, metavar="PERSON")
    q = psub.add_parser("name", parents=[common], help="name a person")
    q.add_argument("person", type=record_id, metavar="PERSON")
    q.add_argument("name", metavar="NAME", help="the label ('' to clear it)")
    q = psub.add_parser("merge", parents=[common], help="merge persons into the first")
    q.add_argument("person", type=record_id, metavar="PERSON")
    q.add_argument("others", type=record_id, nargs="+", metavar="OTHER")
    q = psub.add_parser("split", parents=[common], help="split faces off into a new person")
    q.add_argument("person", type=record_id, metavar="PERSON")
    q.add_argument("faces", type=record_id, nargs="+", metavar="FACE")
    q = psub.add_parser(
        "move", parents=[common], help="put faces into a person (or a new one), confirmed"
    )
    q.add_argument("faces", type=record_id, nargs="+", metavar="FACE")
    q.add_argument("--to", type=record_id, metavar="PERSON", help="the person (default: new)")
    q = psub.add_parser("search", parents=[common], help="search with every face of a person")
    q.add_argument("person", type=record_id, metavar="PERSON")
    q.add_argument("--top-k", type=whole, help="number of images to return (default 20)")
    q.add_argument("--threshold", type=float, help="similarity counted as a likely match")
    q.add_argument("--source", action="append", dest="sources", metavar="NAME")
    q.add_argument("--purpose", help="why this search is made (recorded in the audit log)")
    q.add_argument("--case-ref", help="the case or matter it belongs to")
    q = psub.add_parser(
        "review",
        parents=[common],
        help="every image an erasure of the person would take (review before erase)",
    )
    q.add_argument("person", type=record_id, metavar="PERSON")


def person_json(p: Person) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "faces": list(p.faces),
        "images": list(p.images),
        "confirmed": list(p.confirmed),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def person_line(p: Person) -> str:
    label = f" {p.name!r}" if p.name else ""
    return (
        f"person {p.id}{label}: {render.plural(len(p.faces), 'face')} in "
        f"{render.plural(len(p.images), 'image')}"
        + (f" ({len(p.confirmed)} confirmed)" if p.confirmed else "")
    )


def run(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    action = args.action
    if action == "group":
        summary = engine.group_people(full=args.full, who=who)
        text = (
            f"grouped {summary['grouped']} face(s) of {summary['faces']} from "
            f"{', '.join(summary['sources']) or 'no source (none declares grouping)'}; "
            f"{summary['new_persons']} new person(s), {summary['ungrouped']} face(s) ungrouped"
        )
        render.emit(args.json, summary, text)
    elif action == "list":
        persons = engine.persons()
        text = "\n".join(person_line(p) for p in persons) or "no persons"
        render.emit(args.json, [person_json(p) for p in persons], text)
    elif action == "show":
        p = engine.person(args.person)
        images = [engine.show(i) for i in p.images]
        lines = [person_line(p)]
        for image in images:
            places = ", ".join(f"{prov.source}:{prov.path}" for prov in image.provenance)
            lines.append(f"  image {image.id}: {places}")
        data = person_json(p) | {"image_records": [render.image_json(i) for i in images]}
        render.emit(args.json, data, "\n".join(lines))
    elif action == "name":
        p = engine.rename_person(args.person, args.name, who=who)
        render.emit(args.json, person_json(p), person_line(p))
    elif action == "merge":
        p = engine.merge_persons(args.person, args.others, who=who)
        render.emit(args.json, person_json(p), "merged: " + person_line(p))
    elif action == "split":
        kept, new = engine.split_person(args.person, args.faces, who=who)
        text = f"{person_line(kept)}\nsplit off: {person_line(new)}"
        render.emit(args.json, {"kept": person_json(kept), "new": person_json(new)}, text)
    elif action == "move":
        p = engine.move_faces(args.faces, args.to, who=who)
        render.emit(args.json, person_json(p), person_line(p))
    elif action == "search":
        result = engine.search_person(
            args.person, top_k=args.top_k, threshold=args.threshold, sources=args.sources, who=who
        )
        render.emit(args.json, render.results_json([result]), render.results_text([result]))
    else:
        result = engine.review_person(args.person, who=who)
        text = render.results_text([result]) + (
            f"\nto erase them: facesearch erase --image "
            f"{' --image '.join(str(m.image.id) for m in result.matches)} --reason ..."
            if result.matches
            else ""
        )
        render.emit(args.json, render.results_json([result]), text)
    return 0
