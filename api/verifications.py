"""核实 on request: the centre asks whether a reported problem is still there; the covering cameras answer."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.accounts import audit
from api.deps import ApiContext, CaseWorker, ContextDep, Reader, SessionDep
from api.schemas import (
    EvidencePublic,
    Id,
    VerificationCameraPublic,
    VerificationCreate,
    VerificationPublic,
    errors,
)
from detector.store.db import Outbox, Verification, VerificationLook
from detector.verification import requests
from detector.verification.coverage import NotCovered, Where, covering

router = APIRouter(prefix="/api/v1", tags=["verifications"], responses=errors(401, 403))


@router.post("/verifications", status_code=201, responses=errors(422))
def request_verification(
    body: VerificationCreate, who: CaseWorker, ctx: ContextDep, s: SessionDep, response: Response
) -> VerificationPublic:
    """Asks the cameras covering the place to look for the problem at their next analysed frame.

    422 when the problem is unknown or no running camera that watches it covers the place (the
    platform then sends a 巡查员 at once instead of waiting for an answer that cannot come).
    """
    code = body.problem_code
    if code not in ctx.taxonomy:
        raise HTTPException(422, f"problem_code: unknown problem {code!r} (the list: GET /api/v1/taxonomy)")
    where = Where(**body.location.model_dump())
    try:
        picks = covering(list(ctx.cameras.values()), where, code)
    except NotCovered as e:
        raise HTTPException(422, str(e)) from e
    v = requests.create(
        s, picks=picks, where=where, code=code, reference=body.reference, actor=who.name,
        timeout_s=ctx.verification_timeout_s,
    )  # fmt: skip
    audit(s, who, "verification.request", f"verification:{v.id}", None,
          {"problem_code": code, "location": v.location, "reference": v.reference,
           "cameras": [p.camera.id for p in picks]})  # fmt: skip
    s.commit()
    response.headers["Location"] = f"/api/v1/verifications/{v.id}"
    return _public(ctx, s, v.id)


@router.get("/verifications/{verification_id}", responses=errors(404))
def get_verification(verification_id: Id, _: Reader, ctx: ContextDep, s: SessionDep) -> VerificationPublic:
    """The request, each camera's answer with its evidence links, and whether the platform has been told."""
    return _public(ctx, s, verification_id)


def _public(ctx: ApiContext, s: Session, verification_id: int) -> VerificationPublic:
    v = s.get(
        Verification, verification_id,
        options=[selectinload(Verification.looks).selectinload(VerificationLook.evidence)], populate_existing=True,
    )  # fmt: skip
    if v is None:
        raise HTTPException(404, f"no verification {verification_id}")
    delivery = s.scalar(select(Outbox.state).where(Outbox.verification_id == v.id).order_by(Outbox.id.desc()))
    problem = ctx.taxonomy[v.problem_code] if v.problem_code in ctx.taxonomy else None
    cameras = [
        VerificationCameraPublic(
            camera_id=look.camera_id,
            preset=look.preset,
            result=look.state,  # type: ignore[arg-type]
            reason=look.reason,
            frame_at=look.frame_at,
            answered_at=look.answered_at,
            findings=look.details.get("findings", []),
            evidence=[
                EvidencePublic(kind=f.kind, url=f"/api/v1/evidence/{f.path}", sha256=f.sha256, bytes=f.bytes)
                for f in look.evidence
            ],
        )
        for look in v.looks
    ]
    return VerificationPublic(
        id=v.id, problem_code=v.problem_code, problem_name=problem.name_zh if problem else v.problem_code,
        location=v.location, reference=v.reference, requested_by=v.requested_by, status=v.status,  # type: ignore[arg-type]
        result=v.result, created_at=v.created_at, answered_at=v.answered_at, delivery=delivery,  # type: ignore[arg-type]
        cameras=cameras,
    )  # fmt: skip
