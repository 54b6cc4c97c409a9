"""Cases: what an incident becomes for the platform, and its life there.

Every method runs inside the caller's transaction: the case, its outbox
message and the incident change commit together or not at all (the outbox
pattern), so a crash can delay a filing but never lose or duplicate it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from detector.config import DEFAULT_TZ, Camera, LocalPlatform, Settings
from detector.filing.case_flow import STATUSES, TERMINAL, CaseFlow, TransitionRefused
from detector.filing.workcal import TimeLimit
from detector.incidents.evidence import EvidenceStore
from detector.rules.taxonomy import FilingPolicy, ProblemType, Taxonomy
from detector.store.db import CameraRow, Case, CaseHistory, EvidenceFile, Incident, Outbox

log = logging.getLogger(__name__)

SOURCE = "视频发现"
REVIEW_VERDICTS = ("confirm", "reject", "relabel")
# what a case is filed with: the first sighting (the "before"), the opening pictures, the clip
BUNDLE_KINDS = ("first_seen", "clean", "annotated", "clip")


class ReviewError(ValueError):
    """A review verdict that cannot apply (wrong state, unknown problem)."""


def _local(ts: datetime) -> str:
    return ts.astimezone(ZoneInfo(DEFAULT_TZ)).strftime("%Y-%m-%d %H:%M")


def zone_label(camera: Camera, zone: str) -> str:
    """What people call a camera's zone (its display name, e.g. 东门口), else its id."""
    found = next((z for z in camera.zones if z.name == zone), None)
    return (found.display_name if found else None) or zone


def describe(problem: ProblemType, camera: Camera, inc: Incident) -> str:
    """The case description from the problem's Chinese template."""
    extras = (inc.details or {}).get("extras") or {}
    phones = extras.get("phones") or []
    zone = zone_label(camera, inc.zone)
    fields = {
        "name": problem.name_zh,
        "code": problem.code,
        "camera": camera.name,
        "address": camera.location.address or camera.name,
        "street": camera.location.street,
        "community": camera.location.community,
        "zone": zone,
        # a display name is a place already (东门口); a bare zone id gets 区域
        "zone_text": "" if inc.zone == "view" else zone if zone != inc.zone else f"{zone}区域",
        "since": _local(inc.first_seen_at),
        "minutes": max(1, round((inc.last_seen_at - inc.first_seen_at).total_seconds() / 60)),
        "score": f"{inc.score:.2f}",
        "phones": f"广告电话：{'、'.join(phones)}。" if phones else "",
    }
    return problem.description.format_map(fields)


def build_payload(
    problem: ProblemType, camera: Camera, inc: Incident, *, deadline: datetime, key: str, case_id: int
) -> dict[str, Any]:
    """The national fields of a case (docs/platform-api.md); evidence is added when sent."""
    loc = camera.location
    return {
        "sxdm": f"{loc.division_code}{problem.code}",
        "sxmc": problem.name_zh,
        "source": SOURCE,
        "case_type": problem.case_type,
        "description": describe(problem, camera, inc),
        "address": loc.address,
        "lon": loc.lon,
        "lat": loc.lat,
        "crs": loc.crs,
        "grid_code": loc.grid_code,
        "district_code": loc.division_code,
        "street": loc.street,
        "community": loc.community,
        "department": problem.department.model_dump(),
        "co_dispatch_street": bool(loc.street),  # 双派: the department and the street
        "area_class": loc.area_class,
        "urgency": camera.urgency,
        "deadline": deadline.isoformat(),
        "detected_at": inc.opened_at.astimezone(ZoneInfo(DEFAULT_TZ)).isoformat(),
        "first_seen_at": inc.first_seen_at.astimezone(ZoneInfo(DEFAULT_TZ)).isoformat(),
        "camera_id": camera.id,
        "legacy_code": problem.legacy_code,
        "filing_condition": problem.filing_condition,
        "recurrence_of": None,  # the platform's id of the earlier case, filled in when sent
        "gridsight_case_id": case_id,
        "idempotency_key": key,
    }


