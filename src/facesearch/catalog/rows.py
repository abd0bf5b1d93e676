"""How a source is kept in a row: the same columns on every SQL catalog (SQLite and
PostgreSQL), so that the two cannot drift apart in what they store or read back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from facesearch.domain import Source

# The columns ``source_from`` reads, in its order.
SOURCE_COLUMNS = (
    "name, lawful_basis, special_category_condition, retention_days, description, controller, "
    "contact, jurisdictions, legal_hold, created_at, updated_at, group_people"
)


def source_row(s: Source) -> tuple[Any, ...]:
    """The values written for a source: name, then what an update may change (flags as
    booleans: SQLite stores them as 1 and 0, PostgreSQL as BOOLEAN)."""
    return (
        s.name,
        s.description,
        s.controller,
        s.contact,
        s.lawful_basis,
        s.special_category_condition,
        json.dumps(list(s.jurisdictions)),
        s.retention_days,
        bool(s.legal_hold),
        bool(s.group_people),
    )


def source_from(r: Sequence[Any], counts: dict[str, int]) -> Source:
    """The source of a row selected as ``SOURCE_COLUMNS``."""
    return Source(
        name=r[0],
        lawful_basis=r[1],
        special_category_condition=r[2],
        retention_days=r[3],
        description=r[4],
        controller=r[5],
        contact=r[6],
        jurisdictions=tuple(json.loads(r[7])),
        legal_hold=bool(r[8]),
        created_at=r[9],
        updated_at=r[10],
        group_people=bool(r[11]),
        counts=counts,
    )
