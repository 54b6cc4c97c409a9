"""The running side of 核实: the cameras this process analyses answer their pending looks from their frames.

A thread picks up new looks from the database (requests come in through any API process), answers
those of a camera that cannot see (failed, stalled, ended) and sweeps deadlines; the analysis loop
hands each analysed frame to `seen`. A fixed camera answers from its next analysed frame (within one
cadence; its analyzers are warm, so that frame's finding is already their verdict over their last
analyses). A patrolling PTZ camera answers from its visit at the preset: the visit's settled analyses
are gathered until `look.visit_verdict` decides (3 of the last 5 hold the finding: present; 5 without:
absent; the visit over before that: its frames by majority). Looks live in the database, so a restart
loses none: they are picked up again and answered by the frames after it (a visit's tally is not kept).

An open incident of the problem at the camera (or preset) is not counted as evidence: it was confirmed
over minutes, and it clears only after `clear_minutes` unseen (10 for piled sundries), so it stands well
after the pile has gone; the centre asks whether it is there now, which only the frames say.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from detector.config import DEFAULT_TZ, Camera
from detector.incidents.evidence import EvidenceStore, StoredFile, annotate
from detector.ingest.health import CameraState, HealthSnapshot
from detector.rules.engine import CameraRules, Finding
from detector.rules.taxonomy import Taxonomy
from detector.store.db import Verification, VerificationLook
from detector.types import Frame, Observations
from detector.verification import requests
from detector.verification.look import findings_of, visit_verdict

log = logging.getLogger(__name__)

TICK_S = 0.25
# not STOPPED: that is our own shutdown, and its looks wait for the frames after the restart
CANNOT_SEE = {CameraState.FAILED, CameraState.STALLED, CameraState.ENDED}
UNUSABLE_FRAMES = 2  # blank or off-reference frames in a row (not yet a confirmed tamper) that answer cannot_see


@dataclass(slots=True)
class Pending:
    look_id: int
    code: str
    preset: str | None
    since: float  # monotonic s when this process picked it up: only frames decoded later answer
    unusable: int = 0
    # a patrolling camera: the visit whose settled analyses are being gathered (None: none yet), did each hold
    # the finding, the newest frame that did (with its findings) and the newest frame of the visit
    visit: int | None = None
    hits: list[bool] = field(default_factory=list)
    found: tuple[Frame, list[Finding]] | None = None
    last: Frame | None = None
    stop: tuple[Camera, CameraRules] | None = None  # the preset's view whose frames were gathered (its zones)


class VerificationDesk:
    def __init__(
        self, sessions: sessionmaker[Session], store: EvidenceStore, taxonomy: Taxonomy, *,
        served: Callable[[], Iterable[str]], health: Callable[[str], HealthSnapshot | None],
    ) -> None:  # fmt: skip
        self.sessions = sessions
        self.store = store
        self.taxonomy = taxonomy
        self._served = served  # ids of the cameras this process analyses now
        self._health = health
        self._pending: dict[str, list[Pending]] = {}  # camera id → its pending looks, oldest first
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="verification", daemon=True)
        self.answered = 0

    def start(self) -> None:
        """Picks up the looks a restart left pending before the first frame, then keeps ticking."""
        try:
            self.tick()
        except Exception:
            log.exception("verification tick failed")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def wanted_preset(self, camera_id: str) -> str | None:
        """The preset a pending 核实 request needs this PTZ camera at (the oldest first); None: none needed.

        The patrol (detector/ingest/patrol.py) asks before it picks its next stop, and goes there: the look is
        answered from that visit's frames (`Camera.at_stop` sets ptz_preset). A look already gathering a visit
        needs no other.
        """
        with self._lock:
            looks = self._pending.get(camera_id, ())
            return next((p.preset for p in looks if p.preset is not None and p.visit is None), None)

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except Exception:  # a database blip must not end the loop; the next tick tries again
                log.exception("verification tick failed")

    def tick(self) -> None:
        """Picks up new looks of the served cameras, answers those that cannot see, sweeps deadlines."""
        served = set(self._served())
        with self.sessions() as s:
            rows = s.execute(
                select(VerificationLook.id, VerificationLook.camera_id, VerificationLook.preset,
                       Verification.problem_code)
                .join(Verification)
                .where(VerificationLook.state == "pending", VerificationLook.camera_id.in_(served))
                .order_by(VerificationLook.id)
            ).all()  # fmt: skip
        now = time.monotonic()
        with self._lock:
            known = {p.look_id: p for looks in self._pending.values() for p in looks}
            fresh: dict[str, list[Pending]] = {}
            for look_id, camera_id, preset, code in rows:  # looks answered elsewhere drop out here
                fresh.setdefault(camera_id, []).append(known.get(look_id) or Pending(look_id, code, preset, now))
            self._pending = fresh
            waiting = list(fresh)
        for camera_id in waiting:
            snap = self._health(camera_id)
            if snap is not None and snap.state in CANNOT_SEE:
                for p in self._take(camera_id, lambda _p: True):
                    self._answer(p, "cannot_see", reason=f"camera {snap.state.value}")
        with self.sessions.begin() as s:
            if n := requests.expire(s):
                log.info("verification looks past their deadline", extra={"looks": n})

    # ------------------------------------------------------------ frames (the analysis thread)

    def seen(
        self, camera: Camera, rules: CameraRules, view: str | None, frame: Frame, obs: Observations | None,
        visit: int | None = None,
    ) -> None:  # fmt: skip
        """An analysed frame of `camera`: answers its pending looks, or adds to what they gathered. `obs` None:
        the frame was not usable (blank, or the view off its reference; `view` names a confirmed fault).
        `visit`: the patrol visit of a patrolling camera's settled frame (None: a fixed camera)."""
        if camera.id not in self._pending:  # the common case, without the lock
            return
        try:
            with self._lock:
                looks = list(self._pending.get(camera.id, ()))
            done = {p.look_id for p in looks if self._look(p, camera, rules, view, frame, obs, visit)}
            if done:
                self._take(camera.id, lambda p: p.look_id in done)
        except Exception:
            log.exception("verification look failed", extra={"camera": camera.id})

    def _look(
        self, p: Pending, camera: Camera, rules: CameraRules, view: str | None, frame: Frame, obs: Observations | None,
        visit: int | None,
    ) -> bool:  # fmt: skip
        """One frame for one look (only the analysis thread changes a Pending); True: the look is answered."""
        if visit is not None and p.visit is not None and p.visit != visit:  # the patrol left before a verdict
            assert p.stop is not None
            return self._conclude(p, *p.stop, over=True)
        if frame.arrived < p.since or p.preset != camera.ptz_preset:
            return False
        if p.code not in rules.rules:
            self._answer(p, "cannot_see", reason=f"camera {camera.id} no longer watches {p.code}")
            return True
        if obs is None and view is None and p.unusable + 1 < UNUSABLE_FRAMES:
            p.unusable += 1  # one odd frame is not yet a blocked view: wait for the next
            return False
        if obs is None:
            why = f"view {view}" if view else "view not usable (blank, or off its reference)"
            self._answer(p, "cannot_see", reason=why, frame=frame, files=[self.store.put_jpeg("clean", frame.image)])
            return True
        p.unusable = 0
        found = findings_of(rules, p.code, obs, frame.ts)
        p.last = frame
        if found:
            p.found = (frame, found)
        if visit is None:  # a fixed camera: this frame answers
            p.hits = [bool(found)]
            return self._conclude(p, camera, rules, over=True)
        p.visit, p.stop = visit, (camera, rules)
        p.hits.append(bool(found))
        return self._conclude(p, camera, rules, over=False)

    def _conclude(self, p: Pending, camera: Camera, rules: CameraRules, *, over: bool) -> bool:
        """Answers the look if what it gathered decides; True: answered."""
        result = visit_verdict(p.hits, over=over)
        if result is None:
            return False
        details = {"analyses": len(p.hits), "with_finding": sum(p.hits)}
        if result == "absent":
            assert p.last is not None
            self._answer(p, "absent", frame=p.last, files=[self.store.put_jpeg("clean", p.last.image)], details=details)
            return True
        assert p.found is not None
        frame, found = p.found
        pictured = self.store.put_jpeg("annotated", self._annotated(camera, rules, p.code, found, frame))
        clean = self.store.put_jpeg("clean", frame.image)
        details["findings"] = [
            {"zone": f.zone, "box": list(f.box), "score": round(f.score, 3), "label": f.label} for f in found
        ]
        self._answer(p, "present", frame=frame, files=[pictured, clean], details=details)
        return True

    def _annotated(
        self, camera: Camera, rules: CameraRules, code: str, found: list[Finding], frame: Frame
    ) -> NDArray[np.uint8]:
        problem = self.taxonomy[code]
        zone = rules.zones.zones.get(found[0].zone)
        local = frame.ts.astimezone(ZoneInfo(DEFAULT_TZ)).strftime("%Y-%m-%d %H:%M:%S %z")
        return annotate(
            frame.image, [f.box for f in found], [f"{code} {problem.name_zh} {f.score:.2f}" for f in found],
            zone.polygon if zone else None, f"{camera.id}  {local}  核实：仍存在  {code} {problem.name_zh}",
            ascii_labels=[f"{code} {problem.name_en} {f.score:.2f}" for f in found],
            ascii_caption=f"{camera.id}  {local}  verification: present  {code} {problem.name_en}",
        )  # fmt: skip

    # ------------------------------------------------------------ answering

    def _take(self, camera_id: str, which: Callable[[Pending], bool]) -> list[Pending]:
        with self._lock:
            looks = self._pending.get(camera_id, [])
            taken = [p for p in looks if which(p)]
            rest = [p for p in looks if not which(p)]
            if rest:
                self._pending[camera_id] = rest
            else:
                self._pending.pop(camera_id, None)
        return taken

    def _answer(
        self, p: Pending, state: str, *, reason: str | None = None, frame: Frame | None = None,
        files: list[StoredFile] = [], details: dict | None = None,  # noqa: B006 - never mutated
    ) -> None:  # fmt: skip
        at: datetime | None = frame.ts if frame is not None else None
        with self.sessions.begin() as s:
            won = requests.answer(s, p.look_id, state, reason=reason, frame_at=at, details=details, files=files)
        self.answered += won
        log.info("verification look answered" if won else "verification look was answered already",
                 extra={"look": p.look_id, "result": state, "reason": reason})  # fmt: skip
