"""Per-camera health: an explicit state machine plus rolling counters."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CameraState(StrEnum):
    CONNECTING = "connecting"  # opening the source (first time or after a failure)
    LIVE = "live"  # packets arriving
    STALLED = "stalled"  # was live, no data for longer than the stall timeout; reconnecting
    FAILED = "failed"  # the last attempt failed; retrying after a backoff
    ENDED = "ended"  # a file source that does not loop reached its end
    STOPPED = "stopped"  # shut down by us
    # Reported, never set: live, but the view no longer matches its reference (moved,
    # covered, blurred), so the camera's rules are paused (see `CameraHealth.set_view`).
    TAMPERED = "tampered"


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    camera_id: str
    state: CameraState
    last_error: str | None
    last_frame_at: datetime | None  # pipeline time of the newest analysed/decoded frame
    frames_received_per_min: int
    frames_analysed_per_min: int
    frames_dropped: int
    reconnects: int
    since: float  # wall time (epoch s) of the last state change
    view: str | None = None  # moved | covered | blurred while the view is off its reference, else None


class CameraHealth:
    """Written by one reader thread, read by the API and the pipeline."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self._lock = threading.Lock()
        self._state = CameraState.CONNECTING
        self._since = time.time()
        self.last_error: str | None = None
        self.last_frame_at: datetime | None = None
        self._received: deque[float] = deque()
        self._analysed: deque[float] = deque()
        self.frames_dropped = 0
        self.reconnects = 0
        self.decode_seconds = 0.0  # CPU spent decoding due frames (thread time)
        self._view: str | None = None  # written by the analysis thread (tamper check)
        self._view_since: datetime | None = None
        self._ptz_error: str | None = None  # the patrol cannot steer the camera (written by its thread)

    @property
    def state(self) -> CameraState:
        return self._state

    def set_state(self, state: CameraState, error: str | None = None) -> bool:
        """Moves to `state`; returns True when it changed (so callers log once)."""
        with self._lock:
            if error is not None:
                self.last_error = error
            if state is self._state:
                return False
            self._state = state
            self._since = time.time()
            return True

    def set_view(self, fault: str | None, since: datetime | None = None) -> bool:
        """Marks the view as moved/covered/blurred (None: matches its reference); True when it changed.

        The connection state machine is left alone; a live camera with a view
        fault is *reported* as `TAMPERED`, so the API, the health history and
        MQTT show it without knowing about the tamper check.
        """
        with self._lock:
            if fault == self._view:
                return False
            self._view, self._view_since = fault, since if fault else None
            return True

    def set_ptz_error(self, error: str | None) -> None:
        """The patrol's fault (unreachable ONVIF, refused credentials), shown as the camera's error; None: cleared."""
        with self._lock:
            self._ptz_error = error

    @property
    def view(self) -> str | None:
        return self._view

    def packet(self) -> None:
        self._tick(self._received)

    def analysed(self, ts: datetime) -> None:
        self.last_frame_at = ts
        self._tick(self._analysed)

    @staticmethod
    def _tick(q: deque[float]) -> None:
        now = time.monotonic()
        q.append(now)
        while q and q[0] < now - 60:
            q.popleft()

    def snapshot(self) -> HealthSnapshot:
        now = time.monotonic()
        with self._lock:
            tampered = self._view is not None and self._state is CameraState.LIVE
            error = self._ptz_error or self.last_error
            if tampered:
                since = f" since {self._view_since.isoformat()}" if self._view_since else ""
                error = f"camera view {self._view}{since}: rules paused"
            return HealthSnapshot(
                camera_id=self.camera_id,
                state=CameraState.TAMPERED if tampered else self._state,
                last_error=error,
                last_frame_at=self.last_frame_at,
                frames_received_per_min=sum(1 for t in list(self._received) if t >= now - 60),
                frames_analysed_per_min=sum(1 for t in list(self._analysed) if t >= now - 60),
                frames_dropped=self.frames_dropped,
                reconnects=self.reconnects,
                since=self._since,
                view=self._view,
            )
