"""The case file: what was searched under one case reference, by whom, why, and what came
back, with the audit entries that prove it, as HTML and PDF.

Everything comes from the audit log (the only record of past searches) and the catalog
(where a result's image was found, if it is still stored). Probe photos are never kept,
so a case file names each probe by its SHA-256 only; a result's band is the one the
search showed, recorded in its audit entry (searches made before results carried bands,
or before results were recorded at all, show what their entry holds: counts only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facesearch.domain import ImageRecord
from facesearch.governance.audit import AuditEntry, Verification

TEMPLATES = Path(__file__).resolve().parent / "templates"
SEARCH_ACTIONS = ("search",)


@dataclass(frozen=True, slots=True)
class CaseResult:
    rank: int
    image_id: int
    face_id: int
    similarity: float
    band: str | None
    stored: bool  # False: removed since (retention, erasure); only ids and scores remain
    places: tuple[dict[str, str | None], ...] = ()  # source, path, page_url, source_url


@dataclass(frozen=True, slots=True)
class CaseSearch:
    seq: int
    at: str
    actor: str
    purpose: str | None
    probe_sha256: str | None
    probes: int
    probe_face_ids: tuple[int, ...]
    sources: tuple[str, ...]
    threshold: float | None
    faces_searched: int | None
    results_count: int
    likely_matches: int
    results: tuple[CaseResult, ...]
    results_recorded: bool  # the entry lists its results (searches since bands existed)


@dataclass(frozen=True, slots=True)
class CaseFile:
    case_ref: str
    made_at: str
    made_by: str
    searches: tuple[CaseSearch, ...]
    entries: tuple[AuditEntry, ...]
    verification: Verification
    probes_kept: bool = False

    @property
    def verification_line(self) -> str:
        v = self.verification
        if v.ok:
            return (
                f"Audit log verified: hash chain intact over {v.entries} entries "
                f"(checked {self.made_at})."
            )
        return f"AUDIT LOG FAILED VERIFICATION: {v.problem} (checked {self.made_at})."

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_ref": self.case_ref,
            "made_at": self.made_at,
            "made_by": self.made_by,
            "probes_kept": self.probes_kept,
            "verification": self.verification_line,
            "verified": self.verification.ok,
            "searches": [
                {
                    "seq": s.seq,
                    "at": s.at,
                    "actor": s.actor,
                    "purpose": s.purpose,
                    "probe_sha256": s.probe_sha256,
                    "probes": s.probes,
                    "probe_face_ids": list(s.probe_face_ids),
                    "sources": list(s.sources),
                    "threshold": s.threshold,
                    "faces_searched": s.faces_searched,
                    "results": s.results_count,
                    "likely_matches": s.likely_matches,
                    "results_recorded": s.results_recorded,
                    "matches": [
                        {
                            "rank": r.rank,
                            "image_id": r.image_id,
                            "face_id": r.face_id,
                            "similarity": r.similarity,
                            "band": r.band,
                            "stored": r.stored,
                            "places": list(r.places),
                        }
                        for r in s.results
                    ],
                }
                for s in self.searches
            ],
            "entries": [e.as_dict() for e in self.entries],
        }


def result_ids(entries: list[AuditEntry]) -> list[int]:
    """The image ids the case's searches returned (to look up where they were found)."""
    return sorted(
        {
            int(m[0])
            for e in entries
            if e.action in SEARCH_ACTIONS
            for m in e.details.get("matched", [])
        }
    )


