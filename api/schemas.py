"""Public shapes of the API (never the ORM rows, never credentials)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class CameraPublic(BaseModel):
    id: str
    name: str
    state: str
    last_error: str | None
    last_frame_at: datetime | None
    frames_received_per_min: int
    frames_analysed_per_min: int
    frames_dropped: int
    reconnects: int
    cadence_s: float
    problems: list[str]
    address: str
    street: str
    community: str


class EvidencePublic(BaseModel):
    kind: str
    url: str
    sha256: str
    bytes: int


class EventPublic(BaseModel):
    ts: datetime
    kind: str
    details: dict[str, Any]


class IncidentPublic(BaseModel):
    id: int
    case_key: str
    camera_id: str
    zone: str
    problem_code: str
    problem_name: str
    state: str
    opened_at: datetime
    first_seen_at: datetime
    last_seen_at: datetime
    cleared_at: datetime | None
    recurrences: int
    score: float
    box: list[float]
    evidence: list[EvidencePublic]


class IncidentDetail(IncidentPublic):
    events: list[EventPublic]


class IncidentPage(BaseModel):
    total: int
    items: list[IncidentPublic]
