"""Cases, the review queue and the platform's status callbacks."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from starlette.concurrency import run_in_threadpool

from api.accounts import Principal, audit
from api.deps import Admin, ApiContext, CaseWorker, ContextDep, Reader, SessionDep
from api.schemas import (
    MAX_ID,
    CaseDetail,
    CaseHistoryPublic,
    CasePublic,
    Id,
    OutboxPublic,
    PlatformCallback,
    Reopen,
    StatusChange,
    errors,
)
from detector.filing.case_flow import CASE_STATUSES, TERMINAL, CaseFlow, TransitionRefused
from detector.filing.filer import retry_dead
from detector.store.db import Case, Outbox

router = APIRouter(prefix="/api/v1", responses=errors(401, 403, 404))

CALLBACK_MAX_AGE_S = 300


STATUS_PATTERN = f"^({'|'.join(CASE_STATUSES)})$"


def _public(case: Case, flow: CaseFlow, who: Principal) -> CasePublic:
    """The case as callers see it; `allowed` comes from the loaded flow so the console never repeats the table."""
    moves = flow.allowed("operator", case.status) if who.can("cases") else frozenset()
    fields = {k: getattr(case, k) for k in CasePublic.model_fields if k != "allowed"}
    return CasePublic(**fields, allowed=[st for st in CASE_STATUSES if st in moves])


@router.get("/cases", tags=["cases"])
def list_cases(
    who: Reader,
    ctx: ContextDep,
    s: SessionDep,
    response: Response,
    status: Annotated[str | None, Query(pattern=STATUS_PATTERN)] = None,
    problem: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
    street: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    overdue: Annotated[bool | None, Query(description="true: past the deadline and not closed or voided")] = None,
    since: Annotated[datetime | None, Query(description="created at or after, with a UTC offset")] = None,
    until: Annotated[datetime | None, Query(description="created before, with a UTC offset")] = None,
    number: Annotated[str | None, Query(min_length=1, max_length=64, description="part of the case number")] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[CasePublic]:
    """Cases, newest first; the number of matches (all pages) is in the X-Total-Count header."""
    q = select(Case)
    if status:
        q = q.where(Case.status == status)
    if problem:
        q = q.where(Case.problem_code == problem)
    if street:
        q = q.where(Case.payload["street"].as_string() == street)  # where the case was filed
    if overdue is not None:
        late = (Case.deadline < datetime.now(UTC)) & Case.status.not_in(TERMINAL)
        q = q.where(late if overdue else ~late)
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and bound.tzinfo is None:
            raise HTTPException(422, f"{name} needs a UTC offset, e.g. 2026-03-01T00:00:00+08:00")
    if since is not None:
        q = q.where(Case.created_at >= since)
    if until is not None:
        q = q.where(Case.created_at < until)
    if number:
        q = q.where(Case.platform_case_id.contains(number.strip(), autoescape=True))
    if incident_id is not None:
        q = q.where(Case.incident_id == incident_id)
    response.headers["X-Total-Count"] = str(s.scalar(select(func.count()).select_from(q.subquery())) or 0)
    rows = s.scalars(q.order_by(Case.id.desc()).limit(limit).offset(offset))
    return [_public(c, ctx.cases.flow, who) for c in rows]


@router.get("/cases/{case_id}", tags=["cases"])
def get_case(case_id: Id, who: Reader, s: SessionDep, ctx: ContextDep) -> CaseDetail:
    case = s.get(Case, case_id, options=[selectinload(Case.history)])
    if case is None:
        raise HTTPException(404, f"no case {case_id}")
    outbox = s.scalars(select(Outbox).where(Outbox.case_id == case_id).order_by(Outbox.id)).all()
    return CaseDetail(
        **_public(case, ctx.cases.flow, who).model_dump(),
        history=[CaseHistoryPublic.model_validate(h, from_attributes=True) for h in case.history],
        outbox=[OutboxPublic.model_validate(m, from_attributes=True) for m in outbox],
    )


@router.post("/cases/{case_id}/retry", tags=["cases"])
def retry_case(case_id: Id, who: CaseWorker, s: SessionDep) -> dict[str, int]:
    """Puts the case's dead-lettered messages back in the filing queue."""
    _case(s, case_id)
    n = retry_dead(s, case_id=case_id)
    audit(s, who, "case.retry", f"case:{case_id}", None, {"requeued": n})
    s.commit()
    return {"requeued": n}


