"""Retention rules, computed here once and handed to the stores, which keep what they are given.

- A copy of an image expires its source's retention period after its capture time when
  known, else after its ingest time (``expiry_date``); the date is set when the copy is
  stored (``stamp``) and moves when the source's period changes (``expiry_rule``).
- A photo already past its retention when offered is refused (``expired_at_ingest``).
- A source on legal hold is exempt from retention: only the other sources' copies are
  looked for when retention runs (``subject_to_retention``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from facesearch.domain import Provenance, Source
from facesearch.governance.policy import parse_time, period_text


def expiry_date(captured_at: str | None, ingested_at: str, retention_days: int) -> str:
    """Start of retention (capture time when known, else ingest time) plus the period."""
    start = parse_time(captured_at) if captured_at else parse_time(ingested_at)
    return (start + timedelta(days=retention_days)).astimezone(UTC).isoformat(timespec="seconds")


def expiry_rule(retention_days: int) -> Callable[[str | None, str], str]:
    """``(captured_at, ingested_at) -> expires_at`` for a source keeping that many days."""

    def rule(captured_at: str | None, ingested_at: str) -> str:
        return expiry_date(captured_at, ingested_at, retention_days)

    return rule


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def stamp(provenance: Provenance, retention_days: int, at: str | None = None) -> Provenance:
    """The copy as it is stored: ingested ``at`` (now by default), with its expiry date."""
    ingested = at or now()
    return replace(
        provenance,
        ingested_at=ingested,
        expires_at=expiry_date(provenance.captured_at, ingested, retention_days),
    )


def subject_to_retention(sources: Iterable[Source]) -> list[str]:
    """Names of the sources whose expired copies are removed: all but those on legal hold."""
    return sorted(s.name for s in sources if not s.legal_hold)


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
    expires = parse_time(expiry_date(captured_at, when.isoformat(), retention_days))
    if expires > when:
        return None
    return (
        f"expired at ingest: captured {parse_time(captured_at).date().isoformat()}, source "
        f"keeps {period_text(retention_days)} (expired {expires.date().isoformat()})"
    )
