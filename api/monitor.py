"""Cameras and their health, statistics, taxonomy, Prometheus metrics, liveness."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from fastapi import APIRouter, HTTPException, Query, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select, text

from api.accounts import Principal
from api.deps import ApiContext, ContextDep, Reader, SessionDep
from api.ptz import patrol_public
from api.redact import camera_error
from api.schemas import CameraPublic, HealthEventPublic, ZonePublic, errors
from detector.config import Camera
from detector.store.db import CameraHealthEvent, Case, CaseHistory, Incident, Outbox

router = APIRouter(prefix="/api/v1", responses=errors(401, 403, 404))
ops = APIRouter(tags=["ops"], responses=errors(401, 403, 503))


def camera_public(ctx: ApiContext, cam: Camera, who: Principal) -> CameraPublic:
    """The camera as `who` may see it: its error without the source URL unless `who` is an admin."""
    h = ctx.health(cam.id)
    return CameraPublic(
        id=cam.id, name=cam.name,
        state=h.state.value if h else "unknown", last_error=camera_error(who, cam, h.last_error) if h else None,
        last_frame_at=h.last_frame_at if h else None,
        frames_received_per_min=h.frames_received_per_min if h else 0,
        frames_analysed_per_min=h.frames_analysed_per_min if h else 0,
        frames_dropped=h.frames_dropped if h else 0, reconnects=h.reconnects if h else 0,
        cadence_s=cam.cadence_s, problems=cam.problems, address=cam.location.address,
        street=cam.location.street, community=cam.location.community,
        zones=[ZonePublic.model_validate(z.model_dump(mode="json")) for z in cam.zones],
        patrol=patrol_public(p) if (p := ctx.patrol(cam.id)) is not None else None,
    )  # fmt: skip


@router.get("/cameras", tags=["cameras"])
def list_cameras(who: Reader, ctx: ContextDep, street: str | None = None) -> list[CameraPublic]:
    cams = [c for c in ctx.cameras.values() if street is None or c.location.street == street]
    return [camera_public(ctx, c, who) for c in cams]


def _camera(ctx: ApiContext, camera_id: str) -> Camera:
    cam = ctx.cameras.get(camera_id)
    if cam is None:
        raise HTTPException(404, f"no camera {camera_id!r}")
    return cam


@router.get("/cameras/{camera_id}", tags=["cameras"])
def get_camera(camera_id: str, who: Reader, ctx: ContextDep) -> CameraPublic:
    return camera_public(ctx, _camera(ctx, camera_id), who)


@router.get("/cameras/{camera_id}/health", tags=["cameras"])
def camera_health(
    camera_id: str, who: Reader, ctx: ContextDep, s: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[HealthEventPublic]:
    """The camera's state changes, newest first (errors without the source URL unless the caller is an admin)."""
    cam = _camera(ctx, camera_id)
    rows = s.scalars(
        select(CameraHealthEvent)
        .where(CameraHealthEvent.camera_id == camera_id)
        .order_by(CameraHealthEvent.id.desc())
        .limit(limit)
    )
    return [HealthEventPublic(ts=r.ts, state=r.state, error=camera_error(who, cam, r.error)) for r in rows]


