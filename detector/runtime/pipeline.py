"""The analysis loop: due frames from every camera → gate → analyzers → rules → incidents."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.analysis.base import Analyzer, Stateful, pack_states
from detector.analysis.gate import SceneGate
from detector.analysis.tamper import TamperDetector
from detector.config import Camera
from detector.incidents.manager import IncidentManager
from detector.ingest.health import CameraHealth
from detector.ingest.patrol import Patrol
from detector.rules.engine import MAINTENANCE, CameraRules, Finding
from detector.types import Frame, Observations

log = logging.getLogger(__name__)

STATE_EVERY = timedelta(minutes=5)  # how often (pipeline time) analyzer state is saved
BLANK_STD = 2.0  # grey std (0-255) of a small copy below which a frame is blank: black, grey, one colour
ONLY_MAINTENANCE = frozenset({MAINTENANCE})


class FrameQueues:
    """One short queue per camera, served round-robin.

    Live cameras never wait: when their queue is full the oldest frame is
    dropped (and counted). File cameras wait instead (back-pressure), so a
    file runs as fast as analysis allows without crowding out the others.
    """

    def __init__(self, depth: int = 2) -> None:
        self.depth = depth
        self._queues: dict[str, deque[Frame]] = {}
        self._cond = threading.Condition()
        self._order: deque[str] = deque()
        self._closed = False

    def put(self, frame: Frame, *, block: bool, health: CameraHealth | None = None) -> None:
        with self._cond:
            q = self._queues.setdefault(frame.camera_id, deque())
            while block and len(q) >= self.depth and not self._closed:
                self._cond.wait(0.5)
            if self._closed:
                return
            if len(q) >= self.depth:
                q.popleft()
                if health is not None:
                    health.frames_dropped += 1
            q.append(frame)
            if frame.camera_id not in self._order:
                self._order.append(frame.camera_id)
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        with self._cond:
            if not self._order:
                self._cond.wait(timeout)
            if not self._order:
                return None
            cam = self._order.popleft()
            q = self._queues[cam]
            frame = q.popleft()
            if q:
                self._order.append(cam)  # round-robin: to the back of the line
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class CameraRuntime:
    """Everything the analysis loop needs for one camera."""

    camera: Camera
    rules: CameraRules
    health: CameraHealth
    analyzers: list[Analyzer]
    gate: SceneGate | None
    tamper: TamperDetector | None = None  # None: the view is not checked (rules never pause)
    last_obs: dict[str, Observations] = field(default_factory=dict)  # per gated analyzer
    state_saved_at: datetime | None = None
    analyses: int = 0  # frames that ran the gated analyzers
    frames: int = 0  # frames analysed at all
    errors: int = 0
    blank: int = 0  # blank frames skipped
    paused: int = 0  # frames whose rules were paused: the view was off its reference
    analysis_seconds: float = 0.0
    lag_s: float = 0.0  # decode → analysis done, for the newest frame
    last_image: NDArray[np.uint8] | None = None  # a preview of the newest analysed frame (see `preview`)
    full_jpeg: bytes | None = None  # a full-resolution JPEG of a recent frame (the zone editor draws on it)
    full_at: float | None = None  # monotonic s of `full_jpeg`
    # A patrolling camera: the patrol says which preset a frame is at, and each preset has a runtime of its
    # own (built from `camera.at_stop`: its rules, gate, tamper reference, analyzers and incidents), kept
    # for the life of the camera, so the next lap continues where the last visit left off.
    patrol: Patrol | None = None
    stops: dict[str, CameraRuntime] = field(default_factory=dict)
    incident_key: str | None = None  # where the incident manager keeps this runtime's state; None: camera.id
    unsettled: int = 0  # frames not analysed: the patrol was moving, settling, locked or in fault
    visit: int = 0  # a stop: the patrol visit of its last analysed frame
    last_ts: datetime | None = None  # a stop: its last analysed frame's time


class Pipeline:
    def __init__(
        self, incidents: IncidentManager, queues: FrameQueues, save_state: Callable[[str, bytes], None]
    ) -> None:
        self.incidents = incidents
        self.queues = queues
        self.cameras: dict[str, CameraRuntime] = {}
        self._save_state = save_state  # where analyzer state goes (the camera's database row)
        #: sees every analysed frame with its observations (None: not usable), e.g. 核实 requests waiting for it
        self.watch: Callable[[CameraRuntime, Frame, Observations | None], None] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # held per frame: a reload swaps a camera between two frames
        self._thread = threading.Thread(target=self._run, name="analysis", daemon=True)

    def add(self, rt: CameraRuntime) -> None:
        self.cameras[rt.camera.id] = rt

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No frame is analysed inside: the camera set and a camera's runtime can change."""
        with self._lock:
            yield

    def remove(self, camera_id: str) -> None:
        """Stops analysing a camera (its readers are stopped): its analyzers' state is saved first."""
        with self._lock:
            rt = self.cameras.get(camera_id)
            self.cameras = {k: v for k, v in self.cameras.items() if k != camera_id}  # copy: the API iterates
        if rt is not None:
            self._persist_state(rt)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.queues.close()
        self._thread.join(30)
        self.incidents.poll(force=True)
        for rt in self.cameras.values():
            self._persist_state(rt)

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = self.queues.get(timeout=0.5)
            if frame is not None:
                with self._lock:
                    self.analyse(frame)
            self.incidents.poll()

    def analyse(self, frame: Frame) -> None:
        cam = self.cameras.get(frame.camera_id)
        if cam is None:  # a frame still queued from a camera that a reload removed
            return
        if cam.patrol is None:
            return self._analyse(cam, cam, frame)
        try:
            view = cam.patrol.observe(frame.image)
        except Exception:
            cam.errors += 1
            log.exception("patrol observe failed", extra={"camera": cam.camera.id, "frame": frame.index})
            return
        stop = cam.stops.get(view.preset) if view.settled and view.preset is not None else None
        if stop is None:  # a turning picture is no view at all: no gate, tamper, background nor incident
            cam.unsettled += 1
            cam.health.analysed(frame.ts)
            cam.last_image = preview(frame.image)
            return None
        away = timedelta(0)
        if view.visit != stop.visit and stop.last_ts is not None:  # back from the other presets
            away = max(timedelta(0), frame.ts - stop.last_ts)
        stop.visit, stop.last_ts = view.visit, frame.ts
        return self._analyse(cam, stop, frame, away)

    def _analyse(self, cam: CameraRuntime, rt: CameraRuntime, frame: Frame, away: timedelta = timedelta(0)) -> None:
        """One frame of camera `cam` through `rt`: the camera's own runtime, or its patrol stop's."""
        started = time.perf_counter()
        try:
            usable, findings = self._view(rt, frame)
            codes: frozenset[str] | None = None  # None: every problem was looked at
            if usable and _blank(frame.image):  # black or grey (a decoder gap, a dead sensor): nothing to see
                usable, codes = False, frozenset()
                cam.blank += 1
            elif not usable:  # no new incidents from a view that is not the configured one; open ones stand still
                # (a frame that only looks off, not yet confirmed, moves nothing, not even maintenance)
                codes = ONLY_MAINTENANCE if findings else frozenset()
                cam.paused += 1
            obs: Observations | None = None
            if usable:
                before = rt.analyses
                found, obs = self._findings(rt, frame)
                if rt is not cam:
                    cam.analyses += rt.analyses - before
                findings += found
            key = rt.incident_key or rt.camera.id
            self.incidents.process(key, frame.image, findings, frame.ts, codes=codes, away=away)
            if self.watch is not None:
                self.watch(rt, frame, obs)
            cam.health.analysed(frame.ts)
            cam.frames += 1
            cam.last_image = preview(frame.image)
            if frame.image.shape[1] > PREVIEW_WIDTH and (
                cam.full_at is None or time.monotonic() - cam.full_at > FULL_EVERY_S
            ):
                cam.full_jpeg, cam.full_at = jpeg(frame.image), time.monotonic()
            saved = cam.state_saved_at
            if saved is None or frame.ts - saved >= STATE_EVERY or frame.ts < saved:
                self._persist_state(cam, frame.ts)
        except Exception:  # one bad frame or camera must not stop the others
            cam.errors += 1
            log.exception("analysis failed", extra={"camera": rt.camera.id, "frame": frame.index, "errors": cam.errors})
        finally:
            cam.analysis_seconds += time.perf_counter() - started
            cam.lag_s = time.monotonic() - frame.arrived

    @staticmethod
    def _view(rt: CameraRuntime, frame: Frame) -> tuple[bool, list[Finding]]:
        """Whether the frame shows the camera's reference view, and the maintenance finding if it does not.

        A frame whose own verdict is off (before debouncing confirms it) is not
        analysed either: a lens covered for one frame shows nothing to analyse.
        """
        if rt.tamper is None:
            return True, []
        view = rt.tamper.check(frame)
        if rt.health.set_view(None if view.ok else view.kind, view.since):
            log.warning(
                "camera view " + ("back to its reference" if view.ok else view.kind),
                extra={"camera": rt.camera.id, "details": view.details},
            )
        return view.ok and view.raw == "ok", rt.rules.maintenance(view, frame.ts)

    @staticmethod
    def _findings(rt: CameraRuntime, frame: Frame) -> tuple[list[Finding], Observations]:
        changed = rt.gate is None or rt.gate.should_analyze(frame)
        parts = []
        for a in rt.analyzers:
            if changed or not a.gated:
                rt.last_obs[a.name] = a.analyze(frame)
            parts.append(rt.last_obs.get(a.name, Observations()))
        rt.analyses += changed
        obs = Observations.merge(parts)
        return rt.rules.findings(obs, frame.ts), obs

    def _persist_state(self, rt: CameraRuntime, ts: datetime | None = None) -> None:
        blob = pack_states(stateful(rt))
        if blob is not None:
            self._save_state(rt.camera.id, blob)
        if ts is not None:
            rt.state_saved_at = ts

    def runtimes(self) -> Iterator[CameraRuntime]:
        return iter(self.cameras.values())


