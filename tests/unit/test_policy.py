from __future__ import annotations

import pytest

from facesearch.errors import InvalidInput
from facesearch.governance.policy import Source, expiry, parse_jurisdictions, parse_period


@pytest.mark.parametrize(
    ("text", "days"), [("90d", 90), ("2w", 14), ("6m", 180), ("5y", 1825), ("30", 30), (7, 7)]
)
def test_periods(text: str | int, days: int) -> None:
    assert parse_period(text) == days


@pytest.mark.parametrize("text", ["0d", "forever", "-1", "", "1.5y"])
def test_bad_periods_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_period(text)


def test_expiry_starts_at_capture_time_when_known() -> None:
    assert expiry("2020-02-28", "2026-01-01T00:00:00+00:00", 2) == "2020-03-01T00:00:00+00:00"
    assert expiry(None, "2026-01-01T10:00:00+00:00", 1) == "2026-01-02T10:00:00+00:00"
    # Offsets are honoured: 23:00 at UTC-2 is 01:00 UTC the next day.
    assert expiry("2020-01-01T23:00:00-02:00", "x", 1) == "2020-01-03T01:00:00+00:00"
    with pytest.raises(InvalidInput, match="ISO 8601"):
        expiry("yesterday", "2026-01-01", 1)


def test_jurisdiction_lists() -> None:
    assert parse_jurisdictions("gb, fr,GB") == ("FR", "GB")
    assert parse_jurisdictions(None) == ()


def test_source_expiry_uses_its_retention() -> None:
    s = Source("s", "consent", "explicit_consent", 10)
    assert s.expires_at("2020-01-01", "2026-01-01") == "2020-01-11T00:00:00+00:00"
