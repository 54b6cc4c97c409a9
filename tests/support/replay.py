"""Runs GridSight in-process on file cameras until their videos end (or a simulated time passes).

The whole application as shipped — `detector.runtime.app.build()` on a config
directory, readers, gate, analyzers, tamper check, rules, incidents, cases —
with file sources read as fast as analysis allows. Used by the tests that
assert on incidents and by `bench/evaluate_scenarios.py`.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from detector.ingest.health import CameraState, HealthSnapshot
from detector.ingest.sources import StreamReader
from detector.runtime.app import GridSight, build
from detector.types import Frame


def cpu_s() -> float:
    """CPU seconds (user + system) of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class Replay:
    """What a replay left behind besides the database: per camera frames, pauses, health, CPU."""

    frames: dict[str, int] = field(default_factory=dict)  # taken from the queue (blank and paused ones included)
    paused: dict[str, int] = field(default_factory=dict)
    blank: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    health: dict[str, HealthSnapshot] = field(default_factory=dict)  # just before stopping
    video_s: dict[str, float] = field(default_factory=dict)  # pipeline seconds covered
    cpu_s: float = 0.0  # from releasing the readers to the last frame analysed
    wall_s: float = 0.0


def replay(
    config_dir: Path,
    *,
    until_s: float | None = None,
    timeout_s: float = 600.0,
    inspect: Callable[[GridSight], None] | None = None,
) -> Replay:
    """Runs every camera of `config_dir` to the end of its file (or `until_s` seconds of pipeline time).

    `inspect(app)` runs when every camera is done, before the app stops (its API still answers;
    with `until_s` the cameras are still live).

    Raises:
        TimeoutError: not done within `timeout_s` wall seconds.
        RuntimeError: a camera failed.
    """
    app = build(config_dir)
    with mock.patch.object(StreamReader, "start", lambda self: None):  # held back while the app starts
        app.start()
    lock = threading.Lock()
    put = {cam: 0 for cam in app.pipeline.cameras}
    first: dict[str, Any] = {}
    original = app.queues.put
    release = threading.Event()
    held: set[str] = set()  # cameras whose reader waits: `until_s` reached

    def counted(frame: Frame, **kw: Any) -> None:
        if (
            until_s is not None
            and frame.camera_id in first
            and frame.ts - first[frame.camera_id] > timedelta(seconds=until_s)
        ):
            held.add(frame.camera_id)
            release.wait()  # enough simulated time: the reader waits (its camera stays live) until the end
            return
        first.setdefault(frame.camera_id, frame.ts)
        original(frame, **kw)
        with lock:
            put[frame.camera_id] += 1

    app.queues.put = counted  # type: ignore[method-assign]
    out = Replay()
    c0, t0 = cpu_s(), time.monotonic()
    try:
        for r in app.readers:
            r.start()
        while True:
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"replay of {config_dir} not done in {timeout_s} s")
            states = {h.state for h in app.healths.values()}
            if CameraState.FAILED in states or CameraState.STALLED in states:
                raise RuntimeError(f"camera failed: {[h.snapshot() for h in app.healths.values()]}")
            with lock:
                done = all(_done(app, cam) >= n for cam, n in put.items())
                ended = all(h.state is CameraState.ENDED or cam in held for cam, h in app.healths.items())
            if done and ended:
                break
            time.sleep(0.02)
        out.cpu_s, out.wall_s = cpu_s() - c0, time.monotonic() - t0
        for rt in app.pipeline.runtimes():
            cam = rt.camera.id
            out.frames[cam], out.paused[cam], out.blank[cam], out.errors[cam] = (
                _done(app, cam), rt.paused, rt.blank, rt.errors
            )  # fmt: skip
            out.health[cam] = app.healths[cam].snapshot()
            out.video_s[cam] = _covered(app, cam, first)
        if inspect is not None:
            inspect(app)
    finally:
        release.set()
        app.stop()
    return out


def _done(app: GridSight, cam: str) -> int:
    rt = app.pipeline.cameras[cam]
    return rt.frames + rt.errors


def _covered(app: GridSight, cam: str, first: dict[str, Any]) -> float:
    last = app.healths[cam].last_frame_at
    return (last - first[cam]).total_seconds() if last is not None and cam in first else 0.0
