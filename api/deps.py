"""Dependencies shared by the routers: the context, a database session, and who is calling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import Depends, HTTPException, Request
from numpy.typing import NDArray
from sqlalchemy.orm import Session, sessionmaker

from api.accounts import LoginLimiter, Principal, principal_for_session, principal_for_token
from detector.config import Camera
from detector.filing.cases import CaseService
from detector.incidents.evidence import EvidenceStore
from detector.ingest.health import HealthSnapshot
from detector.ingest.patrol import Patrol
from detector.models.deployments import ModelStore
from detector.rules.taxonomy import Taxonomy
from detector.runtime.reload import ReloadResult

SESSION_COOKIE = "gs_session"


@dataclass
class ApiContext:
    """What the API reads; built by the composition root."""

    sessions: sessionmaker[Session]
    store: EvidenceStore
    taxonomy: Taxonomy
    cameras: dict[str, Camera]
    health: Callable[[str], HealthSnapshot | None]
    cases: CaseService
    callback_secret: str | None = None  # HMAC secret of platform status callbacks
    status_map: dict[str, str] = field(default_factory=dict)  # platform status names → GridSight's
    latest_frame: Callable[[str], NDArray[np.uint8] | None] = lambda _camera_id: None
    model_store: ModelStore | None = None  # the models folder (versions, deployments)
    runtime_stats: Callable[[], dict[str, dict[str, float]]] = dict  # per camera: analyses, seconds, lag
    cookie_secure: bool = False
    #: normalised person boxes in a BGR picture (the people-and-vehicles model); none: faces only
    people: Callable[[NDArray[np.uint8]], NDArray[np.float32]] | None = None
    #: a recent frame at full resolution as JPEG (the zone editor); None: no frame yet
    latest_picture: Callable[[str], bytes | None] = lambda _camera_id: None
    config_dir: Path | None = None  # the camera files the zone editor writes; None: not editable
    reload: Callable[[], ReloadResult] | None = None  # loads the config folder again and applies it
    #: a PTZ camera's patrol run by this process (lock, release, its state); None: none here
    patrol: Callable[[str], Patrol | None] = lambda _camera_id: None
    verification_timeout_s: float = 120.0  # 核实: how long a camera may take to answer (settings)
    login_limiter: LoginLimiter = field(default_factory=LoginLimiter)


def get_context(request: Request) -> ApiContext:
    return request.app.state.ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    with ctx.sessions() as s:
        yield s


SessionDep = Annotated[Session, Depends(get_session)]


def get_principal(request: Request, ctx: ContextDep) -> Principal:
    """The caller, from a bearer token (machines) or the session cookie (the console).

    Raises:
        HTTPException: 401 without valid credentials.
    """
    auth = request.headers.get("authorization", "")
    with ctx.sessions() as s:
        if auth.lower().startswith("bearer "):
            who = principal_for_token(s, auth[7:].strip())
            if s.dirty:
                s.commit()  # last_used_at
        elif sid := request.cookies.get(SESSION_COOKIE):
            who = principal_for_session(s, sid)
        else:
            raise HTTPException(401, "log in or send an API token (Authorization: Bearer ...)")
    if who is None:
        raise HTTPException(401, "the token or session is not valid (expired, revoked or unknown)")
    return who


def require(permission: str) -> Callable[..., Principal]:
    def check(who: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not who.can(permission):
            raise HTTPException(403, f"role {who.role!r} may not do this (needs {permission!r})")
        return who

    return check


Reader = Annotated[Principal, Depends(require("read"))]
Reviewer = Annotated[Principal, Depends(require("review"))]
CaseWorker = Annotated[Principal, Depends(require("cases"))]
Admin = Annotated[Principal, Depends(require("admin"))]
