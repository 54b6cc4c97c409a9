"""Dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from detector.config import Camera
from detector.evidence import EvidenceStore
from detector.filing.cases import CaseService
from detector.health import HealthSnapshot
from detector.taxonomy import Taxonomy


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


def get_context(request: Request) -> ApiContext:
    return request.app.state.ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    with ctx.sessions() as s:
        yield s


SessionDep = Annotated[Session, Depends(get_session)]