@router.get("/cameras/{camera_id}/frame.jpg", tags=["cameras"], response_class=Response)
def camera_frame(camera_id: str, _: Reader, ctx: ContextDep, zones: bool = True) -> Response:
    """The newest analysed frame (a preview at most 960 px wide) with the camera's zones drawn
    (`zones=false`: without them, for a client that draws them with their names)."""
    cam = _camera(ctx, camera_id)
    image = ctx.latest_frame(camera_id)
    if image is None:
        raise HTTPException(404, f"camera {camera_id!r} has no analysed frame yet")
    scene = image.copy()
    h, w = scene.shape[:2]
    for zone in cam.zones if zones else ():
        pts = np.round(np.asarray(zone.polygon) * [w - 1, h - 1]).astype(np.int32)
        colour = (128, 128, 128) if zone.purpose.value == "ignore" else (255, 200, 0)
        cv2.polylines(scene, [pts], True, colour, max(2, w // 640), cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", scene, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise HTTPException(500, "could not encode the frame")
    return Response(buf.tobytes(), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/taxonomy", tags=["reference"])
def taxonomy(_: Reader, ctx: ContextDep) -> list[dict[str, str]]:
    return [{"code": t.code, "name_zh": t.name_zh, "name_en": t.name_en} for t in ctx.taxonomy]


@router.get("/stats", tags=["statistics"])
def stats(_: Reader, ctx: ContextDep, s: SessionDep, days: Annotated[int, Query(ge=1, le=366)] = 30) -> dict:
    """Per street, community, problem, camera and day: incidents, verdicts, filings, closings."""
    since = datetime.now(UTC) - timedelta(days=days)
    incidents = s.scalars(select(Incident).where(Incident.opened_at >= since)).all()
    cases = {c.incident_id: c for c in s.scalars(select(Case).where(Case.incident_id.in_([i.id for i in incidents])))}
    filed_at = dict(
        s.execute(
            select(CaseHistory.case_id, func.min(CaseHistory.ts))
            .where(CaseHistory.to_status.in_(("accepted", "filed")))
            .group_by(CaseHistory.case_id)
        ).all()
    )

    zone = ZoneInfo(ctx.cases.settings.calendar.timezone)

    def empty() -> dict[str, Any]:
        return {"incidents": 0, "confirmed": 0, "rejected": 0, "filed": 0, "closed": 0, "_minutes": []}

    groups: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(empty))
    for inc in incidents:
        cam = ctx.cameras.get(inc.camera_id)
        case = cases.get(inc.id)
        day = inc.opened_at.astimezone(zone).date().isoformat()
        keys = {
            "street": cam.location.street if cam else "",
            "community": cam.location.community if cam else "",
            "problem": inc.problem_code,
            "camera": inc.camera_id,
            "day": day,
        }
        for dim, key in keys.items():
            g = groups[dim][key]
            g["incidents"] += 1
            g["confirmed"] += inc.review_state in ("confirmed", "relabelled")
            g["rejected"] += inc.review_state == "rejected"
            if case is not None and case.platform_case_id:
                g["filed"] += 1
                if case.id in filed_at:
                    g["_minutes"].append((filed_at[case.id] - inc.opened_at).total_seconds() / 60)
            g["closed"] += case is not None and case.status == "closed"

    def rows(dim: str, name: str) -> list[dict[str, Any]]:
        out = []
        for key, g in sorted(groups[dim].items()):
            minutes = g.pop("_minutes")
            judged = g["confirmed"] + g["rejected"]
            out.append({
                name: key, **g,
                "median_minutes_to_file": round(statistics.median(minutes), 1) if minutes else None,
                "precision": round(g["confirmed"] / judged, 3) if judged else None,
                "disposal_rate": round(g["closed"] / g["filed"], 3) if g["filed"] else None,
            })  # fmt: skip
        return out

    by_problem = rows("problem", "code")
    for r in by_problem:
        r["name"] = ctx.taxonomy[r["code"]].name_zh if r["code"] in ctx.taxonomy else r["code"]
    by_camera = rows("camera", "camera_id")
    for r in by_camera:
        r["name"] = ctx.cameras[r["camera_id"]].name if r["camera_id"] in ctx.cameras else r["camera_id"]
    by_street = rows("street", "street")
    ranked = sorted(by_street, key=lambda r: (-(r["disposal_rate"] or 0), -r["closed"]))
    ranking = [
        {"rank": i + 1, "street": r["street"], "disposal_rate": r["disposal_rate"], "closed": r["closed"],
         "filed": r["filed"]}
        for i, r in enumerate(ranked)
    ]  # fmt: skip
    return {
        "days": days,
        "by_street": by_street,
        "by_community": rows("community", "community"),
        "by_problem": by_problem,
        "by_camera": by_camera,
        "by_day": rows("day", "day"),
        "ranking": ranking,
    }


# ---------------------------------------------------------------- operations


@ops.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@ops.get("/readyz")
def readyz(ctx: ContextDep) -> dict[str, Any]:
    """The database answers and at least one camera is configured."""
    try:
        with ctx.sessions() as s:
            s.execute(text("SELECT 1"))
    except Exception as e:  # report, do not crash: this is what a probe is for
        raise HTTPException(503, f"database unavailable: {type(e).__name__}") from e
    if not ctx.cameras:
        raise HTTPException(503, "no cameras are running")
    return {"status": "ready", "cameras": len(ctx.cameras)}


class _Collector:
    """Reads health, runtime counters and queue depths at scrape time (no global counters)."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def collect(self):
        ctx = self.ctx
        up = GaugeMetricFamily("gridsight_camera_up", "1 when the camera is live", labels=["camera"])
        received = GaugeMetricFamily(
            "gridsight_camera_frames_received_per_minute", "Packets per minute", labels=["camera"]
        )
        analysed = CounterMetricFamily("gridsight_camera_frames_analysed", "Frames analysed", labels=["camera"])
        gated = CounterMetricFamily("gridsight_camera_model_runs", "Frames the gated models ran on", labels=["camera"])
        dropped = CounterMetricFamily(
            "gridsight_camera_frames_dropped", "Frames dropped (analysis behind)", labels=["camera"]
        )
        reconnects = CounterMetricFamily("gridsight_camera_reconnects", "Reconnects", labels=["camera"])
        decode = CounterMetricFamily("gridsight_camera_decode_seconds", "CPU seconds decoding", labels=["camera"])
        infer = CounterMetricFamily("gridsight_camera_analysis_seconds", "Seconds in analysis", labels=["camera"])
        lag = GaugeMetricFamily(
            "gridsight_camera_lag_seconds", "Decode to analysis done, newest frame", labels=["camera"]
        )
        errors = CounterMetricFamily("gridsight_camera_errors", "Analysis errors", labels=["camera"])
        runtime = ctx.runtime_stats()
        for cam_id in ctx.cameras:
            h = ctx.health(cam_id)
            r = runtime.get(cam_id, {})
            if h is not None:
                up.add_metric([cam_id], float(h.state.value == "live"))
                received.add_metric([cam_id], h.frames_received_per_min)
                dropped.add_metric([cam_id], h.frames_dropped)
                reconnects.add_metric([cam_id], h.reconnects)
                decode.add_metric([cam_id], h.decode_seconds)
            analysed.add_metric([cam_id], r.get("frames", 0))
            gated.add_metric([cam_id], r.get("analyses", 0))
            infer.add_metric([cam_id], r.get("analysis_seconds", 0.0))
            lag.add_metric([cam_id], r.get("lag_s", 0.0))
            errors.add_metric([cam_id], r.get("errors", 0))
        yield from (up, received, analysed, gated, dropped, reconnects, decode, infer, lag, errors)
        incidents = GaugeMetricFamily("gridsight_incidents", "Incidents by state", labels=["state"])
        outbox = GaugeMetricFamily("gridsight_filing_queue", "Outbox messages by state", labels=["state"])
        with ctx.sessions() as s:
            for state, n in s.execute(select(Incident.state, func.count()).group_by(Incident.state)):
                incidents.add_metric([state], n)
            for state, n in s.execute(select(Outbox.state, func.count()).group_by(Outbox.state)):
                outbox.add_metric([state], n)
        yield incidents
        yield outbox


@ops.get("/metrics", response_class=Response)
def metrics(_: Reader, ctx: ContextDep) -> Response:
    """Prometheus text format (scrape with an API token)."""
    registry = CollectorRegistry()
    registry.register(_Collector(ctx))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
