"""The data-protection commands: sources, retention, erase, suppress, dsar, audit, report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from facesearch.cli.args import id_list, record_id, whole
from facesearch.cli.render import emit, plural
from facesearch.domain import Requester, Source
from facesearch.engine import FaceSearch
from facesearch.errors import InvalidInput
from facesearch.governance.access import access_report_html, summary
from facesearch.governance.erasure import Receipt
from facesearch.governance.policy import (
    ART6_BASES,
    ART9_CONDITIONS,
    parse_jurisdictions,
    parse_period,
)

COMMANDS = ("sources", "retention", "erase", "suppress", "dsar", "audit", "case", "report")
CASE_FORMATS = ("html", "pdf", "json")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("sources", parents=[common], help="register and manage collections")
    ssub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name in ("add", "update"):
        q = ssub.add_parser(name, parents=[common], help=f"{name} a source")
        q.add_argument("name", metavar="NAME")
        required = name == "add"
        q.add_argument(
            "--lawful-basis",
            required=required,
            choices=sorted(ART6_BASES),
            help="GDPR Art. 6(1) basis",
        )
        q.add_argument(
            "--condition",
            required=required,
            choices=sorted(ART9_CONDITIONS),
            help="GDPR Art. 9(2) condition for biometric data",
        )
        q.add_argument(
            "--retention",
            required=required,
            help="how long images are kept: days, or e.g. 90d, 18m, 5y",
        )
        q.add_argument("--description")
        q.add_argument("--controller", help="who decides why and how the data is used")
        q.add_argument("--contact", help="where data subjects can write")
        q.add_argument("--jurisdictions", help="where the people in it are, e.g. GB,FR")
        hold = q.add_mutually_exclusive_group()
        hold.add_argument(
            "--legal-hold",
            dest="legal_hold",
            action="store_true",
            default=None,
            help="suspend retention (e.g. litigation)",
        )
        hold.add_argument("--no-legal-hold", dest="legal_hold", action="store_false")
        group = q.add_mutually_exclusive_group()
        group.add_argument(
            "--group-people",
            dest="group_people",
            action="store_true",
            default=None,
            help="declare grouping its faces into persons as a purpose (profiling: off "
            "unless declared; audited, shown in the transparency report)",
        )
        group.add_argument("--no-group-people", dest="group_people", action="store_false")
    ssub.add_parser("list", parents=[common], help="every source with its basis and counts")
    q = ssub.add_parser("show", parents=[common], help="one source")
    q.add_argument("name", metavar="NAME")

    p = sub.add_parser("retention", parents=[common], help="remove images past their retention")
    rsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = rsub.add_parser("run", parents=[common], help="remove expired images now")
    q.add_argument("--dry-run", action="store_true", help="report what would go, remove nothing")

    p = sub.add_parser(
        "erase",
        parents=[common],
        help="erase images for real",
        description="Erase by image, source, jurisdiction or person. By person: "
        "run once with --person PHOTO to review the matches, then again with "
        "--select IDS (or --all-matches) to erase them.",
    )
    p.add_argument("--image", type=record_id, action="append", default=[], metavar="ID")
    p.add_argument("--source", action="append", default=[], metavar="NAME")
    p.add_argument("--jurisdiction", metavar="CODE", help="every source listing this jurisdiction")
    p.add_argument("--person", type=Path, metavar="PHOTO", help="images of the person in PHOTO")
    p.add_argument("--select", help="with --person: comma-separated image ids to erase")
    p.add_argument("--all-matches", action="store_true", help="with --person: erase every match")
    p.add_argument("--threshold", type=float, help="with --person: similarity (default strict)")
    p.add_argument("--reason", default="", help="why (kept in the receipt and the audit log)")
    p.add_argument("--dry-run", action="store_true", help="report what would go, remove nothing")
    p.add_argument("--receipt", type=Path, help="write the erasure receipt as JSON here")

    p = sub.add_parser("suppress", parents=[common], help="the objection (suppression) list")
    usub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = usub.add_parser("add", parents=[common], help="add a person who objected")
    q.add_argument("photo", type=Path, metavar="PHOTO")
    q.add_argument("--consent-ref", required=True, help="reference of their consent to keep it")
    q.add_argument("--note", default="")
    q.add_argument("--face", type=whole)
    usub.add_parser("list", parents=[common], help="entries (no templates shown)")
    q = usub.add_parser("remove", parents=[common], help="remove an entry")
    q.add_argument("id", type=record_id)

    p = sub.add_parser(
        "dsar",
        parents=[common],
        help="access request: is this person in here?",
        description="Report every image of the person in PHOTO above the strict "
        "threshold (the photo is processed in memory and never stored), or, with no "
        "photo, every image published at a page (--url) or under a profile or site "
        "(--url-prefix, matched at a path-segment boundary). Give exactly one of them.",
    )
    p.add_argument("photo", type=Path, nargs="?", metavar="PHOTO", help="a photo of the person")
    p.add_argument("--face", type=whole, help="with PHOTO: which face (0, the largest)")
    p.add_argument("--url", help="the page (or image) URL where the photos were published")
    p.add_argument(
        "--url-prefix", metavar="URL", help="a profile or site: every page under this URL"
    )
    p.add_argument("--html", type=Path, help="also write a self-contained HTML report here")

    p = sub.add_parser("audit", parents=[common], help="the tamper-evident audit log")
    asub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    asub.add_parser("verify", parents=[common], help="check the hash chain")
    asub.add_parser(
        "head", parents=[common], help="latest entry number and hash (keep it elsewhere)"
    )
    q = asub.add_parser("export", parents=[common], help="entries, as JSON Lines")
    q.add_argument("--case", help="only this case reference")
    q.add_argument("--output", type=Path, help="write here instead of stdout")

    p = sub.add_parser("case", parents=[common], help="the case file of a case reference")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = csub.add_parser(
        "export",
        parents=[common],
        help="every search under a case, its results and audit entries, as HTML or PDF",
        description="Write the case file of CASE_REF: every search made under it (who, "
        "when, purpose, probe hashes), its results with scores, bands and source links, "
        "and the matching audit entries with the log's verification. The export is "
        "itself recorded under the case.",
    )
    q.add_argument("case_ref", metavar="CASE_REF")
    q.add_argument(
        "--output", type=Path, help="write here (.html, .pdf or .json; default: a summary)"
    )
    q.add_argument("--format", choices=CASE_FORMATS, help="default: from --output's suffix")

    p = sub.add_parser("report", parents=[common], help="transparency report")
    p.add_argument("--since", help="ISO date")
    p.add_argument("--until", help="ISO date")


def run(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    handler = {
        "sources": _sources,
        "retention": _retention,
        "erase": _erase,
        "suppress": _suppress,
        "dsar": _dsar,
        "audit": _audit,
        "case": _case,
        "report": _report,
    }[args.command]
    return handler(args, engine, who)


def _policy_args(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {
        "lawful_basis": args.lawful_basis,
        "special_category_condition": args.condition,
        "retention_days": parse_period(args.retention) if args.retention else None,
        "description": args.description,
        "controller": args.controller,
        "contact": args.contact,
        "jurisdictions": parse_jurisdictions(args.jurisdictions)
        if args.jurisdictions is not None
        else None,
        "legal_hold": args.legal_hold,
        "group_people": args.group_people,
    }
    return {k: v for k, v in values.items() if v is not None}


def source_json(s: Source) -> dict[str, Any]:
    return {**s.policy(), "created_at": s.created_at, "updated_at": s.updated_at, **s.counts}


def _source_text(s: Source) -> str:
    hold = (" LEGAL HOLD" if s.legal_hold else "") + ("; groups people" if s.group_people else "")
    return (
        f"{s.name}: {s.counts.get('images', 0)} images, {s.counts.get('faces', 0)} faces; "
        f"{ART6_BASES[s.lawful_basis]}; {ART9_CONDITIONS[s.special_category_condition]}; "
        f"kept {s.retention_days} days{hold}; jurisdictions {','.join(s.jurisdictions) or '-'}"
        + (f"\n  {s.description}" if s.description else "")
        + (f"\n  controller: {s.controller} {s.contact}".rstrip() if s.controller else "")
    )


def _sources(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    if args.action == "add":
        source = engine.add_source(Source(name=args.name, **_policy_args(args)), who=who)
        emit(args.json, source_json(source), "Registered " + _source_text(source))
    elif args.action == "update":
        changes = _policy_args(args)
        if not changes:
            raise InvalidInput("nothing to update: give at least one option")
        source = engine.update_source(args.name, who=who, **changes)
        emit(args.json, source_json(source), "Updated " + _source_text(source))
    elif args.action == "list":
        sources = engine.sources()
        emit(
            args.json,
            [source_json(s) for s in sources],
            "\n".join(_source_text(s) for s in sources) or "No sources registered.",
        )
    else:
        source = engine.source(args.name)
        emit(args.json, source_json(source), _source_text(source))
    return 0


def _receipt_text(receipt: Receipt) -> str:
    verb = "Would remove" if receipt.dry_run else "Removed"
    return (
        f"{verb} {plural(receipt.images_removed, 'image')}, "
        f"{plural(receipt.faces_removed, 'face')} and "
        f"{plural(receipt.provenance_removed, 'provenance row')}"
        + ("" if receipt.dry_run else f" (receipt {receipt.receipt_id})")
        + (
            f"; the index's storage was compacted without them at {receipt.index_erased_at}"
            if receipt.index_erased_at
            else ""
        )
    )


def _retention(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    receipt = engine.run_retention(dry_run=args.dry_run, who=who)
    emit(args.json, receipt.as_dict(), _receipt_text(receipt))
    return 0


def _erase(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    image_ids = list(args.image)
    if args.person is not None:
        found = engine.find_person(args.person, threshold=args.threshold, who=who)
        if not (args.select or args.all_matches):
            rows = [
                f"  image {m.image.id}  {m.similarity:.3f}  {m.image.path}" for m in found.matches
            ]
            data = {
                "matches": [
                    {"image_id": m.image.id, "similarity": m.similarity, "path": m.image.path}
                    for m in found.matches
                ]
            }
            emit(
                args.json,
                data,
                f"{len(rows)} image(s) of this person at similarity >= "
                f"{found.threshold:.2f}:\n"
                + "\n".join(rows)
                + "\nReview them, then erase with --select IDS or --all-matches.",
            )
            return 0
        matched = {m.image.id for m in found.matches}
        chosen = matched if args.all_matches else set(id_list(args.select))
        if not chosen <= matched:
            raise InvalidInput(f"not among the matches: {sorted(chosen - matched)}")
        image_ids += sorted(chosen)
        if not image_ids:
            raise InvalidInput("no image of this person was found: nothing to erase")
    receipt = engine.erase(
        image_ids=image_ids,
        sources=args.source,
        jurisdiction=args.jurisdiction,
        dry_run=args.dry_run,
        who=who,
        reason=args.reason,
    )
    if args.receipt:
        args.receipt.write_text(json.dumps(receipt.as_dict(), indent=2))
    emit(args.json, receipt.as_dict(), _receipt_text(receipt))
    return 0


def _suppress(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    if args.action == "add":
        sid = engine.suppress(args.photo, args.consent_ref, args.note, face=args.face, who=who)
        emit(
            args.json,
            {"id": sid},
            f"Added suppression {sid}: this person's faces will be "
            "skipped by ingest and withheld from searches",
        )
    elif args.action == "list":
        rows = engine.suppressions.list()
        emit(
            args.json,
            rows,
            "\n".join(
                f"{r['id']}: consent {r['consent_ref']} ({r['created_at']}) {r['note']}"
                for r in rows
            )
            or "The suppression list is empty.",
        )
    else:
        engine.remove_suppression(args.id, who)
        emit(args.json, {"removed": args.id}, f"Removed suppression {args.id}")
    return 0


def _dsar(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    from facesearch.imaging import read_limited

    asked = [args.photo is not None, args.url is not None, args.url_prefix is not None]
    if sum(asked) != 1:
        raise InvalidInput("give exactly one of PHOTO, --url URL or --url-prefix URL")
    if args.photo is None and args.face is not None:
        raise InvalidInput("--face goes with a PHOTO")
    if args.photo is not None:
        report = engine.access_request(
            read_limited(str(args.photo), engine.limits), face=args.face, who=who
        )
    elif args.url is not None:
        report = engine.access_request_by_url(args.url, who=who)
    else:
        report = engine.access_request_by_url(args.url_prefix, prefix=True, who=who)
    if args.html:
        args.html.write_text(access_report_html(report))
    lines = [f"Access request {report['request_id']}: {summary(report)}"]
    for img in report["images"]:
        found = "" if img["similarity"] is None else f" ({img['similarity']:.3f})"
        for c in img["copies"]:
            lines.append(
                f"  image {img['image_id']}{found} source {c['source']} "
                f"[{c['lawful_basis']}] {c['page_url'] or c['source_url'] or '-'} "
                f"kept until {c['kept_until']}"
            )
    emit(args.json, report, "\n".join(lines))
    return 0


def _audit(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    if args.action == "verify":
        result = engine.verify_audit()
        emit(
            args.json,
            {
                "ok": result.ok,
                "entries": result.entries,
                "problem": result.problem,
                "seq": result.seq,
                "keyed_from": result.keyed_from,
                "warning": result.warning,
            },
            (
                f"Audit log intact: {plural(result.entries, 'entry', 'entries')}"
                if result.ok
                else f"AUDIT LOG TAMPERED: {result.problem}"
            )
            + (f"\nWarning: {result.warning}" if result.warning else ""),
        )
        return 0 if result.ok else 4
    if args.action == "head":
        head = engine.audit.head()
        emit(
            args.json,
            {"seq": head[0], "hash": head[1]} if head else None,
            f"{head[0]} {head[1]}" if head else "The audit log is empty.",
        )
        return 0
    entries = engine.export_audit(args.case, who=who)
    text = "\n".join(json.dumps(e, sort_keys=True) for e in entries)
    if args.output:
        args.output.write_text(text + ("\n" if text else ""))
        print(f"Wrote {plural(len(entries), 'entry', 'entries')} to {args.output}")
    else:
        print(text)
    return 0


def _case(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    from facesearch.governance import casefile

    fmt = args.format or (args.output.suffix.lstrip(".").lower() if args.output else "json")
    if fmt not in CASE_FORMATS:
        raise InvalidInput(f"cannot write a case file as {fmt!r}: use .html, .pdf or .json")
    case = engine.case_file(args.case_ref, who=who, format=fmt)
    if args.output:
        if fmt == "pdf":
            args.output.write_bytes(casefile.to_pdf(case))
        elif fmt == "html":
            args.output.write_text(casefile.to_html(case))
        else:
            args.output.write_text(json.dumps(case.as_dict(), indent=2, default=str))
    searches = plural(len(case.searches), "search", "searches")
    entries = plural(len(case.entries), "audit entry", "audit entries")
    lines = [f"Case {case.case_ref}: {searches}, {entries}. {case.verification_line}"]
    for s in case.searches:
        lines.append(
            f"  #{s.seq} {s.at} {s.actor} ({s.purpose or 'no purpose'}): "
            f"{s.results_count} results, {s.likely_matches} likely"
        )
    if args.output:
        lines.append(f"Wrote {args.output}")
    emit(args.json and not args.output, case.as_dict(), "\n".join(lines))
    return 0 if case.verification.ok else 4


def _report(args: argparse.Namespace, engine: FaceSearch, who: Requester) -> int:
    report = engine.transparency_report(args.since, args.until)
    lines = ["Transparency report", "", "Sources:"]
    for s in report["sources"]:
        lines.append(
            f"  {s['name']}: {s['images']} images, {s['faces']} faces; "
            f"{s['lawful_basis']} / {s['special_category_condition']}; "
            f"retention {s['retention_days']} days"
            + ("; LEGAL HOLD" if s["legal_hold"] else "")
            + ("; faces grouped into persons" if s["group_people"] else "")
        )
    lines.append(f"Searches: {report['searches']}")
    for purpose, n in sorted(report["searches_by_purpose"].items()):
        lines.append(f"  {purpose}: {n}")
    lines += [
        f"Erasures: {report['erasures']} ({report['erased']['images']} images)",
        f"Retention runs: {report['retention_runs']} ({report['expired']['images']} images)",
        f"Access requests: {report['access_requests']}",
        f"Suppressions added: {report['suppressions_added']} "
        f"({report['suppressions_on_file']} on file)",
        f"Grouping into persons: {report['people_grouping_runs']} run(s), "
        f"{report['persons']} person(s) held",
    ]
    emit(args.json, report, "\n".join(lines))
    return 0