@router.post("/cases/{case_id}/status", tags=["cases"], responses=errors(409))
def set_case_status(case_id: Id, change: StatusChange, who: CaseWorker, s: SessionDep, ctx: ContextDep) -> CasePublic:
    """Moves a case by hand (stand-alone centres using the local register), along the allowed flow
    (docs/platform-api.md#the-case-lifecycle); any other move is answered 409 and nothing is written."""
    case = _case(s, case_id)
    before = {"status": case.status}
    try:
        moved = ctx.cases.apply_status(s, case, change.status, source="operator", note=change.note)
    except TransitionRefused as e:
        raise HTTPException(409, str(e)) from e
    if moved:
        audit(s, who, "case.status", f"case:{case_id}", before, {"status": case.status, "note": change.note})
    s.commit()
    return _public(case, ctx.cases.flow, who)


@router.post("/cases/{case_id}/reopen", tags=["cases"], responses=errors(409))
def reopen_case(case_id: Id, body: Reopen, who: Admin, s: SessionDep, ctx: ContextDep) -> CasePublic:
    """Takes a closed or voided case back to the status it had before (admins, with a reason; audited)."""
    case = _case(s, case_id)
    before = {"status": case.status}
    try:
        ctx.cases.reopen(s, case, body.reason)
    except TransitionRefused as e:
        raise HTTPException(409, str(e)) from e
    audit(s, who, "case.reopen", f"case:{case_id}", before, {"status": case.status, "reason": body.reason})
    s.commit()
    return _public(case, ctx.cases.flow, who)


def _case(s: Session, case_id: int) -> Case:
    case = s.get(Case, case_id)
    if case is None:
        raise HTTPException(404, f"no case {case_id}")
    return case


@router.post("/platform/callback", tags=["platform"], status_code=204)
async def platform_callback(request: Request, ctx: ContextDep) -> Response:
    """Status change pushed by the platform, signed with HMAC-SHA256 (docs/platform-api.md)."""
    body = await request.body()
    if not ctx.callback_secret:
        raise HTTPException(404, "status callbacks are not configured (platform.callback_secret_env)")
    ts = request.headers.get("X-Platform-Timestamp", "")
    sig = request.headers.get("X-Platform-Signature", "")
    expected = hmac.new(ctx.callback_secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    if not ts.isdigit() or abs(time.time() - int(ts)) > CALLBACK_MAX_AGE_S:
        raise HTTPException(401, "missing or stale X-Platform-Timestamp")
    if not hmac.compare_digest(expected, sig):
        raise HTTPException(401, "bad X-Platform-Signature")
    try:
        cb = PlatformCallback.model_validate_json(body)
    except ValidationError as e:
        raise HTTPException(422, f"malformed callback: {e.errors(include_url=False)}") from e
    await run_in_threadpool(_apply_callback, ctx, cb)  # the database is blocking I/O
    return Response(status_code=204)


def _apply_callback(ctx: ApiContext, cb: PlatformCallback) -> None:
    with ctx.sessions() as s:
        case = s.scalar(select(Case).where(Case.platform_case_id == cb.case_id))
        if case is None:
            raise HTTPException(404, f"no case with platform id {cb.case_id!r}")
        status = ctx.status_map.get(cb.status, cb.status)
        at = cb.ts if cb.ts is not None and cb.ts.tzinfo is not None else None  # no zone: no order
        try:
            ctx.cases.apply_status(s, case, status, source="callback", note=cb.note, at=at)
        except TransitionRefused as e:
            raise HTTPException(409, str(e)) from e
        except ValueError as e:
            raise HTTPException(422, str(e)) from e
        s.commit()
