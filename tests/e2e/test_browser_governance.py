"""The operator's data-protection pages in Debian's Chromium: an access request with its
downloadable report, and the audit log showing the search made for a case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.app_gallery import OBAMA_PROBE, TEST_OUTPUT, Gallery

OUTPUT = TEST_OUTPUT / "e2e"

pytestmark = pytest.mark.browser


def sign_in_with_key(page: Any, server: str, key: str) -> None:
    page.goto(f"{server}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server}/")


def test_an_access_request_report_is_shown_and_downloaded(
    page: Any, server: str, e2e_gallery: Gallery, tmp_path: Path
) -> None:
    sign_in_with_key(page, server, e2e_gallery.keys["admin"])
    page.get_by_role("link", name="Access requests").click()
    page.set_input_files("input[name=image]", str(e2e_gallery.dev / OBAMA_PROBE))
    page.get_by_role("button", name="Make the report").click()
    summary = page.locator("#report-summary")
    summary.wait_for()
    assert summary.inner_text().startswith("1 image(s) found")
    assert "archive.example.org/photos/obama.jpg" in page.locator("#report table").inner_text()
    page.screenshot(path=str(OUTPUT / "access-request.png"), full_page=True)
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the report (HTML)").click()
    saved = tmp_path / "report.html"
    info.value.save_as(saved)
    document = saved.read_text()
    assert "what this system holds about you" in document and "obama.jpg" in document


def test_the_auditor_sees_the_search_of_a_case(
    page: Any, server: str, e2e_gallery: Gallery
) -> None:
    sign_in_with_key(page, server, e2e_gallery.keys["admin"])
    page.get_by_label("Purpose").fill("browser audit check")
    page.get_by_label("Case reference").fill("E2E-AUDIT-1")
    page.set_input_files("#probe-file", str(e2e_gallery.dev / OBAMA_PROBE))
    page.wait_for_selector("#results li.result")
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Case reference").fill("E2E-AUDIT-1")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#entries tbody tr")
    rows.first.wait_for()
    assert rows.count() == 1
    assert "browser audit check" in rows.first.inner_text()
    assert "Hash chain intact" in page.locator("#verify").inner_text()
