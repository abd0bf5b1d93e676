"""The access-request page in Debian's Chromium, asked by where the photos were published
(no photo): a profile prefix, and an address that is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.app_gallery import Gallery
from tests.e2e.test_browser_governance import sign_in_with_key

pytestmark = pytest.mark.browser


def test_an_access_request_by_where_the_photos_were_published(
    page: Any, server: str, e2e_gallery: Gallery
) -> None:
    sign_in_with_key(page, server, e2e_gallery.keys["admin"])
    page.get_by_role("link", name="Access requests").click()
    page.get_by_label("Page, profile or site URL").fill("https://archive.example.org/stories")
    page.get_by_label("Match").select_option("prefix")
    page.get_by_role("button", name="Find the images published there").click()
    summary = page.locator("#report-summary")
    summary.wait_for()
    assert summary.inner_text().startswith("6 image(s) published under")
    assert "archive.example.org/photos/obama.jpg" in page.locator("#report table").inner_text()
    assert page.get_by_label("Match").input_value() == "prefix"
    # The browser's own check lets only URLs through; the server's refuses other schemes.
    page.get_by_label("Page, profile or site URL").fill("ftp://archive.example.org/stories")
    page.get_by_label("Match").select_option("exact")
    page.get_by_role("button", name="Find the images published there").click()
    alert = page.locator("#by-url [role=alert]")
    alert.wait_for()
    assert "is not an http(s) URL" in alert.inner_text()
