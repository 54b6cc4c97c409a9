"""The patrol (轮巡) of one PTZ camera: its presets in turn, and which frames belong to which.

A `Patrol` runs on its own thread: GotoPreset, wait for the motor to report IDLE, wait for the
picture to settle, dwell, next preset. Someone else's move (an operator at the platform's
joystick) or `lock(seconds)` (the console) pauses it; it resumes at the stop it was cut off
at, once the camera has been still for `manual_quiet_s`, and keeps the order of its list.

How the pipeline is to use it (one Patrol per camera whose config has `patrol:`):

* Wiring: `Patrol.from_camera(camera, on_event=...)`, `start()` after the camera's reader,
  `stop()` before it. Per stop, `camera.at_stop(stop)` is that view as a plain `Camera`
  (its ptz_preset in the case key, the stop's zones, problems and rules): build the
  per-preset state (gate, tamper reference, background, persistence, incidents) from it,
  keyed by `(camera.id, preset)`.
* Every decoded frame, before the gate: `view = patrol.observe(frame.image)`.
  `view.settled` False (moving, picture not yet still, someone else has the camera, ONVIF
  down): analyse nothing — no gate, tamper, background or persistence update — only health.
  `view.settled` True: the frame is preset `view.preset`'s; route it to that preset's state.
  `view.visit` grows with every arrival: a gate or tamper check comparing with "the last
  frame" must compare with the last frame of the same preset, never across a move.
* Time away is not absence: between two visits of a preset its findings are unobserved, so
  persistence windows and clear timers must pause while the camera looks elsewhere (or count
  observed time only), else every problem "clears" on each lap.
* `PatrolEvent`s (callback, from the patrol's thread or the frame's) report each state change
  (`PatrolState`); LOCKED and FAULT are worth showing in the console and over MQTT.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from detector.ingest.ptz import DeviceInfo, Position, Preset, PtzError, PtzStatus, UnknownPreset, moved_by_someone_else

if TYPE_CHECKING:
    from detector.config import Camera, PtzSettings

log = logging.getLogger(__name__)


class PtzControl(Protocol):
    """What the patrol needs of a camera (`detector.ingest.ptz.PtzCamera`)."""

    camera_id: str

    def connect(self) -> DeviceInfo: ...
    def presets(self) -> list[Preset]: ...
    def goto(self, token: str) -> Preset: ...
    def status(self) -> PtzStatus: ...


class Stop(Protocol):
    """One stop of the patrol (`detector.config.PatrolStop`)."""

    @property
    def preset(self) -> str: ...
    @property
    def dwell_s(self) -> float: ...


class PatrolState(StrEnum):
    STARTING = "starting"  # connecting, reading the presets
    MOVING = "moving"  # GotoPreset sent, the motor not yet IDLE
    SETTLING = "settling"  # motor IDLE, the picture not yet still
    DWELLING = "dwelling"  # settled: frames are the preset's
    LOCKED = "locked"  # someone else has the camera
    FAULT = "fault"  # ONVIF failed; retried after retry_s
    STOPPED = "stopped"


_ALLOWED: dict[PatrolState, set[PatrolState]] = {
    PatrolState.STARTING: {PatrolState.MOVING, PatrolState.LOCKED},
    PatrolState.MOVING: {PatrolState.SETTLING, PatrolState.LOCKED},
    PatrolState.SETTLING: {PatrolState.DWELLING, PatrolState.LOCKED},
    PatrolState.DWELLING: {PatrolState.MOVING, PatrolState.LOCKED},
    PatrolState.LOCKED: {PatrolState.MOVING, PatrolState.LOCKED},
    PatrolState.FAULT: {PatrolState.STARTING},
    PatrolState.STOPPED: set(),
}
_ALWAYS = {PatrolState.FAULT, PatrolState.STOPPED}


@dataclass(frozen=True, slots=True)
class View:
    """Which preset a frame shows, and whether it may be analysed."""

    preset: str | None  # the stop the patrol is at or heading for; None: locked, fault, starting
    settled: bool  # the picture is that preset's and still: analyse it
    visit: int  # arrivals so far: a new number means the camera went away and came back


@dataclass(frozen=True, slots=True)
class PatrolEvent:
    camera_id: str
    state: PatrolState
    preset: str | None  # the stop it concerns (the target while MOVING)
    at: float  # time.monotonic()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PatrolOptions:
    settle_s: float = 2.0
    settle_threshold: float = 8.0
    settle_frames: int = 2
    settle_timeout_s: float = 20.0
    move_timeout_s: float = 30.0
    poll_s: float = 1.0
    move_poll_s: float = 0.2
    position_tolerance: float = 0.02
    manual_quiet_s: float = 300.0
    retry_s: float = 10.0

    @classmethod
    def from_settings(cls, s: PtzSettings) -> PatrolOptions:
        return cls(
            settle_s=s.settle_s, settle_threshold=s.settle_threshold, settle_frames=s.settle_frames,
            settle_timeout_s=s.settle_timeout_s, move_timeout_s=s.move_timeout_s, poll_s=s.poll_s,
            move_poll_s=min(0.2, s.poll_s), position_tolerance=s.position_tolerance, manual_quiet_s=s.manual_quiet_s,
        )  # fmt: skip


class StillPicture:
    """`frames` frame differences in a row below `threshold` (mean absolute grey, 0-255, on a small copy):
    the picture has stopped sliding. Small so that noise and a passing car stay far below a pan."""

    def __init__(self, threshold: float, frames: int, width: int = 96) -> None:
        self.threshold, self.frames, self.width = threshold, frames, width
        self.reset()

    def reset(self) -> None:
        self._last: np.ndarray | None = None
        self._still = 0
        self.last_diff: float | None = None

    def feed(self, image: np.ndarray) -> bool:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        h = max(1, round(grey.shape[0] * self.width / grey.shape[1]))
        small = cv2.resize(grey, (self.width, h), interpolation=cv2.INTER_AREA)
        if self._last is not None:
            self.last_diff = float(np.mean(cv2.absdiff(small, self._last)))
            self._still = self._still + 1 if self.last_diff < self.threshold else 0
        self._last = small
        return self._still >= self.frames


class _Failing:
    """The PtzControl of a camera that cannot be steered: every call is `error`."""

    def __init__(self, camera_id: str, error: PtzError) -> None:
        self.camera_id, self.error = camera_id, error

    def connect(self) -> DeviceInfo:
        raise self.error

    def presets(self) -> list[Preset]:
        raise self.error

    def goto(self, token: str) -> Preset:
        raise self.error

    def status(self) -> PtzStatus:
        raise self.error


class _Taken(Exception):
    """Someone else has the camera: leave the stop, hold, come back to it."""


class _Halt(Exception):
    pass


class Patrol:
    """One camera's patrol over `stops` (order kept), on its own thread."""

    def __init__(
        self, ptz: PtzControl, stops: Sequence[Stop], options: PatrolOptions | None = None,
        on_event: Callable[[PatrolEvent], None] | None = None,
    ) -> None:  # fmt: skip
        if not stops:
            raise ValueError(f"camera {ptz.camera_id}: a patrol needs at least one stop")
        self.camera_id = ptz.camera_id
        self.ptz = ptz
        self.stops = list(stops)
        self.opts = options or PatrolOptions()
        self.on_event = on_event
        #: the preset someone needs next (a 核实 request: `VerificationDesk.wanted_preset`); None: none
        self.wanted: Callable[[], str | None] | None = None
        self._cond = threading.Condition()
        self._state = PatrolState.STARTING
        self._view = View(None, False, 0)
        self._stop_at: Stop | None = None
        self._lock_until = -math.inf
        self._lock_reason = ""
        self._settle_from = math.inf
        self._dwell_from = math.inf
        self._still = StillPicture(self.opts.settle_threshold, self.opts.settle_frames)
        self._halt = False
        self._thread = threading.Thread(target=self._run, name=f"patrol-{self.camera_id}", daemon=True)

    @classmethod
    def from_camera(cls, camera: Camera, on_event: Callable[[PatrolEvent], None] | None = None) -> Patrol:
        """Raises: PtzError: the camera's ONVIF credential variables are not set."""
        from detector.ingest.ptz import PtzCamera

        if camera.ptz is None or not camera.patrol:
            raise ValueError(f"camera {camera.id}: no ptz block or no patrol")
        ptz = PtzCamera.from_settings(camera.id, camera.ptz)
        return cls(ptz, camera.patrol, PatrolOptions.from_settings(camera.ptz), on_event)

    @classmethod
    def failing(cls, camera: Camera, error: PtzError, on_event: Callable[[PatrolEvent], None] | None = None) -> Patrol:
        """A patrol that cannot steer its camera (no credentials): in FAULT with `error`, analysing nothing,
        so the camera still shows its video and says why it does not patrol."""
        assert camera.ptz is not None
        return cls(_Failing(camera.id, error), camera.patrol, PatrolOptions.from_settings(camera.ptz), on_event)

    # ------------------------------------------------------------ what the pipeline calls

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ends the thread and closes the camera's ONVIF sessions."""
        with self._cond:
            self._halt = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if (close := getattr(self.ptz, "close", None)) is not None:
            close()

    def locked_for(self) -> float | None:
        """Seconds the patrol still holds for someone else (a lock, a manual move); None: not held."""
        with self._cond:
            left = self._lock_until - time.monotonic()
        return left if left > 0 else None

    @property
    def state(self) -> PatrolState:
        with self._cond:
            return self._state

    def current(self) -> View:
        with self._cond:
            return self._view

    def observe(self, image: np.ndarray) -> View:
        """The view this frame belongs to; while settling, it also tells whether the picture is still."""
        with self._cond:
            settling = self._state is PatrolState.SETTLING and time.monotonic() >= self._settle_from
            settled = settling and self._still.feed(image)
            diff = self._still.last_diff
        if settled:
            self._arrived(f"picture still (difference {diff:.1f})")
        return self.current()

    def lock(self, seconds: float, reason: str = "operator") -> None:
        """Someone takes the camera for `seconds` (or longer while it keeps moving): the patrol holds."""
        with self._cond:
            self._lock_until = max(self._lock_until, time.monotonic() + seconds)
            self._lock_reason = reason
            self._cond.notify_all()

    def release(self) -> None:
        """The operator is done: resume now (unless the camera is still moving)."""
        with self._cond:
            self._lock_until = time.monotonic()
            self._cond.notify_all()

    # ------------------------------------------------------------ state

    def _set(self, state: PatrolState, stop: Stop | None, view: View, reason: str = "",
             expect: PatrolState | None = None) -> bool:  # fmt: skip
        with self._cond:
            if expect is not None and self._state is not expect:
                return False  # the other thread got there first
            if state not in _ALLOWED[self._state] | _ALWAYS:
                raise RuntimeError(f"camera {self.camera_id}: patrol cannot go from {self._state} to {state}")
            self._state, self._stop_at, self._view = state, stop, view
            self._cond.notify_all()
        event = PatrolEvent(self.camera_id, state, stop.preset if stop else None, time.monotonic(), reason)
        log.info("patrol %s", state, extra={"camera": self.camera_id, "preset": event.preset, "reason": reason})
        if self.on_event is not None:
            self.on_event(event)
        return True

    def _arrived(self, reason: str) -> None:
        with self._cond:
            stop, visit = self._stop_at, self._view.visit + 1
            self._dwell_from = time.monotonic()
        assert stop is not None
        self._set(PatrolState.DWELLING, stop, View(stop.preset, True, visit), reason, expect=PatrolState.SETTLING)

    def _wait(self, seconds: float, until: Callable[[], bool] = lambda: False, hold: bool = True) -> None:
        """Sleeps up to `seconds`, less if `until()`; raises _Halt on stop() and (when `hold`) _Taken on a lock."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while True:
                if self._halt:
                    raise _Halt
                if hold and time.monotonic() < self._lock_until:
                    raise _Taken
                left = deadline - time.monotonic()
                if until() or left <= 0:
                    return
                self._cond.wait(left)

    def _take(self, reason: str) -> None:
        with self._cond:
            self._lock_until = max(self._lock_until, time.monotonic() + self.opts.manual_quiet_s)
            self._lock_reason = reason
        raise _Taken

    # ------------------------------------------------------------ the patrol's thread

    def _run(self) -> None:
        i, ready, last = 0, False, None
        try:
            while True:
                try:
                    if not ready:
                        self._ready()
                        ready = True
                    self._hold()
                    stop = self._detour(last) or self.stops[i]
                    self._visit(stop)
                    last = stop
                    if stop is self.stops[i]:  # a detour keeps the order of the list
                        i = (i + 1) % len(self.stops)
                except _Taken:
                    continue  # the same stop again once the camera is free
                except PtzError as e:
                    ready = False
                    log.warning("patrol fault", extra={"camera": self.camera_id, "error": str(e)})
                    self._set(PatrolState.FAULT, None, View(None, False, self.current().visit), str(e))
                    self._wait(self.opts.retry_s, hold=False)
                    self._set(PatrolState.STARTING, None, self.current(), "retry")
        except _Halt:
            pass
        self._set(PatrolState.STOPPED, None, View(None, False, self.current().visit))

    def _detour(self, last: Stop | None) -> Stop | None:
        """The stop a request wants next, if it is not the one just left (its frames answered it, or could not)."""
        want = self.wanted() if self.wanted is not None else None
        return next((s for s in self.stops if s.preset == want and s is not last), None)

    def _ready(self) -> None:
        """Connects and checks that every stop's preset is on the camera."""
        self.ptz.connect()
        have = {p.token for p in self.ptz.presets()}
        missing = [s.preset for s in self.stops if s.preset not in have]
        if missing:
            raise UnknownPreset(
                f"camera {self.camera_id}: patrol presets {missing} are not on the camera (it has: "
                f"{', '.join(sorted(have)) or 'none'})"
            )

    def _hold(self) -> None:
        """While locked: polls the motor; any motion pushes the end of the lock out by manual_quiet_s."""
        with self._cond:
            if time.monotonic() >= self._lock_until:
                return
            until, reason, visit = self._lock_until, self._lock_reason, self._view.visit
        if self.state is not PatrolState.LOCKED:
            self._set(PatrolState.LOCKED, None, View(None, False, visit), f"{reason}; until quiet for a while")
        last: Position | None = None
        while (left := until - time.monotonic()) > 0:
            self._wait(min(self.opts.poll_s, left), hold=False)
            status = self.ptz.status()
            with self._cond:
                if moved_by_someone_else(last, status, self.opts.position_tolerance):
                    self._lock_until = max(self._lock_until, time.monotonic() + self.opts.manual_quiet_s)
                until = self._lock_until
            last = status.position or last

    def _visit(self, stop: Stop) -> None:
        home = self._move(stop)
        self._settle(stop, home)
        # a one-stop patrol only watches: it never leaves, so it never needs to settle again
        self._dwell(stop, home, math.inf if len(self.stops) == 1 else stop.dwell_s)

    def _move(self, stop: Stop) -> Position | None:
        """GotoPreset and wait for IDLE; returns where the motor stopped (the reference for manual moves)."""
        self._set(PatrolState.MOVING, stop, View(stop.preset, False, self.current().visit))
        target = self.ptz.goto(stop.preset).position
        deadline = time.monotonic() + self.opts.move_timeout_s
        idle_polls = 0
        while True:
            # a motor may report IDLE for a moment before it starts: trust IDLE at the preset's position, or
            # IDLE that lasts (cameras whose GetStatus space differs from GetPresets')
            self._wait(self.opts.move_poll_s)
            status = self.ptz.status()
            idle_polls = 0 if status.moving else idle_polls + 1
            there = target is not None and status.position is not None
            if idle_polls and there and target.distance(status.position) <= self.opts.position_tolerance:
                return status.position
            if idle_polls >= 3:
                return status.position
            if time.monotonic() > deadline:
                raise PtzError(f"camera {self.camera_id}: preset {stop.preset} not reached in "
                               f"{self.opts.move_timeout_s:g} s")  # fmt: skip

    def _settle(self, stop: Stop, home: Position | None) -> None:
        with self._cond:
            self._settle_from = time.monotonic() + self.opts.settle_s
            self._still.reset()
        self._set(PatrolState.SETTLING, stop, View(stop.preset, False, self.current().visit))
        deadline = time.monotonic() + self.opts.settle_s + self.opts.settle_timeout_s
        while self.state is PatrolState.SETTLING:
            self._wait(min(self.opts.poll_s, max(0.0, deadline - time.monotonic())),
                       until=lambda: self._state is not PatrolState.SETTLING)  # fmt: skip
            if self.state is not PatrolState.SETTLING:
                return
            if moved_by_someone_else(home, self.ptz.status(), self.opts.position_tolerance):
                self._take("moved by someone else while settling")
            if time.monotonic() >= deadline:
                self._arrived(f"picture not still after {self.opts.settle_timeout_s:g} s: taken as settled")

    def _dwell(self, stop: Stop, home: Position | None, dwell_s: float) -> None:
        with self._cond:
            end = self._dwell_from + dwell_s
        while (left := end - time.monotonic()) > 0:
            self._wait(min(self.opts.poll_s, left))
            if moved_by_someone_else(home, self.ptz.status(), self.opts.position_tolerance):
                self._take("moved by someone else")
