"""The audit log and the transparency report, for auditors (and admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from facesearch.accounts.roles import Action, Principal
from facesearch.api import cursors
from facesearch.api import schemas_governance as gov
from facesearch.api.auth import allow, requester
from facesearch.api.deps import AUTH_ERRORS, errors, gateway
from facesearch.governance.policy import parse_time

router = APIRouter(prefix="/v1", tags=["audit"])


def _time(value: str | None) -> str | None:
    return parse_time(value).isoformat() if value else None


@router.get(
    "/audit",
    response_model=gov.AuditPage,
    summary="Read the audit log",
    responses=errors(400, *AUTH_ERRORS),
)
async def audit_log(
    request: Request,
    case_ref: str | None = Query(None, max_length=200, description="Only this case."),
    action: str | None = Query(None, max_length=100, description="e.g. search, erasure."),
    since: str | None = Query(None, max_length=40, description="ISO 8601, inclusive."),
    until: str | None = Query(None, max_length=40, description="ISO 8601, exclusive."),
    cursor: str | None = Query(None, max_length=200, description="next_cursor of a page."),
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(allow(Action.AUDIT)),
) -> gov.AuditPage:
    """Entries oldest first: who, when, what, purpose and case, counts and hashes
    (never images or templates). Each read is itself recorded as `audit.read`."""
    gw = gateway(request)
    after = cursors.decode(cursor, "after", int) or 0
    filters: dict[str, Any] = {
        "case_ref": case_ref,
        "action": action,
        "since": _time(since),
        "until": _time(until),
    }

    def page() -> list[Any]:
        return gw.engine.read_audit(requester(who), **filters, after=after, limit=limit + 1)

    rows = await gw.locked(page)
    shown = rows[:limit]
    return gov.AuditPage(
        items=list(shown),
        next_cursor=cursors.encode({"after": shown[-1].seq}) if len(rows) > limit else None,
    )


@router.get(
    "/audit/verify",
    response_model=gov.VerifyOut,
    summary="Check the audit log's hash chain",
    responses=errors(*AUTH_ERRORS),
)
async def verify(request: Request, who: Principal = Depends(allow(Action.AUDIT))) -> gov.VerifyOut:
    """Whether every entry is intact and in order, and the latest entry (record its hash
    elsewhere: a rewrite of the whole chain then no longer matches)."""
    gw = gateway(request)

    def check() -> gov.VerifyOut:
        result = gw.engine.verify_audit()
        head = gw.engine.audit.head()
        return gov.VerifyOut(
            ok=result.ok,
            entries=result.entries,
            problem=result.problem,
            seq=result.seq,
            keyed_from=result.keyed_from,
            warning=result.warning,
            head_seq=head[0] if head else None,
            head_hash=head[1] if head else None,
        )

    return await gw.locked(check)


@router.get(
    "/report",
    response_model=gov.ReportOut,
    summary="Transparency report",
    responses=errors(400, *AUTH_ERRORS),
)
async def report(
    request: Request,
    since: str | None = Query(None, max_length=40, description="ISO 8601 date."),
    until: str | None = Query(None, max_length=40, description="ISO 8601 date."),
    who: Principal = Depends(allow(Action.AUDIT)),
) -> gov.ReportOut:
    """Per source its basis, retention and counts; searches per purpose; erasures,
    retention runs, access requests and suppressions in the period."""
    gw = gateway(request)
    data = await gw.locked(gw.engine.transparency_report, since, until)
    return gov.ReportOut(**data)
