"""Detector models: versions, what is active, shadow runs and their report; promote and roll back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from api.accounts import Principal
from api.deps import ContextDep, Reader, SessionDep, require
from api.schemas import errors
from detector.models.deployments import (
    DeploymentError,
    ModelStore,
    current_shadow,
    desired,
    promote,
    rollback,
    start_shadow,
    stop_shadow,
)
from detector.models.manifest import ModelManifestError, load_manifest
from detector.models.shadow import shadow_report

router = APIRouter(prefix="/api/v1/models", tags=["models"], responses=errors(401, 403, 404, 409))
Trainer = Annotated[Principal, Depends(require("models"))]


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1, max_length=40)
    force: str | None = Field(
        None, min_length=3, max_length=500, description="Promote a version worse than the active one: why (audited)."
    )


class ShadowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1, max_length=40)
    cameras: list[str] | None = Field(None, description="Camera ids; omitted: every camera using the model.")


def _store(ctx: ContextDep) -> ModelStore:
    if ctx.model_store is None:
        raise HTTPException(404, "this instance has no models folder")
    return ctx.model_store


def _known(store: ModelStore, name: str) -> None:
    if name not in store.names():
        raise HTTPException(404, f"no model {name!r} (known: {store.names()})")


def _version_facts(store: ModelStore, name: str, version: str) -> dict[str, Any]:
    try:
        m = load_manifest(store.path(name, version))
    except (DeploymentError, ModelManifestError) as e:
        return {"version": version, "error": str(e)}
    return {"version": version, "classes": m.classes, "input": [m.input.width, m.input.height], "metrics": m.metrics}


@router.get("")
def list_models(_: Reader, ctx: ContextDep, s: SessionDep) -> list[dict[str, Any]]:
    """Every model in the models folder: its versions, the active one and any shadow run."""
    store = _store(ctx)
    want = desired(s, store)
    out = []
    for name in store.names():
        shadow = want.shadows.get(name)
        out.append({
            "name": name,
            "active": want.active.get(name),
            "default": store.default_version(name),
            "shadow": {"version": shadow.version, "cameras": sorted(shadow.cameras) if shadow.cameras else None}
            if shadow else None,
            "versions": [_version_facts(store, name, v) for v in store.versions(name)],
        })  # fmt: skip
    return out


@router.post("/{name}/promote")
def promote_version(name: str, body: PromoteIn, who: Trainer, ctx: ContextDep, s: SessionDep) -> dict[str, str]:
    """Makes a version active; cameras switch to it within seconds, without a restart."""
    store = _store(ctx)
    _known(store, name)
    try:
        promote(s, store, name, body.version, who, force=body.force)
    except DeploymentError as e:
        raise HTTPException(400, str(e)) from e
    s.commit()
    return {"model": name, "active": body.version}


@router.post("/{name}/rollback")
def rollback_version(name: str, who: Trainer, ctx: ContextDep, s: SessionDep) -> dict[str, str]:
    """Goes back to the version that was active before the last promotion."""
    store = _store(ctx)
    _known(store, name)
    try:
        version = rollback(s, store, name, who)
    except DeploymentError as e:
        raise HTTPException(409, str(e)) from e
    s.commit()
    return {"model": name, "active": version}


@router.post("/{name}/shadow")
def shadow_start(name: str, body: ShadowIn, who: Trainer, ctx: ContextDep, s: SessionDep) -> dict[str, Any]:
    """Runs a version in shadow: its findings are stored beside the active model's, never filed."""
    store = _store(ctx)
    _known(store, name)
    unknown = sorted(set(body.cameras or ()) - set(ctx.cameras))
    if unknown:
        raise HTTPException(400, f"cameras: unknown camera ids {unknown}")
    try:
        start_shadow(s, store, name, body.version, body.cameras, who)
    except DeploymentError as e:
        raise HTTPException(400, str(e)) from e
    s.commit()
    return {"model": name, "shadow": body.version, "cameras": body.cameras}


@router.delete("/{name}/shadow")
def shadow_stop(name: str, who: Trainer, ctx: ContextDep, s: SessionDep) -> dict[str, str]:
    _known(_store(ctx), name)
    try:
        stop_shadow(s, name, who)
    except DeploymentError as e:
        raise HTTPException(409, str(e)) from e
    s.commit()
    return {"model": name, "shadow": "stopped"}


@router.get("/{name}/shadow/report")
def shadow_run_report(name: str, _: Reader, ctx: ContextDep, s: SessionDep) -> dict[str, Any]:
    """The open shadow run compared with the active model and with the operators' verdicts."""
    _known(_store(ctx), name)
    run = current_shadow(s, name)
    if run is None:
        raise HTTPException(404, f"model {name!r} has no shadow run")
    return shadow_report(s, run)
