"""The case file: a page per case reference and the same file as HTML and PDF; the audit
page as a filtered table."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from facesearch import FaceSearch
from facesearch.domain import Requester
from tests.api.governance_app import gallery_copy
from tests.api.test_web_governance import browser_for
from tests.app_gallery import OBAMA_PROBE, Gallery


@pytest.fixture(scope="module")
def app(
    gallery: Gallery, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, FaceSearch]]:
    with gallery_copy(gallery, tmp_path_factory.mktemp("case")) as (client, engine):
        inv = Requester("user:inv-7", "fraud inquiry", "C-12")
        [first] = engine.search(gallery.dev / OBAMA_PROBE, top_k=5, who=inv)
        engine.search_faces([first.matches[0].face_id], top_k=5, who=inv)
        engine.search(gallery.dev / OBAMA_PROBE, who=Requester("user:other", "x", "C-99"))
        yield client, engine


def test_the_case_page_lists_every_search_with_results_and_entries(
    app: tuple[TestClient, FaceSearch],
    gallery: Gallery,
) -> None:
    client, engine = app
    browser, _ = browser_for(client, gallery.keys["auditor"], "/audit")
    page = browser.get("/cases/C-12")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Audit log verified: hash chain intact" in text
    searches = re.findall(r'<section class="case-search" id="search-(\d+)">', text)
    assert len(searches) == 2
    assert text.count("user:inv-7") >= 2 and "fraud inquiry" in text
    assert "user:other" not in text  # another case's search is not in this file
    assert "https://archive.example.org/stories/obama" in text  # where the result was found
    assert re.search(r"<td>0\.9\d{3}</td><td>strong</td>", text)
    assert "stored face(s)" in text  # the search made again from a result
    # The file says probes are not kept, and names the probe by its hash.
    probe_sha = engine.probe(gallery.dev / OBAMA_PROBE).sha256
    assert "Probe photos are not kept" in text and probe_sha in text
    # Reading it is recorded, under the case.
    [read] = [e for e in engine.audit.entries(case_ref="C-12") if e.action == "case.export"]
    assert read.details == {"case": "C-12", "searches": 2, "entries": 2, "format": "page"}
    assert browser.get("/cases/NO-SUCH-CASE").status_code == 404
    searcher, _ = browser_for(client, gallery.keys["search"], "/")
    assert searcher.get("/cases/C-12").status_code == 403


def test_the_case_file_as_html_and_pdf(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, _ = app
    browser, _ = browser_for(client, gallery.keys["auditor"], "/audit")
    html = browser.get("/cases/C-12/file.html")
    assert html.status_code == 200
    assert html.headers["content-disposition"] == 'attachment; filename="case-C-12.html"'
    assert "<script" not in html.text and "Case file C-12" in html.text
    assert html.text.count('<section class="search"') == 2
    pdf = browser.get("/cases/C-12/file.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Case file C-12" in text
    assert "Audit log verified: hash chain intact" in text
    assert "fraud inquiry" in text and "user:inv-7" in text
    assert re.search(r"similarity 0\.9\d{3}\s+strong", text)
    assert "archive.example.org/stories/obama" in text
    assert browser.get("/cases/C-12/file.docx").status_code == 404


def test_the_audit_page_is_a_table_filtered_by_action_who_and_date(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    browser, _ = browser_for(client, gallery.keys["auditor"], "/audit")
    rows = lambda page: re.findall(r"<tr>\s*<td>\d+</td>.*?</tr>", page.text, re.S)  # noqa: E731
    searches = rows(browser.get("/audit", params={"action": "search", "actor": "inv-7"}))
    assert len(searches) == 2 and all("user:inv-7" in r for r in searches)
    assert "results, " in searches[0] and "faces" in searches[0]  # details in words
    assert 'href="/cases/C-12"' in searches[0]
    today = next(iter(engine.audit.entries(action="search"))).at[:10]
    assert rows(browser.get("/audit", params={"from": "2001-01-01", "to": "2001-01-02"})) == []
    assert len(rows(browser.get("/audit", params={"from": today, "action": "search"}))) >= 3
    bad = browser.get("/audit", params={"from": "yesterday"})
    assert bad.status_code == 400


def test_the_cli_exports_the_case_file(app: tuple[TestClient, FaceSearch], tmp_path: Path) -> None:
    from facesearch.cli.main import main

    _, engine = app
    out = tmp_path / "c12.pdf"
    assert main(["case", "export", "C-12", "--output", str(out), "--home", str(engine.home)]) == 0
    text = "\n".join(p.extract_text() for p in PdfReader(out).pages)
    assert "Case file C-12" in text and "Search #" in text
    html = tmp_path / "c12.html"
    assert main(["case", "export", "C-12", "--output", str(html), "--home", str(engine.home)]) == 0
    assert "Audit log verified" in html.read_text()
    wrong = ["case", "export", "C-12", "--output", str(tmp_path / "c.txt")]
    assert main([*wrong, "--home", str(engine.home)]) != 0
