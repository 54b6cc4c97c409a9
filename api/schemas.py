"""Public shapes of the API (never the ORM rows, never credentials)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ID = 2**62  # database integers: larger ids cannot exist (and would overflow SQLite)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class ErrorBody(BaseModel):
    detail: str | list[Any] = Field(description="What was wrong, naming the field or object.")


_ERROR_TEXT = {
    400: "Bad request", 401: "No valid credentials", 403: "The role may not do this", 404: "Not found",
    409: "Conflicts with the current state", 411: "Length required", 413: "Body too large",
    422: "Invalid input, each error naming its field", 429: "Too many attempts", 503: "Not ready",
}  # fmt: skip


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error codes a route may answer (body: {"detail": ...})."""
    return {code: {"model": ErrorBody, "description": _ERROR_TEXT[code]} for code in sorted({*codes, 400, 411, 413})}


class HealthEventPublic(BaseModel):
    ts: datetime
    state: str
    error: str | None


class ZonePublic(BaseModel):
    name: str = Field(description="The zone's id (ASCII), part of the case key.")
    display_name: str | None = Field(description="What people call it, e.g. 东门口.")
    purpose: str
    polygon: list[tuple[float, float]] = Field(description="Normalised (x, y) vertices, 0..1.")


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
    zones: list[ZonePublic] = Field(default_factory=list, description="The zones the camera runs with now.")
    patrol: PatrolPublic | None = Field(None, description="The preset patrol (轮巡) of a PTZ camera; None: none.")


class PatrolPublic(BaseModel):
    preset: str | None = Field(description="The preset it is at or heading for; None while locked or in fault.")
    state: str = Field(description="starting, moving, settling, dwelling, locked, fault or stopped")
    settled: bool = Field(description="Frames are being analysed as this preset's.")
    locked_until: datetime | None = Field(description="Held for an operator (or a manual move) until then.")


class PtzLock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(gt=0, le=86400, description="How long the patrol holds; a move meanwhile extends it.")


class EvidencePublic(BaseModel):
    kind: str = Field(description="first_seen (as the persistence window began), annotated, clean, clip, fresh, after")
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
    camera_name: str
    address: str
    street: str
    community: str
    zone: str
    zone_name: str = Field(description="The zone's display name (e.g. 东门口), else its id.")
    problem_code: str
    problem_name: str
    analyzer: str | None = Field(None, description="What produced the detection, e.g. detector, occupancy, text.")
    label: str | None = Field(None, description="The analyzer's label for it, e.g. stall, stationary.")
    state: str
    opened_at: datetime
    first_seen_at: datetime
    last_seen_at: datetime
    cleared_at: datetime | None
    recurrences: int
    score: float
    box: list[float]
    persistence_minutes: float
    review_state: str | None
    review_note: str | None
    evidence: list[EvidencePublic]


class IncidentDetail(IncidentPublic):
    events: list[EventPublic]
    case_ids: list[int]


class IncidentPage(BaseModel):
    total: int
    items: list[IncidentPublic]


class CaseHistoryPublic(BaseModel):
    ts: datetime
    from_status: str | None
    to_status: str
    source: str
    note: str | None
    stale: bool = Field(description="An update older than the case's status: recorded, not applied.")


class OutboxPublic(BaseModel):
    id: int
    kind: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime


class BulkVerdict(BaseModel):
    model_config = {
        "extra": "forbid",
        "json_schema_extra": {"examples": [{"incident_ids": [12, 13, 14], "verdict": "reject", "note": "光影误报"}]},
    }

    incident_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=200)
    verdict: Literal["confirm", "reject"]
    note: str = Field("", max_length=500)


class CasePublic(BaseModel):
    id: int
    incident_id: int
    problem_code: str
    status: str
    platform_case_id: str | None
    deadline: datetime
    recurrence_of: int | None
    verification: str | None
    payload: dict[str, Any]
    created_at: datetime
    allowed: list[str] = Field(
        description="The statuses the caller may move the case to now (POST .../status), as the case flow allows "
        "operators from its status; empty for a role without the cases permission."
    )


class CaseDetail(CasePublic):
    history: list[CaseHistoryPublic]
    outbox: list[OutboxPublic]


Unit = Annotated[float, Field(ge=0, le=1)]


class ReviewVerdict(BaseModel):
    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {"verdict": "confirm"},
                {"verdict": "reject", "note": "快递三轮车临时停靠"},
                {"verdict": "relabel", "problem_code": "06036", "box": [0.52, 0.48, 0.66, 0.7], "note": "是堆物"},
            ]
        },
    }

    verdict: Literal["confirm", "reject", "relabel"]
    problem_code: str | None = Field(None, pattern=r"^\d{5}$", description="relabel: the right problem type.")
    box: tuple[Unit, Unit, Unit, Unit] | None = Field(
        None, description="relabel: the corrected box, normalised x0, y0, x1, y1 (also a training label)."
    )
    note: str = Field("", max_length=500)


