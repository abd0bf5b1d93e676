"""Sources' lawful basis: the fixed lists, and validation of a source's policy.

The lists are the GDPR's own: Art. 6(1) bases for processing personal data, and Art. 9(2)
conditions for processing special category data, which face templates are.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from facesearch.domain import Source
from facesearch.errors import InvalidInput

ART6_BASES: dict[str, str] = {
    "consent": "Art. 6(1)(a) consent",
    "contract": "Art. 6(1)(b) contract",
    "legal_obligation": "Art. 6(1)(c) legal obligation",
    "vital_interests": "Art. 6(1)(d) vital interests",
    "public_task": "Art. 6(1)(e) public task",
    "legitimate_interests": "Art. 6(1)(f) legitimate interests",
}

ART9_CONDITIONS: dict[str, str] = {
    "explicit_consent": "Art. 9(2)(a) explicit consent",
    "employment_social_security": "Art. 9(2)(b) employment and social security law",
    "vital_interests": "Art. 9(2)(c) vital interests",
    "not_for_profit": "Art. 9(2)(d) not-for-profit body",
    "manifestly_public": "Art. 9(2)(e) made manifestly public by the data subject",
    "legal_claims": "Art. 9(2)(f) legal claims or judicial acts",
    "substantial_public_interest": "Art. 9(2)(g) substantial public interest",
    "health_social_care": "Art. 9(2)(h) health or social care",
    "public_health": "Art. 9(2)(i) public health",
    "archiving_research": "Art. 9(2)(j) archiving, research or statistics",
}

_PERIOD = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$", re.IGNORECASE)
_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


def parse_period(text: str | int) -> int:
    """'90d', '6m', '5y', '2w' or a number of days, to days (at least one)."""
    if isinstance(text, int):
        days = text
    else:
        match = _PERIOD.match(text)
        if match is None:
            if text.strip().isdigit():
                days = int(text)
            else:
                raise InvalidInput(
                    f"retention period {text!r} is not a period: use days or e.g. 90d, 6m, 5y"
                )
        else:
            days = int(match.group(1)) * _DAYS[match.group(2).lower()]
    if days <= 0:
        raise InvalidInput("a retention period must be at least one day: nothing is kept for ever")
    return days


def validate_source(source: Source) -> Source:
    """Refuse a source that lacks a lawful basis, a condition or a retention period."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", source.name):
        raise InvalidInput(
            "a source name is 1-100 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        )
    if source.lawful_basis not in ART6_BASES:
        raise InvalidInput(
            f"unknown lawful basis {source.lawful_basis!r}; one of: {', '.join(ART6_BASES)}"
        )
    if source.special_category_condition not in ART9_CONDITIONS:
        raise InvalidInput(
            f"unknown Art. 9 condition {source.special_category_condition!r}; one of: "
            f"{', '.join(ART9_CONDITIONS)}"
        )
    parse_period(source.retention_days)
    for code in source.jurisdictions:
        if not _JURISDICTION.match(code):
            raise InvalidInput(f"jurisdiction {code!r} is not an ISO 3166 code such as GB or FR")
    return source


def parse_jurisdictions(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(sorted({part.strip().upper() for part in text.split(",") if part.strip()}))


def parse_time(value: str) -> datetime:
    """An ISO 8601 date or date-time; naive values are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{value!r} is not an ISO 8601 date or date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def period_text(days: int) -> str:
    """Days as the period a person would write: 1825 -> '5y', 90 -> '3m', 10 -> '10d'."""
    for unit in ("y", "m", "w"):
        if days % _DAYS[unit] == 0:
            return f"{days // _DAYS[unit]}{unit}"
    return f"{days}d"
