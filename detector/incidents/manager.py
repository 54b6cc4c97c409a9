"""Incidents: one per real problem, with its evidence, surviving restarts.

Per analysis the manager feeds the camera's findings to its persistence
tracker, asks `decide` what happens at each key, and writes the result in one
transaction. Opening waits for the clip's post-roll: the evidence bundle
(clean JPEG, annotated JPEG, MP4) is on disk before the row commits; the
annotated picture of the first sighting was stored when the persistence
window began, its path kept with the candidate so a restart loses nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from detector.config import DEFAULT_TZ, Camera
from detector.filing.cases import CaseService, zone_label
from detector.incidents.evidence import EvidenceStore, StoredFile, annotate
from detector.ingest.ring import PacketRing
from detector.rules.engine import MAINTENANCE, CameraRules, Finding
from detector.rules.persistence import Action, Candidate, PersistenceTracker, decide
from detector.rules.taxonomy import Taxonomy
from detector.store.db import CameraRow, EvidenceFile, Incident, IncidentEvent
from detector.store.db import Candidate as CandidateRow

log = logging.getLogger(__name__)

CLIP_WAIT_S = 60.0  # wall seconds to wait for a clip before filing without it
MAINTENANCE_NAME = "Camera view changed"  # caption of maintenance evidence (not a taxonomy problem)
MAINTENANCE_NAME_ZH = "摄像头视角变化"


@dataclass
class ActiveIncident:
    id: int
    state: str
    last_seen: datetime
    away_at_seen: timedelta = timedelta(0)  # the camera's `away` when it was last seen


@dataclass
class PendingOpen:
    """An incident whose evidence is being gathered (waiting for the clip's post-roll)."""

    camera: Camera
    key: str
    action: Action
    candidate: Candidate
    ts: datetime
    files: list[StoredFile]
    clip: Future[Path | None] | None
    reopen_id: int | None
    owner: str  # the key of the CameraIncidents it belongs to
    started: float = field(default_factory=time.monotonic)


@dataclass
class CameraIncidents:
    """What the manager keeps per camera (all of it reloadable from the database)."""

    rules: CameraRules
    tracker: PersistenceTracker
    ring: PacketRing | None
    prefix: str  # what every case key here starts with: "camera|", or "camera|preset|" for one patrol stop
    active: dict[str, ActiveIncident] = field(default_factory=dict)
    cleared: dict[str, datetime] = field(default_factory=dict)  # key -> when it last cleared
    # Unobserved time so far: a patrolling camera looking at its other presets. It does not count towards
    # clearing, else every problem would clear on each lap (its clear_minutes passing while the camera is away).
    away: timedelta = timedelta(0)


class IncidentManager:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: EvidenceStore,
        taxonomy: Taxonomy,
        recur_window: timedelta = timedelta(hours=24),
        on_event: Callable[[str, Incident], None] | None = None,
        cases: CaseService | None = None,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.taxonomy = taxonomy
        self.recur_window = recur_window
        self.on_event = on_event
        self.cases = cases  # None: incidents only, nothing is filed
        self.cameras: dict[str, CameraIncidents] = {}
        self.pending: dict[str, PendingOpen] = {}
        self._spared: set[str] = set()  # unreferenced, but too young to delete yet: tried again when older

    # ------------------------------------------------------------ setup

    def attach(self, rules: CameraRules, ring: PacketRing | None, key: str | None = None) -> CameraIncidents:
        """Loads a camera's active incidents and persistence candidates from the database.

        `key`: where `process` finds this state; None: the camera id. A patrol stop's state is one
        preset's own (`rules.camera` is `Camera.at_stop`): only the incidents and candidates keyed by it.
        """
        cam = rules.camera
        key = key or cam.id
        prefix = f"{cam.id}|" if key == cam.id else f"{cam.id}|{cam.ptz_preset or '-'}|"
        tracker = PersistenceTracker(rules)
        state = CameraIncidents(rules, tracker, ring, prefix)
        with self.sessions.begin() as s:
            if s.get(CameraRow, cam.id) is None:  # the row that carries the camera's clock
                s.add(CameraRow(id=cam.id, name=cam.name, state="connecting", updated_at=datetime.now(UTC)))
            mine = Incident.case_key.startswith(prefix, autoescape=True)
            for inc in s.scalars(
                select(Incident).where(Incident.camera_id == cam.id, mine, Incident.active_key.is_not(None))
            ):
                state.active[inc.case_key] = ActiveIncident(inc.id, inc.state, inc.last_seen_at)
            last_cleared = (
                select(Incident.case_key, func.max(Incident.cleared_at))
                .where(Incident.camera_id == cam.id, mine, Incident.state == "cleared")
                .group_by(Incident.case_key)
            )
            state.cleared = {key: at for key, at in s.execute(last_cleared)}
            for row in s.scalars(select(CandidateRow).where(CandidateRow.camera_id == cam.id)):
                if not row.case_key.startswith(prefix):
                    continue  # another preset's
                code = row.case_key.split("|")[3]
                if code not in rules.rules:
                    continue  # the camera no longer watches this problem
                n = rules.rules[code].persistence.n
                tracker.candidates[row.case_key] = Candidate.from_row(row.case_key, code, n, row)
        self.cameras[key] = state
        return state

    # ------------------------------------------------------------ per analysis

    def process(
        self,
        camera_id: str,
        image: NDArray[np.uint8],
        findings: list[Finding],
        ts: datetime,
        codes: frozenset[str] | None = None,
        away: timedelta = timedelta(0),
    ) -> None:
        """One analysis of a camera (`camera_id`: the key it was attached under); `codes`: only these problems
        were looked at (the others stand still); `away`: how long before this frame the view went unobserved
        (a patrol elsewhere), which its open incidents do not count towards clearing."""
        cam = self.cameras[camera_id]
        cam.away += away
        keep = set(cam.active) | {k for k in self.pending if k.startswith(cam.prefix)}
        recent = [k for k, at in cam.cleared.items() if timedelta(0) <= ts - at <= self.recur_window]
        frames_before = {c.first_frame for c in cam.tracker.candidates.values()} - {None}
        hit = cam.tracker.update(findings, ts, keep, recent, codes)
        for key, c in hit.items():
            if c.first_seen == ts and key not in keep:  # a persistence window starts: keep its picture
                c.first_frame = self._first_sighting(cam, key, c, image, ts).path
        updates: list[tuple[Action, str, Candidate]] = []
        for key, c in cam.tracker.candidates.items():
            if key in self.pending or (codes is not None and c.problem_code not in codes):
                continue
            act = cam.active.get(key)
            qualifies = act is None and cam.tracker.qualifies(c, ts)
            action = decide(
                hit=key in hit,
                qualifies=qualifies,
                active_last_seen=act.last_seen if act else None,
                away=cam.away - act.away_at_seen if act else timedelta(0),
                last_cleared_at=cam.cleared.get(key) if qualifies else None,
                ts=ts,
                rule=cam.tracker.rule(c),
                recur_window=self.recur_window,
            )
            if action in (Action.OPEN, Action.RECUR):
                self._begin_open(camera_id, cam, key, action, c, image, ts)
            elif action is not None:
                updates.append((action, key, c))
        if cam.ring is not None:  # every clip this frame needs is requested: the ring may let older packets go
            cam.ring.analysed(ts)
        with self.sessions.begin() as s:
            for action, key, c in updates:
                self._apply(s, cam, action, key, c, ts, image)
            cam_id = cam.rules.camera.id
            s.execute(update(CameraRow).where(CameraRow.id == cam_id).values(last_frame_at=ts))
            s.execute(
                delete(CandidateRow).where(
                    CandidateRow.camera_id == cam_id, CandidateRow.case_key.startswith(cam.prefix, autoescape=True)
                )
            )
            s.add_all(CandidateRow(camera_id=cam_id, **c.to_row()) for c in cam.tracker.candidates.values())
        gone = frames_before - {c.first_frame for c in cam.tracker.candidates.values()}
        gone |= self.store.past_grace(self._spared)
        if gone:  # windows that ended without an incident, or pictures replaced: after the commit, as always
            self._unlink_unreferenced(gone)

    def _apply(
        self, s: Session, cam: CameraIncidents, action: Action, key: str, c: Candidate, ts: datetime, image: NDArray
    ) -> None:
        act = cam.active[key]
        inc = s.get(Incident, act.id)
        if inc is None:  # deleted behind our back: forget it
            del cam.active[key]
            return
        if action is Action.PRESENT:
            inc.last_seen_at = ts
            inc.score = max(inc.score, c.score)
            act.last_seen, act.away_at_seen = ts, cam.away
            if (cases := self._cases_for(inc.problem_code)) is not None:
                cases.on_present(s, inc, ts, image)
            if inc.state not in ("open", "recurred") or ts <= inc.opened_at:
                return  # still present: the row is updated, no event, no log line
            inc.state = act.state = "present"
            s.add(IncidentEvent(incident_id=inc.id, ts=ts, kind=Action.PRESENT.value, details={"score": c.score}))
        elif action is Action.CLEAR:
            inc.state, inc.active_key, inc.cleared_at = "cleared", None, ts
            s.add(
                IncidentEvent(
                    incident_id=inc.id, ts=ts, kind=Action.CLEAR.value, details={"last_seen": act.last_seen.isoformat()}
                )
            )
            del cam.active[key]
            cam.cleared[key] = ts
            if (cases := self._cases_for(inc.problem_code)) is not None:
                cases.on_cleared(s, inc, ts, image)
        self._log(action, inc)

    # ------------------------------------------------------------ opening

    def _begin_open(
        self,
        owner: str,
        cam: CameraIncidents,
        key: str,
        action: Action,
        c: Candidate,
        image: NDArray[np.uint8],
        ts: datetime,
    ) -> None:
        camera = cam.rules.camera
        minutes = max(0, int((ts - c.first_seen).total_seconds() // 60))
        files = [
            self.store.put_jpeg("clean", image),
            self.store.put_jpeg("annotated", self._annotated(cam, key, c, image, ts, f"确认 已持续{minutes}分钟")),
        ]
        if c.first_frame is not None:
            try:
                files.insert(0, self.store.stored("first_seen", c.first_frame))
            except FileNotFoundError:
                log.warning("first-seen picture missing", extra={"camera": camera.id, "case_key": key})
        clip = None
        if cam.ring is not None:
            ev = camera.evidence
            clip = cam.ring.request(
                ts - timedelta(seconds=ev.pre_s), ts + timedelta(seconds=ev.post_s), self.store.new_tmp_path(".mp4")
            )
        reopen_id = None
        if action is Action.RECUR:
            with self.sessions() as s:
                reopen_id = s.scalar(
                    select(Incident.id)
                    .where(Incident.case_key == key, Incident.state == "cleared")
                    .order_by(Incident.cleared_at.desc())
                    .limit(1)
                )
        self.pending[key] = PendingOpen(camera, key, action, c, ts, files, clip, reopen_id, owner)

    def _annotated(
        self, cam: CameraIncidents, key: str, c: Candidate, image: NDArray[np.uint8], ts: datetime, stage: str
    ) -> NDArray[np.uint8]:
        """The annotated picture of `c` at `ts`; `stage` (首次发现, 确认 …) goes into the caption."""
        camera = cam.rules.camera
        problem = self.taxonomy[c.problem_code] if c.problem_code in self.taxonomy else None
        name_zh = problem.name_zh if problem else MAINTENANCE_NAME_ZH
        name_en = problem.name_en if problem else MAINTENANCE_NAME
        zone_name = key.split("|")[2]
        zone = cam.rules.zones.zones.get(zone_name)
        place = "" if zone is None else f"  {zone_label(camera, zone_name)}"
        local = ts.astimezone(ZoneInfo(DEFAULT_TZ)).strftime("%Y-%m-%d %H:%M:%S %z")
        return annotate(
            image, [c.box], [f"{c.problem_code} {name_zh} {c.score:.2f}"], zone.polygon if zone else None,
            f"{camera.id}  {local}  {stage}  {c.problem_code} {name_zh}{place}",
            ascii_labels=[f"{c.problem_code} {name_en} {c.score:.2f}"],
            ascii_caption=f"{camera.id}  {local}  {c.problem_code} {name_en}",
        )  # fmt: skip

    def _first_sighting(
        self, cam: CameraIncidents, key: str, c: Candidate, image: NDArray[np.uint8], ts: datetime
    ) -> StoredFile:
        """The picture of the moment a persistence window starts, on disk before its candidate row commits."""
        return self.store.put_jpeg("first_seen", self._annotated(cam, key, c, image, ts, "首次发现"))

    def poll(self, force: bool = False) -> int:
        """Commits the pending openings whose clip is ready (all of them when `force`)."""
        done = 0
        for key, p in list(self.pending.items()):
            timed_out = time.monotonic() - p.started > CLIP_WAIT_S
            if p.clip is not None and not p.clip.done() and not (force or timed_out):
                continue
            del self.pending[key]
            files = list(p.files)
            if p.clip is not None and not p.clip.done():
                p.clip.cancel()  # filed without a clip; the ring unlinks its temp file
            if p.clip is not None and p.clip.done() and not p.clip.cancelled():
                try:
                    path = p.clip.result()
                except Exception as e:  # a failed clip must not lose the incident
                    log.warning("clip failed", extra={"camera": p.camera.id, "case_key": key, "error": str(e)})
                    path = None
                if path is not None:
                    files.append(self.store.put_file("clip", path))
            self._commit_open(p, files)
            done += 1
        return done

    def _commit_open(self, p: PendingOpen, files: list[StoredFile]) -> None:
        cam = self.cameras[p.owner]
        c, ts = p.candidate, p.ts
        zone = p.key.split("|")[2]
        details = {"label": c.finding.label if c.finding else None, "extras": c.finding.extras if c.finding else {}}
        try:
            with self.sessions.begin() as s:
                inc = s.get(Incident, p.reopen_id) if p.reopen_id is not None else None
                if inc is not None and inc.active_key is None:
                    inc.state, inc.active_key, inc.cleared_at = "recurred", p.key, None
                    inc.recurrences += 1
                    inc.last_seen_at, inc.score, inc.box = ts, c.score, list(c.box)
                else:
                    inc = Incident(
                        case_key=p.key, active_key=p.key, camera_id=p.camera.id, ptz_preset=p.camera.ptz_preset,
                        zone=zone, problem_code=c.problem_code, state="open", opened_at=ts,
                        first_seen_at=c.first_seen, last_seen_at=ts, cleared_at=None, recurrences=0,
                        score=c.score, box=list(c.box), details=details,
                    )  # fmt: skip
                    s.add(inc)
                    s.flush()
                event = IncidentEvent(incident_id=inc.id, ts=ts, kind=p.action.value, details={"score": c.score})
                s.add(event)
                now = datetime.now(ts.tzinfo)
                rows = [
                    EvidenceFile(
                        incident_id=inc.id, kind=f.kind, path=f.path, sha256=f.sha256, bytes=f.bytes, created_at=now
                    )
                    for f in files
                ]
                s.add_all(rows)
                s.flush()
                if (cases := self._cases_for(c.problem_code)) is not None:  # commit with the incident
                    if p.action is Action.OPEN:
                        cases.on_opened(s, inc)
                    else:
                        cases.on_recurred(s, inc, ts, rows)
        except IntegrityError:
            # Another writer (or an earlier life of this process) holds an active incident
            # at this key: it is the same problem, so nothing new is opened.
            log.info("incident already active", extra={"camera": p.camera.id, "case_key": p.key})
            self._drop_unreferenced(files)
            with self.sessions() as s:
                row = s.scalar(select(Incident).where(Incident.active_key == p.key))
                if row is not None:
                    cam.active[p.key] = ActiveIncident(row.id, row.state, row.last_seen_at, cam.away)
            return
        cam.active[p.key] = ActiveIncident(inc.id, inc.state, ts, cam.away)
        self._log(p.action, inc)

    def _cases_for(self, code: str) -> CaseService | None:
        """Who files incidents of `code` (None: nobody; maintenance incidents stay with the operators)."""
        return None if code == MAINTENANCE else self.cases

    def _drop_unreferenced(self, files: list[StoredFile]) -> None:
        self._unlink_unreferenced({f.path for f in files})

    def _unlink_unreferenced(self, paths: set[str]) -> None:
        """Deletes those of `paths` that no evidence row and no candidate refers to; young ones are tried again
        later (another writer may have put the same bytes and not yet committed its row: evidence.GRACE_S)."""
        with self.sessions() as s:
            used = set(s.scalars(select(EvidenceFile.path).where(EvidenceFile.path.in_(paths))))
            used |= set(s.scalars(select(CandidateRow.first_frame).where(CandidateRow.first_frame.in_(paths))))
        self._spared = (self._spared - paths) | self.store.unlink_unused(paths, used)

    def _log(self, action: Action, inc: Incident) -> None:
        log.info(
            f"incident {action.value}",
            extra={
                "incident": inc.id,
                "camera": inc.camera_id,
                "problem": inc.problem_code,
                "case_key": inc.case_key,
                "state": inc.state,
            },
        )
        if self.on_event is not None:
            self.on_event(action.value, inc)
