"""The retention rules, pure logic: expiry dates, a change of period, legal hold, refusal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facesearch.domain import Provenance, Source
from facesearch.errors import InvalidInput
from facesearch.governance.retention import (
    expired_at_ingest,
    expiry_date,
    expiry_rule,
    stamp,
    subject_to_retention,
)


def _source(name: str, days: int = 30, hold: bool = False) -> Source:
    return Source(name, "legitimate_interests", "legal_claims", days, legal_hold=hold)


def test_expiry_starts_at_capture_time_when_known() -> None:
    assert expiry_date("2020-02-28", "2026-01-01T00:00:00+00:00", 2) == (
        "2020-03-01T00:00:00+00:00"
    )
    assert expiry_date(None, "2026-01-01T10:00:00+00:00", 1) == "2026-01-02T10:00:00+00:00"
    # Offsets are honoured: 23:00 at UTC-2 is 01:00 UTC the next day.
    assert expiry_date("2020-01-01T23:00:00-02:00", "x", 1) == "2020-01-03T01:00:00+00:00"
    with pytest.raises(InvalidInput, match="ISO 8601"):
        expiry_date("yesterday", "2026-01-01", 1)


def test_a_stored_copy_carries_its_ingest_and_expiry_dates() -> None:
    at = "2026-03-01T12:00:00+00:00"
    taken = stamp(Provenance("archive", "/a.jpg", captured_at="2026-01-01"), 365, at)
    assert (taken.ingested_at, taken.expires_at) == (at, "2027-01-01T00:00:00+00:00")
    undated = stamp(Provenance("archive", "/b.jpg"), 10, at)
    assert (undated.ingested_at, undated.expires_at) == (at, "2026-03-11T12:00:00+00:00")
    assert undated.source == "archive" and undated.path == "/b.jpg"
    now = stamp(Provenance("archive", "/c.jpg"), 1)  # ingested now: expires in a day
    assert now.ingested_at is not None and now.expires_at is not None
    ingested = datetime.fromisoformat(now.ingested_at)
    assert (datetime.fromisoformat(now.expires_at) - ingested).days == 1


def test_a_change_of_retention_moves_every_date_from_the_same_start() -> None:
    copies = [("2001-05-01", "2026-01-01T00:00:00+00:00"), (None, "2026-01-01T06:30:00+00:00")]
    one_year, two_years = expiry_rule(365), expiry_rule(730)
    assert [one_year(c, i) for c, i in copies] == [
        "2002-05-01T00:00:00+00:00",
        "2027-01-01T06:30:00+00:00",
    ]
    assert [two_years(c, i) for c, i in copies] == [
        "2003-05-01T00:00:00+00:00",
        "2028-01-01T06:30:00+00:00",
    ]


def test_a_legal_hold_takes_a_source_out_of_retention() -> None:
    sources = [_source("press"), _source("case-1234", hold=True), _source("archive", 3650)]
    assert subject_to_retention(sources) == ["archive", "press"]
    assert subject_to_retention([_source("case-1234", hold=True)]) == []


def test_a_photo_past_its_retention_is_refused_when_offered() -> None:
    at = datetime(2026, 6, 1, tzinfo=UTC)
    reason = expired_at_ingest("2020-01-01", 365, at)
    assert reason == (
        "expired at ingest: captured 2020-01-01, source keeps 1y (expired 2020-12-31)"
    )
    assert expired_at_ingest("2026-05-01", 365, at) is None
    assert expired_at_ingest(None, 1, at) is None  # no capture date: counted from ingest
