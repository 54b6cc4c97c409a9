"""A PTZ camera's patrol from the console: its state, and an operator holding it (lock) or letting it go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException

from api.accounts import audit
from api.deps import ApiContext, ContextDep, Reviewer, SessionDep
from api.schemas import PatrolPublic, PtzLock, errors
from detector.ingest.patrol import Patrol

router = APIRouter(prefix="/api/v1", tags=["cameras"], responses=errors(401, 403, 404, 409))


def patrol_public(patrol: Patrol) -> PatrolPublic:
    view, left = patrol.current(), patrol.locked_for()
    return PatrolPublic(
        preset=view.preset, state=patrol.state.value, settled=view.settled,
        locked_until=datetime.now(UTC) + timedelta(seconds=left) if left is not None else None,
    )  # fmt: skip


def _patrol(ctx: ApiContext, camera_id: str) -> Patrol:
    if camera_id not in ctx.cameras:
        raise HTTPException(404, f"no camera {camera_id!r}")
    patrol = ctx.patrol(camera_id)
    if patrol is None:
        raise HTTPException(409, f"camera {camera_id!r} has no patrol running in this instance")
    return patrol


@router.post("/cameras/{camera_id}/ptz/lock")
def lock(camera_id: str, body: PtzLock, who: Reviewer, ctx: ContextDep, s: SessionDep) -> PatrolPublic:
    """Holds the patrol for `seconds` (an operator steers the camera); operators and admins, audited."""
    patrol = _patrol(ctx, camera_id)
    patrol.lock(body.seconds, reason=f"locked by {who.name}")
    audit(s, who, "camera.ptz.lock", f"camera:{camera_id}", None, {"seconds": body.seconds})
    s.commit()
    return patrol_public(patrol)


@router.post("/cameras/{camera_id}/ptz/release")
def release(camera_id: str, who: Reviewer, ctx: ContextDep, s: SessionDep) -> PatrolPublic:
    """Ends a lock: the patrol resumes at the stop it was cut off at (unless the camera is still moving)."""
    patrol = _patrol(ctx, camera_id)
    patrol.release()
    audit(s, who, "camera.ptz.release", f"camera:{camera_id}")
    s.commit()
    return patrol_public(patrol)
