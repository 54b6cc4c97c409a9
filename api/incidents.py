"""Incidents, their evidence files, and the operators' review queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from api.accounts import Principal, audit
from api.deps import ApiContext, ContextDep, Reader, Reviewer, SessionDep
from api.schemas import (
    MAX_ID,
    BulkVerdict,
    EventPublic,
    EvidencePublic,
    Id,
    IncidentDetail,
    IncidentPage,
    IncidentPublic,
    ReviewVerdict,
    errors,
)
from detector.filing.cases import ReviewError, zone_label
from detector.store.db import Case, CaseHistory, Incident, Outbox

router = APIRouter(prefix="/api/v1", responses=errors(400, 401, 403, 404, 409))

STATES = "^(open|present|cleared|recurred|active)$"
REVIEW_STATES = "^(pending|confirmed|rejected|relabelled|auto)$"


def incident_public(ctx: ApiContext, inc: Incident) -> dict:
    cam = ctx.cameras.get(inc.camera_id)
    loc = cam.location if cam else None
    problem = ctx.taxonomy[inc.problem_code] if inc.problem_code in ctx.taxonomy else None
    # the finding's label is "analyzer:label" (detector:stall, occupancy:stationary)
    analyzer, sep, label = ((inc.details or {}).get("label") or "").partition(":")
    if not sep:
        analyzer, label = "", analyzer
    return dict(
        id=inc.id, case_key=inc.case_key, camera_id=inc.camera_id, camera_name=cam.name if cam else inc.camera_id,
        address=loc.address if loc else "", street=loc.street if loc else "", community=loc.community if loc else "",
        zone=inc.zone, zone_name=zone_label(cam, inc.zone) if cam else inc.zone,
        problem_code=inc.problem_code, problem_name=problem.name_zh if problem else "",
        analyzer=analyzer or None, label=label or None,
        state=inc.state, opened_at=inc.opened_at, first_seen_at=inc.first_seen_at,
        last_seen_at=inc.last_seen_at, cleared_at=inc.cleared_at, recurrences=inc.recurrences,
        score=inc.score, box=inc.box, review_state=inc.review_state, review_note=inc.review_note,
        persistence_minutes=round((inc.last_seen_at - inc.first_seen_at).total_seconds() / 60, 1),
        evidence=[
            EvidencePublic(kind=e.kind, url=f"/api/v1/evidence/{e.path}", sha256=e.sha256, bytes=e.bytes)
            for e in inc.evidence
        ],
    )  # fmt: skip


def incident_details(ctx: ApiContext, s: Session, incs: list[Incident]) -> list[IncidentDetail]:
    case_ids: dict[int, list[int]] = {i.id: [] for i in incs}
    for case_id, incident_id in s.execute(
        select(Case.id, Case.incident_id).where(Case.incident_id.in_(case_ids)).order_by(Case.id)
    ):
        case_ids[incident_id].append(case_id)
    return [
        IncidentDetail(
            **incident_public(ctx, inc),
            events=[EventPublic(ts=e.ts, kind=e.kind, details=e.details) for e in inc.events],
            case_ids=case_ids[inc.id],
        )
        for inc in incs
    ]


@router.get("/incidents", tags=["incidents"])
def list_incidents(
    _: Reader,
    ctx: ContextDep,
    s: SessionDep,
    state: Annotated[str | None, Query(pattern=STATES)] = None,
    review: Annotated[str | None, Query(pattern=REVIEW_STATES)] = None,
    camera: str | None = None,
    problem: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
    street: str | None = None,
    community: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> IncidentPage:
    q = select(Incident)
    if state == "active":
        q = q.where(Incident.active_key.is_not(None))
    elif state:
        q = q.where(Incident.state == state)
    if review == "auto":
        q = q.where(Incident.review_state.is_(None))
    elif review:
        q = q.where(Incident.review_state == review)
    if camera:
        q = q.where(Incident.camera_id == camera)
    if problem:
        q = q.where(Incident.problem_code == problem)
    if street or community:
        ids = [
            c.id for c in ctx.cameras.values()
            if (not street or c.location.street == street) and (not community or c.location.community == community)
        ]  # fmt: skip
        q = q.where(Incident.camera_id.in_(ids))
    for bound, op in ((since, "ge"), (until, "lt")):
        if bound is not None:
            if bound.tzinfo is None:
                raise HTTPException(422, "since/until need a UTC offset, e.g. 2026-03-01T00:00:00+08:00")
            q = q.where(Incident.opened_at >= bound if op == "ge" else Incident.opened_at < bound)
    total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = s.scalars(
        q.options(selectinload(Incident.evidence)).order_by(Incident.id.desc()).limit(limit).offset(offset)
    ).all()
    return IncidentPage(total=total, items=[IncidentPublic(**incident_public(ctx, r)) for r in rows])


@router.get("/incidents/{incident_id}", tags=["incidents"])
def get_incident(incident_id: Id, _: Reader, ctx: ContextDep, s: SessionDep) -> IncidentDetail:
    inc = s.get(Incident, incident_id, options=[selectinload(Incident.evidence), selectinload(Incident.events)])
    if inc is None:
        raise HTTPException(404, f"no incident {incident_id}")
    return incident_details(ctx, s, [inc])[0]


@router.get("/evidence/{path:path}", tags=["evidence"], response_class=FileResponse)
def get_evidence(path: str, _: Reader, ctx: ContextDep) -> FileResponse:
    """An evidence file; clips answer HTTP range requests so browsers can seek."""
    try:
        file = ctx.store.resolve(path)
    except ValueError as e:
        raise HTTPException(400, str(e)) from e
    if not file.is_file():
        raise HTTPException(404, f"no evidence file {path!r}")
    media = {".jpg": "image/jpeg", ".mp4": "video/mp4"}.get(file.suffix, "application/octet-stream")
    return FileResponse(file, media_type=media, headers={"Cache-Control": "private, max-age=86400"})


# ---------------------------------------------------------------- review queue


@router.get("/review/next", tags=["review"])
def review_next(
    _: Reader,
    ctx: ContextDep,
    s: SessionDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[IncidentDetail]:
    """The next incidents waiting for an operator, oldest first (`after`: skip up to this id)."""
    rows = s.scalars(
        select(Incident)
        .where(Incident.review_state == "pending", Incident.id > after)
        .options(selectinload(Incident.evidence), selectinload(Incident.events))
        .order_by(Incident.id)
        .limit(limit)
    )
    return incident_details(ctx, s, list(rows))


def _verdict(
    ctx: ApiContext, s: Session, who: Principal, incident_id: int, verdict: str, code: str | None, note: str,
    box: tuple[float, float, float, float] | None = None,
) -> Case | None:  # fmt: skip
    inc = s.get(Incident, incident_id)
    before = {"review_state": inc.review_state, "problem_code": inc.problem_code, "box": inc.box} if inc else None
    try:
        case = ctx.cases.review(s, incident_id, verdict, code=code, note=note, box=box)
    except ReviewError as e:
        raise HTTPException(409 if "not waiting" in str(e) else 404 if "no incident" in str(e) else 422, str(e)) from e
    after = {"review_state": inc.review_state, "problem_code": inc.problem_code, "box": inc.box, "note": note or None}
    audit(s, who, f"review.{verdict}", f"incident:{incident_id}", before, after)
    return case


@router.post("/review/bulk", tags=["review"])
def review_bulk(body: BulkVerdict, who: Reviewer, ctx: ContextDep, s: SessionDep) -> list[dict]:
    """One verdict for several incidents; one that fails (already judged, unknown) is reported, not fatal.
    Declared before /review/{incident_id}, which would otherwise take "bulk" for an id and answer 422."""
    out = []
    for incident_id in body.incident_ids:
        try:
            case = _verdict(ctx, s, who, incident_id, body.verdict, None, body.note)
            out.append({"incident_id": incident_id, "case_id": case.id if case else None, "error": None})
        except HTTPException as e:
            out.append({"incident_id": incident_id, "case_id": None, "error": e.detail})
    s.commit()
    return out


@router.post("/review/{incident_id}", tags=["review"])
def review(incident_id: Id, body: ReviewVerdict, who: Reviewer, ctx: ContextDep, s: SessionDep) -> dict:
    """confirm (file it), reject (with a reason), or relabel to another problem type (file as that)."""
    case = _verdict(ctx, s, who, incident_id, body.verdict, body.problem_code, body.note, body.box)
    s.commit()
    return {"incident_id": incident_id, "case_id": case.id if case else None, "verdict": body.verdict}


@router.post("/review/{incident_id}/undo", tags=["review"])
def review_undo(incident_id: Id, who: Reviewer, s: SessionDep) -> dict:
    """Takes a verdict back while nothing has reached the platform yet."""
    inc = s.get(Incident, incident_id)
    if inc is None:
        raise HTTPException(404, f"no incident {incident_id}")
    if inc.review_state not in ("confirmed", "rejected", "relabelled"):
        raise HTTPException(409, f"incident {incident_id} has no verdict to undo (review_state={inc.review_state})")
    cases = s.scalars(select(Case).where(Case.incident_id == incident_id)).all()
    ids = [c.id for c in cases]
    total = s.scalar(select(func.count()).select_from(Outbox).where(Outbox.case_id.in_(ids)))
    # Only messages no filer has claimed may go; deleting them in one statement makes
    # "not yet sent" and "removed" the same fact, even with a filer running.
    removed = s.execute(delete(Outbox).where(Outbox.case_id.in_(ids), Outbox.state == "pending")).rowcount
    if removed != total or any(c.platform_case_id for c in cases):
        s.rollback()
        raise HTTPException(409, "the case is already with the platform; it can no longer be undone")
    before = {"review_state": inc.review_state, "problem_code": inc.problem_code}
    for case in cases:
        s.execute(delete(CaseHistory).where(CaseHistory.case_id == case.id))
        s.delete(case)
    if inc.review_state == "relabelled":
        details = inc.details or {}
        inc.problem_code = details.get("relabelled_from", inc.problem_code)
        inc.box = details.get("box_from", inc.box)
    inc.review_state = "pending"
    audit(s, who, "review.undo", f"incident:{incident_id}", before, {"review_state": "pending"})
    s.commit()
    return {"incident_id": incident_id, "review_state": "pending"}
