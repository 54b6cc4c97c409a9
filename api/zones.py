"""The zone editor's API: a camera's full-resolution picture, its zones written back to its file, config reload."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from api.accounts import audit
from api.deps import Admin, ApiContext, ContextDep, Reader, SessionDep
from api.schemas import ZonePublic, errors
from detector.camera_files import CameraFileError, ZonesInvalid, find_camera, write_zones

router = APIRouter(prefix="/api/v1", responses=errors(401, 403, 404))


class CameraZones(BaseModel):
    camera_id: str
    zones: list[ZonePublic] = Field(description="The zones the camera runs with now.")
    file: str | None = Field(description="The camera file that holds them (name only); none: not editable.")


class ZonesUpdate(BaseModel):
    zones: list[dict[str, Any]] = Field(
        description="Every zone of the camera: {name, display_name?, purpose, polygon: [[x, y], ...]} (0..1)."
    )


class ReloadPublic(BaseModel):
    added: list[str]
    removed: list[str]
    restarted: list[str] = Field(description="Cameras whose stream settings changed: their readers started again.")
    updated: list[str] = Field(description="Cameras with new zones, rules or problems from their next frame on.")
    warnings: list[str]


def _zones(ctx: ApiContext, camera_id: str) -> CameraZones:
    cam = ctx.cameras.get(camera_id)
    if cam is None:
        raise HTTPException(404, f"no camera {camera_id!r}")
    try:
        file = find_camera(ctx.config_dir, camera_id).name if ctx.config_dir is not None else None
    except CameraFileError:
        file = None  # the demo camera, or one removed from its file since the last reload
    zones = [ZonePublic.model_validate(z.model_dump(mode="json")) for z in cam.zones]
    return CameraZones(camera_id=camera_id, zones=zones, file=file)


@router.get("/cameras/{camera_id}/zones", tags=["cameras"])
def get_zones(camera_id: str, _: Reader, ctx: ContextDep) -> CameraZones:
    return _zones(ctx, camera_id)


@router.get("/cameras/{camera_id}/picture.jpg", tags=["cameras"], response_class=Response)
def camera_picture(camera_id: str, _: Admin, ctx: ContextDep) -> Response:
    """A recent frame at the camera's full resolution, without drawings: the zone editor's canvas."""
    if camera_id not in ctx.cameras:
        raise HTTPException(404, f"no camera {camera_id!r}")
    picture = ctx.latest_picture(camera_id)
    if picture is None:
        raise HTTPException(404, f"camera {camera_id!r} has no analysed frame yet")
    return Response(picture, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.put("/cameras/{camera_id}/zones", tags=["cameras"], responses=errors(409))  # 422: FastAPI's shape
def put_zones(camera_id: str, body: ZonesUpdate, who: Admin, ctx: ContextDep, s: SessionDep) -> CameraZones:
    """Writes the camera's zones into its YAML file (comments and the other cameras kept; admins, audited).

    The running camera takes them at the next reload (POST /config/reload, or the file watch).
    """
    if ctx.config_dir is None:
        raise HTTPException(409, "this instance was not started from a config folder: nothing to write")
    before = _zones(ctx, camera_id) if camera_id in ctx.cameras else None
    try:
        path, zones = write_zones(ctx.config_dir, camera_id, body.zones)
    except ZonesInvalid as e:
        detail = [{"loc": ["body", *f.field.split(".")], "msg": str(f), "type": "value_error"} for f in e.errors]
        raise HTTPException(422, detail) from e
    except CameraFileError as e:
        raise HTTPException(404, str(e)) from e
    after = [z.model_dump(mode="json", exclude_none=True) for z in zones]
    audit(s, who, "camera.zones", f"camera:{camera_id}",
          {"zones": [z.model_dump(exclude_none=True) for z in before.zones]} if before else None,
          {"zones": after, "file": path.name})  # fmt: skip
    s.commit()
    return CameraZones(camera_id=camera_id, zones=[ZonePublic.model_validate(z) for z in after], file=path.name)


@router.post("/config/reload", tags=["config"], responses=errors(409, 422))
def reload_config(who: Admin, ctx: ContextDep, s: SessionDep) -> ReloadPublic:
    """Loads the config folder again: added cameras start, removed ones stop, changed zones apply from the
    camera's next analysis. A folder with errors is refused (422, the errors listed); the running config stays."""
    if ctx.reload is None:
        raise HTTPException(409, "this instance was not started from a config folder: nothing to reload")
    result = ctx.reload()
    if not result.ok:
        audit(s, who, "config.reload", "config", None, {"refused": result.errors})
        s.commit()
        detail = [{"loc": ["config"], "msg": err, "type": "config_error"} for err in result.errors]
        raise HTTPException(422, detail)
    out = {k: v for k, v in asdict(result).items() if k != "errors"}
    audit(s, who, "config.reload", "config", None, {k: v for k, v in out.items() if v})
    s.commit()
    return ReloadPublic(**out)
