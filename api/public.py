"""The public disclosure feed: closed cases, with faces and plates unreadable.

Nothing internal leaves through here: no camera ids or addresses of streams,
no database ids, no operator names. Pictures are the clean (and "after")
evidence, pixelated outside the problem's box and on the heads of the people in it;
public copies are cached under
the evidence root by the original's content hash.
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

import cv2
from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import FileResponse
from sqlalchemy import select

from api.deps import ApiContext, ContextDep, SessionDep
from api.schemas import errors
from detector.config import DEFAULT_TZ
from detector.incidents.privacy import public_copy
from detector.store.db import Case, CaseHistory, EvidenceFile, Incident

router = APIRouter(prefix="/public", tags=["public"], responses=errors(404))
PUBLIC_KINDS = ("clean", "after")


def _closed_at(s: SessionDep, case: Case) -> str | None:
    ts = s.scalar(
        select(CaseHistory.ts)
        .where(CaseHistory.case_id == case.id, CaseHistory.to_status == "closed")
        .order_by(CaseHistory.id.desc())
        .limit(1)
    )
    return ts.astimezone(ZoneInfo(DEFAULT_TZ)).date().isoformat() if ts else None


@router.get("/cases")
def public_cases(
    ctx: ContextDep,
    s: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Closed cases, newest first, as the district website shows them."""
    rows = s.execute(
        select(Case, Incident)
        .join(Incident, Incident.id == Case.incident_id)
        .where(Case.status == "closed")
        .order_by(Case.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    out = []
    for case, inc in rows:
        p = case.payload
        files = s.scalars(
            select(EvidenceFile)
            .where(EvidenceFile.incident_id == inc.id, EvidenceFile.kind.in_(PUBLIC_KINDS))
            .order_by(EvidenceFile.id)
        )
        out.append({
            "case_no": case.platform_case_id,
            "problem": p.get("sxmc"),
            "code": case.problem_code,
            "street": p.get("street"),
            "community": p.get("community"),
            "address": p.get("address"),
            "found_on": inc.opened_at.astimezone(ZoneInfo(DEFAULT_TZ)).date().isoformat(),
            "closed_on": _closed_at(s, case),
            "summary": f"{p.get('address') or p.get('street') or ''}发现{p.get('sxmc')}，已处置结案。",
            "pictures": [f"/public/evidence/{f.sha256}.jpg" for f in files],
        })  # fmt: skip
    return out


def _public_file(ctx: ApiContext, original: EvidenceFile, box: list[float]) -> FileResponse:
    cached = ctx.store.root / "public" / f"{original.sha256}.jpg"
    if not cached.exists():
        image = cv2.imread(str(ctx.store.resolve(original.path)))
        if image is None:
            raise HTTPException(404, "the picture is no longer available")
        cached.parent.mkdir(exist_ok=True)
        people = ctx.people(image) if ctx.people is not None else ()
        blurred = public_copy(image, [tuple(box)], [tuple(p) for p in people])
        tmp = cached.with_suffix(".tmp.jpg")
        cv2.imwrite(str(tmp), blurred, [cv2.IMWRITE_JPEG_QUALITY, 85])
        tmp.replace(cached)
    return FileResponse(cached, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/evidence/{sha256}.jpg", response_class=FileResponse)
def public_evidence(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")], ctx: ContextDep, s: SessionDep
) -> FileResponse:
    """A public copy of a picture of a closed case (nothing else is served)."""
    row = s.execute(
        select(EvidenceFile, Incident)
        .join(Incident, Incident.id == EvidenceFile.incident_id)
        .join(Case, Case.incident_id == Incident.id)
        .where(EvidenceFile.sha256 == sha256, EvidenceFile.kind.in_(PUBLIC_KINDS), Case.status == "closed")
        .limit(1)
    ).first()
    if row is None:
        raise HTTPException(404, "no public picture with that name")
    return _public_file(ctx, row[0], row[1].box)
