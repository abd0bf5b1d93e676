from __future__ import annotations

import pytest

from facesearch.errors import InvalidInput
from facesearch.governance.policy import parse_jurisdictions, parse_period


@pytest.mark.parametrize(
    ("text", "days"), [("90d", 90), ("2w", 14), ("6m", 180), ("5y", 1825), ("30", 30), (7, 7)]
)
def test_periods(text: str | int, days: int) -> None:
    assert parse_period(text) == days


@pytest.mark.parametrize("text", ["0d", "forever", "-1", "", "1.5y"])
def test_bad_periods_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_period(text)


def test_jurisdiction_lists() -> None:
    assert parse_jurisdictions("gb, fr,GB") == ("FR", "GB")
    assert parse_jurisdictions(None) == ()
