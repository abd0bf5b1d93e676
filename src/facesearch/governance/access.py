"""Access requests ("am I in here?"): the report a data subject is owed.

A request names the person by a photo of them, or by where their photos were published
(a page, or a profile or site as a URL prefix: no photo asked for). The probe photo is
processed in memory only: nothing here writes it, its pixels or its template anywhere.
The report lists every image in which the person appears above the strict threshold, or
every image published at that address, with the source, lawful basis, where it came
from, when it was collected, until when it will be kept, and what the person may do next.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from facesearch.domain import ImageRecord, Provenance, SearchResult, Source
from facesearch.governance.policy import ART6_BASES, ART9_CONDITIONS
from facesearch.governance.urls import PublishedAt

RIGHTS = [
    "You may ask the controller to erase these images and every template made from them "
    "(right to erasure, GDPR Art. 17).",
    "You may object to this processing; the controller can then keep a template of your face "
    "for the sole purpose of excluding you from future collections and searches (Art. 21).",
    "You may ask for inaccurate data to be corrected or its processing restricted "
    "(Art. 16 and 18).",
    "You may complain to your data protection authority (Art. 77).",
]


def access_report(
    result: SearchResult, sources: dict[str, Source], threshold: float, request_id: str
) -> dict[str, Any]:
    """The report for a request by photo: the images of that face at or above
    ``threshold``."""
    images = [
        _image(match.image, sources, round(match.similarity, 4), match.box.as_dict())
        for match in result.matches
        if match.similarity >= threshold
    ]
    return _report(
        request_id,
        images,
        matched_by="photo",
        url=None,
        threshold=threshold,
        model=result.model.key,
        note="The photo you provided was processed in memory only and has not been kept.",
    )


def access_report_by_url(
    images: Sequence[ImageRecord],
    sources: dict[str, Source],
    where: PublishedAt,
    request_id: str,
    model: str,
) -> dict[str, Any]:
    """The report for a request by where the photos were published: every image with a
    copy under ``where``, with all its copies. No face was compared: there is no
    similarity, no threshold and no face box; ``faces_stored`` says how many faces (and
    templates) each image gave."""
    return _report(
        request_id,
        [_image(image, sources, None, None) for image in images],
        matched_by=where.kind,
        url=where.url,
        threshold=None,
        model=model,
        note="No photo was asked for: the images were found by where they were published. "
        "The address you gave was used for this request only and has not been kept; the "
        "audit log holds a keyed hash of it.",
    )


def _report(
    request_id: str,
    images: list[dict[str, Any]],
    *,
    matched_by: str,
    url: str | None,
    threshold: float | None,
    model: str,
    note: str,
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "matched_by": matched_by,
        "url": url,
        "threshold": threshold,
        "model": model,
        "images_found": len(images),
        "images": images,
        "your_rights": RIGHTS,
        "note": note,
    }


def _image(
    image: ImageRecord,
    sources: dict[str, Source],
    similarity: float | None,
    box: dict[str, int] | None,
) -> dict[str, Any]:
    return {
        "image_id": image.id,
        "similarity": similarity,
        "face_box": box,
        "faces_stored": len(image.faces),
        "image_sha256": image.sha256,
        "copies": [_copy(p, sources.get(p.source)) for p in image.provenance],
    }


def _copy(p: Provenance, source: Source | None) -> dict[str, Any]:
    return {
        "source": p.source,
        "controller": source.controller if source else "",
        "contact": source.contact if source else "",
        "lawful_basis": ART6_BASES.get(source.lawful_basis, "") if source else "",
        "special_category_condition": ART9_CONDITIONS.get(source.special_category_condition, "")
        if source
        else "",
        "source_url": p.source_url,
        "page_url": p.page_url,
        "captured_at": p.captured_at,
        "collected_at": p.ingested_at,
        "kept_until": p.expires_at,
        "legal_hold": bool(source and source.legal_hold),
    }


def summary(report: dict[str, Any]) -> str:
    """One line: how many images, found how (for the CLI, the page and the HTML file)."""
    n = report["images_found"]
    if report["matched_by"] == "photo":
        return f"{n} image(s) found at similarity >= {report['threshold']:.2f}"
    where = "under" if report["matched_by"] == "url-prefix" else "at"
    return f"{n} image(s) published {where} {report['url']}"


def access_report_html(report: dict[str, Any]) -> str:
    """A self-contained HTML document (no external resources) of the report."""
    e = html.escape
    rows = []
    for img in report["images"]:
        for c in img["copies"]:
            links = " ".join(
                f'<a href="{e(u)}">{e(label)}</a>'
                for label, u in (("image", c["source_url"]), ("page", c["page_url"]))
                if u
            )
            similarity = "-" if img["similarity"] is None else f"{img['similarity']:.3f}"
            rows.append(
                "<tr>"
                f"<td>{img['image_id']}</td><td>{similarity}</td>"
                f"<td>{e(c['source'])}<br>"
                f"<small>{e(c['controller'])} {e(c['contact'])}</small></td>"
                f"<td>{e(c['lawful_basis'])}<br>"
                f"<small>{e(c['special_category_condition'])}</small></td>"
                f"<td>{links or '-'}</td>"
                f"<td>{e(c['collected_at'] or '')}</td>"
                f"<td>{e(c['kept_until'] or '')}{' (legal hold)' if c['legal_hold'] else ''}</td>"
                "</tr>"
            )
    table = (
        "<table><thead><tr><th>Image</th><th>Similarity</th><th>Source</th>"
        "<th>Lawful basis</th><th>Where from</th><th>Collected</th><th>Kept until</th>"
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        if rows
        else "<p><strong>No image of you was found.</strong></p>"
    )
    rights = "".join(f"<li>{e(r)}</li>" for r in report["your_rights"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Access request {e(report["request_id"])}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse;width:100%}}th,td{{border:1px solid #999;padding:.4rem;
text-align:left;vertical-align:top}}th{{background:#eee}}
</style></head><body>
<h1>Access request: what this system holds about you</h1>
<p>Request {e(report["request_id"])}, generated {e(report["generated_at"])}.
{e(summary(report))}.</p>
{table}
<h2>What you may do next</h2><ul>{rights}</ul>
<p>{e(report["note"])}</p>
</body></html>
"""