def build(
    case_ref: str,
    entries: list[AuditEntry],
    images: dict[int, ImageRecord],
    verification: Verification,
    made_at: str,
    made_by: str,
) -> CaseFile:
    searches = []
    for e in entries:
        if e.action not in SEARCH_ACTIONS:
            continue
        d = e.details
        results = []
        for rank, row in enumerate(d.get("matched", []), start=1):
            image_id, face_id, similarity, band = row
            image = images.get(int(image_id))
            results.append(
                CaseResult(
                    rank=rank,
                    image_id=int(image_id),
                    face_id=int(face_id),
                    similarity=float(similarity),
                    band=band,
                    stored=image is not None,
                    places=tuple(
                        {
                            "source": p.source,
                            "path": p.path,
                            "page_url": p.page_url,
                            "source_url": p.source_url,
                        }
                        for p in (image.provenance if image else ())
                    ),
                )
            )
        searches.append(
            CaseSearch(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                purpose=e.purpose,
                probe_sha256=d.get("probe_sha256"),
                probes=int(d.get("probes", 1)),
                probe_face_ids=tuple(int(i) for i in d.get("probe_face_ids", [])),
                sources=tuple(d.get("sources", [])),
                threshold=d.get("threshold"),
                faces_searched=d.get("faces_searched"),
                results_count=int(d.get("results", 0)),
                likely_matches=int(d.get("likely_matches", 0)),
                results=tuple(results),
                results_recorded="matched" in d,
            )
        )
    return CaseFile(
        case_ref=case_ref,
        made_at=made_at,
        made_by=made_by,
        searches=tuple(searches),
        entries=tuple(entries),
        verification=verification,
    )


# -- renderings ----------------------------------------------------------------------------
def to_html(case: CaseFile) -> str:
    """One self-contained HTML file (no script, no external resource)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(("html",)))
    return env.get_template("case.html").render(case=case)


def _latin(text: object) -> str:
    """The PDF's core fonts hold Latin-1 only: anything else becomes '?'."""
    return str(text).encode("latin-1", "replace").decode("latin-1")


def to_pdf(case: CaseFile) -> bytes:
    """The same content as the HTML, as a PDF (fpdf2)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(_latin(f"Case file {case.case_ref}"))
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def line(text: object, size: float = 9, style: str = "") -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(width, size * 0.5, _latin(text), new_x="LMARGIN", new_y="NEXT")

    line(f"Case file {case.case_ref}", 16, "B")
    line(f"Made {case.made_at} by {case.made_by}.")
    line("A match is an investigative lead, not an identification.", 9, "I")
    line(case.verification_line, 10, "B")
    line("Probe photos: not kept (this deployment keeps none); each probe is named by its SHA-256.")
    pdf.ln(2)
    line(f"Searches ({len(case.searches)})", 13, "B")
    for s in case.searches:
        pdf.ln(1)
        line(f"Search #{s.seq} at {s.at} by {s.actor}", 10, "B")
        line(f"Purpose: {s.purpose or '-'}")
        probe = f"probe sha256 {s.probe_sha256 or '-'}"
        if s.probes > 1:
            probe += f" and {s.probes - 1} more probe(s)"
        if s.probe_face_ids:
            probe += f"; stored face(s) {', '.join(map(str, s.probe_face_ids))}"
        line(probe)
        line(
            f"Sources: {', '.join(s.sources) or 'all'}; threshold {s.threshold}; "
            f"faces searched {s.faces_searched if s.faces_searched is not None else '-'}; "
            f"{s.results_count} results, {s.likely_matches} likely match(es)"
        )
        if not s.results_recorded:
            line("(this search's entry predates recorded results: counts only)", 8, "I")
        for r in s.results:
            where = "; ".join(
                f"{p['source']}: {p['page_url'] or p['source_url'] or p['path']}" for p in r.places
            )
            line(
                f"  {r.rank}. image {r.image_id} face {r.face_id}  similarity "
                f"{r.similarity:.4f}  {r.band or '-'}  "
                + (where if r.stored else "(no longer stored)")
            )
    pdf.ln(2)
    line(f"Audit entries ({len(case.entries)})", 13, "B")
    for e in case.entries:
        line(
            f"#{e.seq} {e.at} {e.actor} {e.action} purpose={e.purpose or '-'} hash={e.hash[:16]}",
            8,
        )
    return bytes(pdf.output())