def stateful(rt: CameraRuntime) -> list[Stateful]:
    """What of a camera's runtime is saved in its row: its analyzers and tamper check, or each stop's."""
    if rt.stops:
        return [_AtStop(preset, part) for preset, stop in rt.stops.items() for part in stateful(stop)]
    return [*rt.analyzers, *([rt.tamper] if rt.tamper is not None else [])]


class _AtStop:
    """One preset's part of a patrolling camera's saved state, under a name of its own (the background of
    preset 3 is not preset 5's)."""

    def __init__(self, preset: str, part: Stateful) -> None:
        self.name, self._part = f"{preset}@{part.name}", part

    def state(self) -> bytes | None:
        return self._part.state()

    def load_state(self, blob: bytes) -> None:
        self._part.load_state(blob)


def _blank(image: NDArray[np.uint8]) -> bool:
    """A frame with (almost) no structure: what a decoder shows for missing data, or a dead sensor."""
    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
    return float(small.std()) < BLANK_STD


PREVIEW_WIDTH = 960
FULL_EVERY_S = 30.0  # wall seconds between full-resolution JPEGs of a camera wider than the preview


def jpeg(image: NDArray[np.uint8], quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as JPEG")
    return buf.tobytes()


def preview(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The camera wall's picture: at most PREVIEW_WIDTH wide (a 1080p frame kept whole is 6 MB per camera)."""
    h, w = image.shape[:2]
    if w <= PREVIEW_WIDTH:
        return image
    return cv2.resize(image, (PREVIEW_WIDTH, round(h * PREVIEW_WIDTH / w)), interpolation=cv2.INTER_AREA)
