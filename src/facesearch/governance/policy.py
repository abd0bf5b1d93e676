"""Sources and their lawful basis: the fixed lists, validation and retention dates.

The lists are the GDPR's own: Art. 6(1) bases for processing personal data, and Art. 9(2)
conditions for processing special category data, which face templates are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Source:
    """A registered collection: who controls it, on what basis, and for how long."""

    name: str
    lawful_basis: str
    special_category_condition: str
    retention_days: int
    description: str = ""
    controller: str = ""
    contact: str = ""
    jurisdictions: tuple[str, ...] = ()
    legal_hold: bool = False
    created_at: str = ""
    updated_at: str = ""
    counts: dict[str, int] = field(default_factory=dict, compare=False)

    def policy(self) -> dict[str, Any]:
        """What the source declares (no counts, no timestamps): for audit and reports."""
        return {
            "name": self.name,
            "description": self.description,
            "controller": self.controller,
            "contact": self.contact,
            "lawful_basis": self.lawful_basis,
            "special_category_condition": self.special_category_condition,
            "jurisdictions": list(self.jurisdictions),
            "retention_days": self.retention_days,
            "legal_hold": self.legal_hold,
        }

    def expires_at(self, captured_at: str | None, ingested_at: str) -> str | None:
        """When an image of this source taken/ingested at those times must be removed."""
        return expiry(captured_at, ingested_at, self.retention_days)


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


def expiry(captured_at: str | None, ingested_at: str, retention_days: int) -> str:
    """Start of retention (capture time when known, else ingest time) plus the period."""
    start = parse_time(captured_at) if captured_at else parse_time(ingested_at)
    return (start + timedelta(days=retention_days)).astimezone(UTC).isoformat(timespec="seconds")


def period_text(days: int) -> str:
    """Days as the period a person would write: 1825 -> '5y', 90 -> '3m', 10 -> '10d'."""
    for unit in ("y", "m", "w"):
        if days % _DAYS[unit] == 0:
            return f"{days // _DAYS[unit]}{unit}"
    return f"{days}d"


def expired_at_ingest(
    captured_at: str | None, retention_days: int, at: datetime | None = None
) -> str | None:
    """Why an image captured then is already past its source's retention (None if not).

    Retention counts from the capture time, so a photo older than the period would be
    stored only to be removed by the next retention run: it is refused instead.
    """
    if not captured_at:
        return None
    when = at or datetime.now(UTC)
    expires = parse_time(expiry(captured_at, when.isoformat(), retention_days))
    if expires > when:
        return None
    return (
        f"expired at ingest: captured {parse_time(captured_at).date().isoformat()}, source "
        f"keeps {period_text(retention_days)} (expired {expires.date().isoformat()})"
    )