class StatusChange(BaseModel):
    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{"status": "handled", "note": "已劝离"}]}}

    status: Literal["accepted", "filed", "dispatched", "handled", "verified", "closed", "voided"]
    note: str | None = Field(None, max_length=500)


class Reopen(BaseModel):
    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{"reason": "市民反映问题复现，核查不实"}]}}

    reason: str = Field(min_length=2, max_length=500, description="Why the closed case is reopened (audited).")


class PlatformCallback(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {"case_id": "PC-20260302-000001", "status": "dispatched", "ts": "2026-03-02T10:20:00+08:00",
                 "note": "派遣至城管执法队"}
            ]
        }
    }  # fmt: skip

    case_id: str = Field(min_length=1, max_length=64)
    status: str = Field(min_length=1, max_length=32)
    ts: datetime | None = None
    note: str | None = Field(None, max_length=2000)


# ---------------------------------------------------------------- users and tokens (admins)

UserName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@\-]{1,64}$", description="Login name.")]
Role = Literal["viewer", "operator", "trainer", "admin"]


class UserPublic(BaseModel):
    username: str
    role: str
    disabled: bool
    created_at: datetime


class UserCreate(BaseModel):
    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{"username": "wang.li", "role": "operator"}]}}

    username: UserName
    role: Role = "operator"
    password: str | None = Field(
        None, min_length=10, max_length=200, description="Unset: one is generated and answered once."
    )


class PasswordReset(BaseModel):
    model_config = {"extra": "forbid"}

    password: str | None = Field(
        None, min_length=10, max_length=200, description="Unset: one is generated and answered once."
    )


class UserWithPassword(BaseModel):
    user: UserPublic
    password: str | None = Field(description="The generated password, shown this once; null when the admin set it.")


class TokenPublic(BaseModel):
    """A machine's API token, never its secret (only a hash of it is stored)."""

    name: str
    role: str
    revoked: bool
    created_at: datetime
    last_used_at: datetime | None


# ---------------------------------------------------------------- 核实 on request


class VerificationLocation(BaseModel):
    """Where the reported problem is: exactly one of a grid code, a point (lon and lat) or a camera id."""

    model_config = {"extra": "forbid"}

    grid_code: str | None = Field(
        None, pattern=r"^[0-9A-Z]{15}$", description="15-char 单元网格 code: the cameras standing in that grid answer."
    )
    lon: float | None = Field(None, ge=-180, le=180, description="With lat, in CGCS2000 / WGS84 (not GCJ-02).")
    lat: float | None = Field(None, ge=-90, le=90)
    camera_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="Ask this camera only.")

    @model_validator(mode="after")
    def _one_form(self) -> VerificationLocation:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("location.lon and location.lat go together")
        given = [n for n, v in (("grid_code", self.grid_code), ("lon/lat", self.lon), ("camera_id", self.camera_id))
                 if v is not None]  # fmt: skip
        if len(given) != 1:
            raise ValueError(f"location: give exactly one of grid_code, lon/lat or camera_id (got {given or 'none'})")
        return self


class VerificationCreate(BaseModel):
    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {"problem_code": "09006", "location": {"grid_code": "110107001002003"}, "reference": "RX-0012"},
                {"problem_code": "09006", "location": {"lon": 116.2235, "lat": 39.9061}},
            ]
        },
    }

    problem_code: str = Field(pattern=r"^\d{5}$", description="A problem of the taxonomy (GET /api/v1/taxonomy).")
    location: VerificationLocation
    reference: str | None = Field(
        None, pattern=r"^[\x21-\x7e]{1,128}$", description="The platform's id of the report; sent back with the answer."
    )


class VerificationCameraPublic(BaseModel):
    camera_id: str
    preset: str | None = Field(description="A PTZ camera: the preset whose view answers.")
    result: Literal["pending", "present", "absent", "cannot_see"]
    reason: str | None = Field(description="cannot_see: why (camera failed, view covered, no frame in time).")
    frame_at: datetime | None = Field(description="Camera time of the frame that answered.")
    answered_at: datetime | None
    findings: list[dict[str, Any]] = Field(description="present: zone, box (normalised xyxy), score, label.")
    evidence: list[EvidencePublic] = Field(description="present: annotated and clean; otherwise the clean frame.")


class VerificationPublic(BaseModel):
    id: int
    problem_code: str
    problem_name: str
    location: dict[str, Any]
    reference: str | None
    requested_by: str
    status: Literal["pending", "answered"]
    result: Literal["present", "absent", "cannot_see"] | None = Field(
        description="present if any camera sees it, else absent if any saw the place, else cannot_see."
    )
    created_at: datetime
    answered_at: datetime | None
    delivery: str | None = Field(
        description="The answer's message to the platform: pending, sending, done or dead (None: not answered yet)."
    )
    cameras: list[VerificationCameraPublic]