@dataclass
class CaseService:
    taxonomy: Taxonomy
    settings: Settings
    store: EvidenceStore
    cameras: dict[str, Camera]
    # Told (case, old status, new status, source) on every change apply_status makes, before the
    # caller commits (detector/runtime/events.py sends it after the commit). Must not raise.
    on_status: Callable[[Case, str, str, str], None] | None = None
    flow: CaseFlow = field(init=False)

    def __post_init__(self) -> None:
        self.flow = CaseFlow.load(self.settings.filing.transitions)

    # ------------------------------------------------------------ policy

    def policy(self, camera: Camera, code: str) -> FilingPolicy:
        return camera.filing.get(code) or self.taxonomy[code].filing

    def auto_files(self, camera: Camera, inc: Incident) -> bool:
        pol = self.policy(camera, inc.problem_code)
        minutes = (inc.last_seen_at - inc.first_seen_at).total_seconds() / 60
        return pol.mode == "auto" and inc.score >= pol.min_score and minutes >= pol.min_minutes

    # ------------------------------------------------------------ incident hooks

    def on_opened(self, s: Session, inc: Incident) -> Case | None:
        """A new incident: file it, or queue it for an operator."""
        camera = self.cameras[inc.camera_id]
        if self.auto_files(camera, inc):
            inc.review_state = None
            return self.create(s, inc)
        inc.review_state = "pending"
        return None

    def on_recurred(self, s: Session, inc: Incident, ts: datetime, evidence: list[EvidenceFile]) -> Case | None:
        """The problem is back: a still-open case hears about it, a closed one gets a linked successor."""
        last = self.latest_case(s, inc.id)
        if last is None:
            return self.on_opened(s, inc)
        if last.status not in TERMINAL:
            self._update(s, last, "still_present", None, ts, "问题再次出现", evidence)
            return None
        closed_at = self._closed_at(s, last)
        window = timedelta(hours=self.settings.filing.recurrence_window_hours)
        linked = last.id if closed_at is not None and ts - closed_at <= window else None
        return self.create(s, inc, recurrence_of=linked)

    def on_present(self, s: Session, inc: Incident, ts: datetime, image: NDArray[np.uint8]) -> None:
        """Still there: report 'not resolved' to a verification, or refresh an overdue case's evidence."""
        case = self.open_case(s, inc.id)
        if case is None:
            return
        f = self.settings.filing
        if case.verification == "checking" and case.verify_started_at is not None:
            if ts - case.verify_started_at >= timedelta(minutes=f.verify_grace_minutes):
                ev = self._evidence(s, inc, "fresh", image, ts)
                case.verification = "not_resolved"
                self._update(s, case, "verification", "not_resolved", ts, "核查：问题仍然存在", [ev])
        elif ts > case.deadline and (
            case.last_update_at is None or ts - case.last_update_at >= timedelta(minutes=f.escalate_every_minutes)
        ):
            ev = self._evidence(s, inc, "fresh", image, ts)
            case.last_update_at = ts
            self._update(s, case, "still_present", None, ts, "超期仍存在", [ev])

    def on_cleared(self, s: Session, inc: Incident, ts: datetime, image: NDArray[np.uint8]) -> None:
        """Gone: a verification in progress reports 'cleared' with the after picture."""
        case = self.open_case(s, inc.id)
        if case is not None and case.verification in ("checking", "not_resolved"):
            ev = self._evidence(s, inc, "after", image, ts)
            case.verification = "cleared"
            self._update(s, case, "verification", "cleared", ts, "核查：问题已消除", [ev])
            # Stand-alone, the camera's 核查 is the verdict; a platform decides for itself.
            if isinstance(self.settings.platform, LocalPlatform) and case.status == "handled":
                self.apply_status(s, case, "verified", source="verification", note="核查：问题已消除")

    # ------------------------------------------------------------ review queue

    def review(
        self, s: Session, incident_id: int, verdict: str, *, code: str | None = None, note: str = "",
        box: tuple[float, float, float, float] | None = None,
    ) -> Case | None:  # fmt: skip
        """An operator's verdict on a pending incident: confirm (file), reject, or relabel (file as `code`).

        Raises:
            ReviewError: the incident is unknown or not pending, or the verdict/code is invalid.
        """
        inc = s.get(Incident, incident_id)
        if inc is None:
            raise ReviewError(f"no incident {incident_id}")
        if inc.review_state != "pending":
            raise ReviewError(f"incident {incident_id} is not waiting for review (review_state={inc.review_state})")
        if verdict not in REVIEW_VERDICTS:
            raise ReviewError(f"verdict must be one of {REVIEW_VERDICTS}, got {verdict!r}")
        inc.review_note = note or None
        if verdict == "reject":
            inc.review_state = "rejected"
            return None
        if verdict == "relabel":
            if code is None or code not in self.taxonomy:
                raise ReviewError(f"relabel needs a known problem code, got {code!r}")
            inc.details = {**(inc.details or {}), "relabelled_from": inc.problem_code}
            if box is not None:
                if not (box[0] < box[2] and box[1] < box[3]):
                    raise ReviewError(f"box must be x0 < x1 and y0 < y1, got {box}")
                inc.details["box_from"] = inc.box
                inc.box = list(box)
            inc.problem_code = code
            inc.review_state = "relabelled"
        else:
            inc.review_state = "confirmed"
        return self.create(s, inc)

    # ------------------------------------------------------------ cases

    def create(self, s: Session, inc: Incident, recurrence_of: int | None = None) -> Case:
        """A case and its 'file' message, in the caller's transaction."""
        camera = self.cameras[inc.camera_id]
        problem = self.taxonomy[inc.problem_code]
        rule = problem.time_limit(camera.location.area_class, camera.urgency)
        deadline = self.settings.calendar.deadline(inc.opened_at, TimeLimit(amount=rule.amount, unit=rule.unit))
        now = datetime.now(UTC)
        key = uuid.uuid4().hex
        case = Case(
            incident_id=inc.id, idempotency_key=key, problem_code=inc.problem_code, payload={}, status="queued",
            deadline=deadline, recurrence_of=recurrence_of, created_at=now, updated_at=now,
        )  # fmt: skip
        s.add(case)
        s.flush()
        case.payload = build_payload(problem, camera, inc, deadline=deadline, key=key, case_id=case.id)
        evidence = [e.id for e in self._bundle(s, inc.id)]
        s.add(CaseHistory(case_id=case.id, ts=now, from_status=None, to_status="queued", source="gridsight"))
        self._enqueue(s, case, "file", {"evidence": evidence}, key)
        log.info("case queued", extra={"case": case.id, "incident": inc.id, "problem": inc.problem_code})
        return case

    def apply_status(
        self, s: Session, case: Case, status: str, *, source: str, note: str | None = None, at: datetime | None = None
    ) -> bool:
        """Moves a case along the flow (history kept); returns False when it did not move.

        `at` is the platform's time of the status: an update older than the case's status is
        recorded in the history as stale and changes nothing.

        Raises:
            ValueError: an unknown status.
            TransitionRefused: the flow does not allow `source` this move (nothing written).
        """
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        if status == case.status:
            return False
        # Case time is the camera's clock (wall time for live cameras, video time for files),
        # so verification and recurrence windows compare like with like.
        now = self._camera_clock(s, case) or datetime.now(UTC)
        old = case.status
        if at is not None and case.status_at is not None and at < case.status_at:
            s.add(CaseHistory(case_id=case.id, ts=now, from_status=old, to_status=status, source=source,
                              note=note, stale=True))  # fmt: skip
            log.info("stale case status ignored", extra={"case": case.id, "status": status, "source": source})
            return False
        self.flow.check(case.id, source, old, status)
        self._move(s, case, status, source=source, note=note, now=now)
        case.status_at = at
        return True

    def reopen(self, s: Session, case: Case, reason: str) -> str:
        """Takes a closed or voided case back to the status it had before; returns that status.

        Raises:
            TransitionRefused: the case is not closed or voided.
        """
        if case.status not in TERMINAL:
            msg = f"case {case.id} is {case.status!r}: only a closed or voided case can be reopened"
            raise TransitionRefused(msg, case.status, "reopen")
        into_terminal = s.scalar(
            select(CaseHistory.from_status)
            .where(CaseHistory.case_id == case.id, CaseHistory.to_status == case.status, CaseHistory.stale.is_(False))
            .order_by(CaseHistory.id.desc())
            .limit(1)
        )
        back = into_terminal if into_terminal in STATUSES and into_terminal not in TERMINAL else "dispatched"
        self._move(s, case, back, source="reopen", note=reason, now=self._camera_clock(s, case) or datetime.now(UTC))
        case.status_at = None
        return back

    def _move(self, s: Session, case: Case, status: str, *, source: str, note: str | None, now: datetime) -> None:
        old = case.status
        s.add(CaseHistory(case_id=case.id, ts=now, from_status=old, to_status=status, source=source, note=note))
        case.status, case.updated_at = status, datetime.now(UTC)
        if status == "handled":  # 核查: the camera's next analyses decide
            case.verification = "checking"
            case.verify_started_at = now
        elif status in ("accepted", "filed", "dispatched"):  # back before 处置: a later 处置 is checked anew
            case.verification = case.verify_started_at = None
        log.info("case status", extra={"case": case.id, "status": status, "source": source})
        if self.on_status is not None:
            self.on_status(case, old, status, source)

    def latest_case(self, s: Session, incident_id: int) -> Case | None:
        return s.scalar(select(Case).where(Case.incident_id == incident_id).order_by(Case.id.desc()).limit(1))

    def open_case(self, s: Session, incident_id: int) -> Case | None:
        case = self.latest_case(s, incident_id)
        return case if case is not None and case.status not in TERMINAL else None

    # ------------------------------------------------------------ internals

    def _update(
        self, s: Session, case: Case, kind: str, result: str | None, ts: datetime, note: str, ev: list[EvidenceFile]
    ) -> None:
        s.flush()
        body = {"kind": kind, "result": result, "ts": ts.isoformat(), "note": note, "evidence": [e.id for e in ev]}
        self._enqueue(s, case, "update", body, uuid.uuid4().hex)

    def _enqueue(self, s: Session, case: Case, kind: str, payload: dict[str, Any], key: str) -> None:
        now = datetime.now(UTC)
        msg = Outbox(
            case_id=case.id, kind=kind, idempotency_key=key, payload=payload, state="pending", attempts=0,
            next_attempt_at=now, created_at=now, updated_at=now,
        )  # fmt: skip
        s.add(msg)

    def _evidence(self, s: Session, inc: Incident, kind: str, image: NDArray[np.uint8], ts: datetime) -> EvidenceFile:
        f = self.store.put_jpeg(kind, image)  # on disk before the row commits
        row = EvidenceFile(incident_id=inc.id, kind=kind, path=f.path, sha256=f.sha256, bytes=f.bytes, created_at=ts)
        s.add(row)
        return row

    def _bundle(self, s: Session, incident_id: int) -> list[EvidenceFile]:
        """The newest first-seen, clean, annotated and clip files of the incident."""
        rows = s.scalars(
            select(EvidenceFile).where(EvidenceFile.incident_id == incident_id).order_by(EvidenceFile.id.desc())
        ).all()
        newest: dict[str, EvidenceFile] = {}
        for r in rows:
            if r.kind in BUNDLE_KINDS:
                newest.setdefault(r.kind, r)
        return sorted(newest.values(), key=lambda r: r.id)

    def _closed_at(self, s: Session, case: Case) -> datetime | None:
        return s.scalar(
            select(CaseHistory.ts)
            .where(CaseHistory.case_id == case.id, CaseHistory.to_status.in_(TERMINAL))
            .order_by(CaseHistory.id.desc())
            .limit(1)
        )

    def _camera_clock(self, s: Session, case: Case) -> datetime | None:
        inc = s.get(Incident, case.incident_id)
        row = s.get(CameraRow, inc.camera_id) if inc else None
        return row.last_frame_at if row else None
