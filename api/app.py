"""The HTTP API: camera health, incidents and their evidence files."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from api import cases
from api.deps import ApiContext, SessionDep
from api.schemas import (
    CameraPublic,
    EventPublic,
    EvidencePublic,
    IncidentDetail,
    IncidentPage,
    IncidentPublic,
)
from detector.config import Camera
from detector.db import Incident


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(title="GridSight", version="0.1.0", description="Video channel of the grid-management platform.")
    app.state.ctx = ctx
    app.include_router(cases.router)

    def camera_public(cam: Camera) -> CameraPublic:
        h = ctx.health(cam.id)
        return CameraPublic(
            id=cam.id, name=cam.name,
            state=h.state.value if h else "unknown", last_error=h.last_error if h else None,
            last_frame_at=h.last_frame_at if h else None,
            frames_received_per_min=h.frames_received_per_min if h else 0,
            frames_analysed_per_min=h.frames_analysed_per_min if h else 0,
            frames_dropped=h.frames_dropped if h else 0, reconnects=h.reconnects if h else 0,
            cadence_s=cam.cadence_s, problems=cam.problems, address=cam.location.address,
            street=cam.location.street, community=cam.location.community,
        )  # fmt: skip

    def incident_public(inc: Incident) -> dict:
        return dict(
            id=inc.id, case_key=inc.case_key, camera_id=inc.camera_id, zone=inc.zone,
            problem_code=inc.problem_code,
            problem_name=ctx.taxonomy[inc.problem_code].name_zh if inc.problem_code in ctx.taxonomy else "",
            state=inc.state, opened_at=inc.opened_at, first_seen_at=inc.first_seen_at,
            last_seen_at=inc.last_seen_at, cleared_at=inc.cleared_at, recurrences=inc.recurrences,
            score=inc.score, box=inc.box,
            evidence=[
                EvidencePublic(kind=e.kind, url=f"/api/v1/evidence/{e.path}", sha256=e.sha256, bytes=e.bytes)
                for e in inc.evidence
            ],
        )  # fmt: skip

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/cameras", tags=["cameras"])
    def list_cameras() -> list[CameraPublic]:
        return [camera_public(c) for c in ctx.cameras.values()]

    @app.get("/api/v1/cameras/{camera_id}", tags=["cameras"])
    def get_camera(camera_id: str) -> CameraPublic:
        cam = ctx.cameras.get(camera_id)
        if cam is None:
            raise HTTPException(404, f"no camera {camera_id!r}")
        return camera_public(cam)

    @app.get("/api/v1/incidents", tags=["incidents"])
    def list_incidents(
        s: SessionDep,
        state: Annotated[str | None, Query(pattern="^(open|present|cleared|recurred|active)$")] = None,
        camera: str | None = None,
        problem: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> IncidentPage:
        q = select(Incident)
        if state == "active":
            q = q.where(Incident.active_key.is_not(None))
        elif state:
            q = q.where(Incident.state == state)
        if camera:
            q = q.where(Incident.camera_id == camera)
        if problem:
            q = q.where(Incident.problem_code == problem)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(
            q.options(selectinload(Incident.evidence)).order_by(Incident.id.desc()).limit(limit).offset(offset)
        ).all()
        return IncidentPage(total=total, items=[IncidentPublic(**incident_public(r)) for r in rows])

    @app.get("/api/v1/incidents/{incident_id}", tags=["incidents"])
    def get_incident(incident_id: int, s: SessionDep) -> IncidentDetail:
        inc = s.get(Incident, incident_id, options=[selectinload(Incident.evidence), selectinload(Incident.events)])
        if inc is None:
            raise HTTPException(404, f"no incident {incident_id}")
        events = [EventPublic(ts=e.ts, kind=e.kind, details=e.details) for e in inc.events]
        return IncidentDetail(**incident_public(inc), events=events)

    @app.get("/api/v1/evidence/{path:path}", tags=["evidence"], response_class=FileResponse)
    def get_evidence(path: str) -> FileResponse:
        try:
            file = ctx.store.resolve(path)
        except ValueError as e:
            raise HTTPException(400, str(e)) from e
        if not file.is_file():
            raise HTTPException(404, f"no evidence file {path!r}")
        media = {".jpg": "image/jpeg", ".mp4": "video/mp4"}.get(file.suffix, "application/octet-stream")
        return FileResponse(file, media_type=media)

    return app
