"""核实 requests in the database: created by the API, answered look by look, told to the platform once.

Every change is a compare-and-set on a pending row, so any number of processes (workers,
instances on one database) may answer looks and sweep deadlines: each look is answered once,
each request finished once, and its answer queued for the platform in that same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from detector.incidents.evidence import StoredFile
from detector.store.db import Outbox, Verification, VerificationFile, VerificationLook
from detector.verification.coverage import Pick, Where

RESULTS = ("present", "absent", "cannot_see")


def deadline_s(pick: Pick, timeout_s: float) -> float:
    """How long a camera may take: the timeout, or two cadences (plus a patrol's round) when that is longer."""
    cam = pick.camera
    return max(timeout_s, 2 * cam.cadence_s + sum(s.dwell_s for s in cam.patrol))


def create(
    s: Session, *, picks: list[Pick], where: Where, code: str, reference: str | None, actor: str, timeout_s: float
) -> Verification:
    """A pending request with one pending look per chosen camera (committed by the caller)."""
    now = datetime.now(UTC)
    location = {k: v for k, v in vars_of(where).items() if v is not None}
    v = Verification(
        problem_code=code, location=location, reference=reference, requested_by=actor, status="pending",
        created_at=now,
    )  # fmt: skip
    v.looks = [
        VerificationLook(
            camera_id=p.camera.id,
            preset=p.preset,
            state="pending",
            details={},
            deadline=now + timedelta(seconds=deadline_s(p, timeout_s)),
        )
        for p in picks
    ]
    s.add(v)
    s.flush()
    return v


def vars_of(where: Where) -> dict[str, Any]:
    return {"grid_code": where.grid_code, "lon": where.lon, "lat": where.lat, "camera_id": where.camera_id}


def answer(
    s: Session, look_id: int, state: str, *, reason: str | None = None, frame_at: datetime | None = None,
    details: dict[str, Any] | None = None, files: Sequence[StoredFile] = (),
) -> bool:  # fmt: skip
    """Answers a pending look (False: answered already, by someone else); finishes its request when it was the
    last. The files must be on disk already (never a row without its file)."""
    assert state in RESULTS, state
    now = datetime.now(UTC)
    done = s.execute(
        update(VerificationLook)
        .where(VerificationLook.id == look_id, VerificationLook.state == "pending")
        .values(state=state, reason=reason, frame_at=frame_at, details=details or {}, answered_at=now)
    ).rowcount
    if done != 1:
        return False
    s.add_all(
        VerificationFile(look_id=look_id, kind=f.kind, path=f.path, sha256=f.sha256, bytes=f.bytes, created_at=now)
        for f in files
    )
    s.flush()
    vid = s.scalar(select(VerificationLook.verification_id).where(VerificationLook.id == look_id))
    assert vid is not None
    finish(s, vid)
    return True


def finish(s: Session, verification_id: int) -> bool:
    """Once no look is pending: the request's result (present beats absent beats cannot_see) and its outbox
    message. False while a look is pending, or when it was finished already."""
    states = set(s.scalars(select(VerificationLook.state).where(VerificationLook.verification_id == verification_id)))
    if "pending" in states:
        return False
    result = "present" if "present" in states else "absent" if "absent" in states else "cannot_see"
    now = datetime.now(UTC)
    won = s.execute(
        update(Verification)
        .where(Verification.id == verification_id, Verification.status == "pending")
        .values(status="answered", result=result, answered_at=now)
    ).rowcount
    if won != 1:
        return False
    v = s.get(Verification, verification_id, options=[selectinload(Verification.looks)])
    assert v is not None
    s.refresh(v)
    body = answer_body(v)
    ids = [f.id for look in v.looks for f in look.evidence]
    s.add(
        Outbox(
            case_id=None, verification_id=v.id, kind="verification", idempotency_key=uuid.uuid4().hex,
            payload={**body, "evidence": ids}, state="pending", attempts=0, next_attempt_at=now, created_at=now,
            updated_at=now,
        )
    )  # fmt: skip
    return True


def answer_body(v: Verification) -> dict[str, Any]:
    """What the platform is told (docs/platform-api.md, POST /verifications): the result and each camera's part."""
    return {
        "verification_id": v.id,
        "reference": v.reference,
        "problem_code": v.problem_code,
        "location": v.location,
        "result": v.result,
        "requested_at": v.created_at.isoformat(),
        "answered_at": v.answered_at.isoformat() if v.answered_at else None,
        "cameras": [
            {
                "camera_id": look.camera_id,
                "preset": look.preset,
                "result": look.state,
                "reason": look.reason,
                "frame_at": look.frame_at.isoformat() if look.frame_at else None,
                "findings": look.details.get("findings", []),
            }
            for look in v.looks
        ],
    }


def expire(s: Session, now: datetime | None = None) -> int:
    """Pending looks past their deadline answer cannot_see; returns how many."""
    now = now or datetime.now(UTC)
    late = s.scalars(
        select(VerificationLook).where(VerificationLook.state == "pending", VerificationLook.deadline < now)
    ).all()
    n = 0
    for look in late:
        waited = (look.deadline - look.verification.created_at).total_seconds()
        where = f" at preset {look.preset}" if look.preset else ""
        n += answer(s, look.id, "cannot_see", reason=f"no analysed frame{where} within {waited:.0f} s")
    return n
