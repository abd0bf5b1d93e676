"""How an access request by URL compares addresses: one page exactly, or a profile or site
as a prefix that ends at a path segment."""

from __future__ import annotations

import pytest

from facesearch.errors import InvalidInput
from facesearch.governance.urls import published_at, url_key


@pytest.mark.parametrize(
    "stored",
    [
        "https://example.com/u/alice",
        "https://example.com/u/alice/",
        "HTTPS://EXAMPLE.COM/u/alice",
        "http://example.com/u/alice",
        "https://example.com:443/u/alice",
        "https://someone@example.com/u/alice#photos",
    ],
)
def test_one_page_written_in_different_ways_is_one_page(stored: str) -> None:
    assert published_at("https://example.com/u/alice").matches(stored)


@pytest.mark.parametrize(
    "stored",
    [
        "https://example.com/u/alicia",
        "https://example.com/u/alice/photos/1",
        "https://example.com/U/Alice",
        "https://example.com/u/alice?tab=photos",
        "https://www.example.com/u/alice",
        "https://example.com:8443/u/alice",
        "ftp://example.com/u/alice",
        "not a url",
        None,
    ],
)
def test_an_exact_request_matches_nothing_else(stored: str | None) -> None:
    assert not published_at("https://example.com/u/alice").matches(stored)


def test_a_prefix_ends_at_a_path_segment() -> None:
    profile = published_at("https://example.com/u/alice/", prefix=True)
    assert profile.matches("https://example.com/u/alice")
    assert profile.matches("https://example.com/u/alice/photos/1.jpg")
    assert profile.matches("http://EXAMPLE.com/u/alice?tab=photos")
    assert not profile.matches("https://example.com/u/alicia")
    assert not profile.matches("https://example.com/u/alice-fan/1")
    assert not published_at("https://example.com/u/al", prefix=True).matches(
        "https://example.com/u/alice"
    )
    site = published_at("https://Example.com", prefix=True)
    assert site.matches("https://example.com/") and site.matches("https://example.com/a/b")
    assert not site.matches("https://example.com.evil.org/a")
    assert not site.matches("https://sub.example.com/a")


def test_the_report_shows_the_normalised_address_and_the_kind_of_match() -> None:
    exact = published_at("  HTTPS://Example.com:443/u/alice/#top ")
    assert (exact.url, exact.kind) == ("https://example.com/u/alice", "url-exact")
    site = published_at("http://example.com", prefix=True)
    assert (site.url, site.kind) == ("http://example.com/", "url-prefix")
    assert url_key("https://[2001:DB8::1]:8080/x/") == "[2001:db8::1]:8080/x"


def test_like_wildcards_in_the_address_are_escaped() -> None:
    pattern = published_at("https://example.com/100%_real/a\\b").like_pattern()
    assert "100\\%\\_real" in pattern and "a\\\\b" in pattern


@pytest.mark.parametrize(
    ("url", "prefix", "message"),
    [
        ("", False, "give the URL"),
        ("ftp://example.com/u/alice", False, "is not an http(s) URL"),
        ("javascript:alert(1)", False, "is not an http(s) URL"),
        ("example.com/u/alice", False, "is not an http(s) URL"),
        ("https://", True, "is not an http(s) URL"),
        ("https://example.com:99999/", False, "is not an http(s) URL"),
        ("https://example.com/u/alice bob", False, "spaces or control characters"),
        ("https://example.com/\x00", False, "spaces or control characters"),
        ("https://example.com/?q=alice", True, "cannot hold a query"),
        ("https://example.com/" + "a" * 2048, False, "longer than 2048"),
    ],
)
def test_bad_addresses_are_refused_in_one_line(url: str, prefix: bool, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        published_at(url, prefix=prefix)
    assert "\n" not in str(e.value)
