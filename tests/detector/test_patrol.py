"""The patrol (轮巡) against the ONVIF simulator: presets in turn, frames settled only when the picture is
the preset's and still, and an operator's hand on the camera pausing it."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from detector.config import PatrolStop
from detector.ingest.health import CameraHealth
from detector.ingest.patrol import Patrol, PatrolEvent, PatrolOptions, PatrolState, StillPicture, View
from detector.ingest.sources import ReaderOptions, SnapshotReader
from detector.types import Frame
from tests.detector.test_ptz import PASSWORD, nearest_view, preset_videos, ptz  # noqa: F401 - fixture
from tests.support import ptz_views
from tests.support.onvif_sim import OnvifSimulator
from tests.support.waiting import wait_until

FAST = PatrolOptions(settle_s=0.0, settle_frames=2, settle_timeout_s=5, poll_s=0.25, move_poll_s=0.1,
                     manual_quiet_s=1.5, retry_s=1)  # fmt: skip


@dataclass
class Seen:
    view: View
    image: np.ndarray
    moving: bool  # the simulator's motor when the frame came
    at: float


@dataclass
class Watch:
    """The patrol's events and every frame of the camera with the view the patrol gave it."""

    events: list[PatrolEvent] = field(default_factory=list)
    frames: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, state: PatrolState) -> list[PatrolEvent]:
        with self.lock:
            return [e for e in self.events if e.state is state]

    def dwelt(self) -> list[str | None]:
        return [e.preset for e in self.of(PatrolState.DWELLING)]


@pytest.fixture
def patrolling(preset_videos, tmp_path):  # noqa: F811
    """start(stops, **sim options) → (sim, patrol, watch): the simulator, a patrol on it, and its snapshot
    stream read every 0.2 s through the runtime's SnapshotReader into patrol.observe."""
    running: list = []

    def start(stops: list[tuple[str, float]], options: PatrolOptions = FAST, **sim_options):
        sim = OnvifSimulator(preset_videos, tmp_path, **sim_options).start()
        watch = Watch()
        cam = ptz(sim)
        patrol = Patrol(cam, [PatrolStop(preset=p, dwell_s=d) for p, d in stops], options, on_event=watch.events.append)

        def sink(frame: Frame) -> None:
            moving = sim.moving
            view = patrol.observe(frame.image)
            with watch.lock:
                watch.frames.append(Seen(view, frame.image, moving, time.monotonic()))

        opts = ReaderOptions(cadence_s=0.2, open_timeout_s=2, read_timeout_s=2, backoff_min_s=0.2, backoff_max_s=1)
        reader = SnapshotReader("dome", sim.gateway.url("snap", "34020000001320000008"), sink, CameraHealth("d"), opts)
        reader.start()
        patrol.start()
        running.append((sim, patrol, reader, cam))
        return sim, patrol, watch

    yield start
    for sim, patrol, reader, cam in running:
        patrol.stop()
        reader.stop()
        reader.join(5)
        cam.close()
        sim.stop()


def other_client_turns_the_camera(sim: OnvifSimulator, seconds: float) -> None:
    """An operator at another ONVIF client (the platform's joystick): ContinuousMove for `seconds`."""
    from onvif import ONVIFCamera

    async def move() -> None:
        cam = ONVIFCamera("127.0.0.1", sim.port, "admin", PASSWORD, no_cache=True)
        try:
            await cam.update_xaddrs()
            service = await cam.create_ptz_service()
            await service.ContinuousMove(
                {"ProfileToken": "prof_main", "Velocity": {"PanTilt": {"x": 0.3, "y": 0.0}}, "Timeout": f"PT{seconds}S"}
            )
        finally:
            await cam.close()

    asyncio.run(move())


def test_eight_presets_in_turn_each_frame_settled_only_when_it_is_the_presets_still_picture(patrolling) -> None:
    # the picture lags the motor by 0.5 s and settle_s is 0: only the picture check keeps the pans out
    sim, _, watch = patrolling([(str(i), 1.0) for i in range(1, 9)], move_s=0.4, picture_lag_s=0.5)
    wait_until("a whole lap and back at preset 1", lambda: watch.dwelt()[:9] == [*map(str, range(1, 9)), "1"], 60)
    ones = [e.at for e in watch.of(PatrolState.DWELLING) if e.preset == "1"]
    cycle = ones[1] - ones[0]
    print(f"\n8-preset patrol, 1 s dwell, 0.4 s moves: one lap in {cycle:.1f} s")
    assert 8 * 1.0 < cycle < 40

    settled = [s for s in watch.frames if s.view.settled]
    unsettled = [s for s in watch.frames if not s.view.settled]
    assert len(settled) >= 8 * 3  # every stop gets frames to analyse
    for s in settled:
        view, diff = nearest_view(sim, s.image)
        assert (view, s.moving) == (s.view.preset, False) and diff < 12, (s.view, view, diff)
    # the move was there to be seen: pans (far from every view) came, and none was called settled
    pans = [s for s in unsettled if nearest_view(sim, s.image)[1] > 25]
    assert len(pans) >= 8
    # IDLE came first, the settled picture after: the motor's word alone would have let the pan through
    settling = {e.preset: e.at for e in watch.of(PatrolState.SETTLING)[:8]}
    for e in watch.of(PatrolState.DWELLING)[:8]:
        assert e.at - settling[e.preset] > 0.3, e
    assert [e.preset for e in watch.of(PatrolState.DWELLING)] == watch.dwelt()  # visits are counted
    assert [s.view.visit for s in settled] == sorted(s.view.visit for s in settled)


def test_a_move_from_another_client_pauses_the_patrol_which_comes_back_to_the_same_stop(patrolling) -> None:
    sim, patrol, watch = patrolling([("1", 1.5), ("2", 1.5), ("3", 1.5)], move_s=0.3)
    wait_until("dwelling at preset 2", lambda: watch.dwelt()[-1:] == ["2"], 30, every_s=0.05)
    other_client_turns_the_camera(sim, 0.8)
    moved = time.monotonic()
    [locked] = wait_until("locked", lambda: watch.of(PatrolState.LOCKED), 3, every_s=0.05)
    assert locked.at - moved < 1.0 and "someone else" in locked.reason
    gotos = sim.calls.count("GotoPreset")
    assert not patrol.current().settled and patrol.current().preset is None
    time.sleep(1.5)
    assert sim.calls.count("GotoPreset") == gotos  # hands off while the operator turns it

    resume = wait_until("moving again", lambda: [e for e in watch.of(PatrolState.MOVING) if e.at > locked.at], 10)
    # still for manual_quiet_s (1.5 s) after the operator's 0.8 s turn, then the stop it was cut off at
    assert resume[0].at - moved >= 0.8 + 1.5 - 0.3 and resume[0].preset == "2"
    held = [s for s in watch.frames if locked.at < s.at < resume[0].at]
    assert held and not any(s.view.settled for s in held)  # the operator's view is no preset's
    wait_until("on round the list", lambda: watch.dwelt()[-3:] == ["2", "3", "1"], 20, every_s=0.1)
    assert watch.dwelt()[:2] == ["1", "2"]


def test_an_operator_lock_holds_the_patrol_for_its_seconds(patrolling) -> None:
    sim, patrol, watch = patrolling([("1", 1.0), ("2", 1.0)], move_s=0.3)
    wait_until("dwelling at preset 1", lambda: watch.dwelt() == ["1"], 30, every_s=0.05)
    patrol.lock(2.0, reason="operator wang")
    locked_at = time.monotonic()
    wait_until("locked", lambda: patrol.state is PatrolState.LOCKED, 2, every_s=0.05)
    assert "operator wang" in watch.of(PatrolState.LOCKED)[0].reason
    gotos = sim.calls.count("GotoPreset")
    wait_until("moving again", lambda: patrol.state is not PatrolState.LOCKED, 10, every_s=0.05)
    assert time.monotonic() - locked_at >= 1.9 and sim.calls.count("GotoPreset") == gotos + 1
    # the lock cut preset 1's dwell short: the patrol goes back to it, then on
    wait_until("then on", lambda: watch.dwelt()[-2:] == ["1", "2"], 20, every_s=0.1)


def test_a_stop_whose_preset_the_camera_lacks_is_a_fault_naming_it_and_nothing_moves(patrolling) -> None:
    sim, patrol, watch = patrolling([("1", 1.0), ("12", 1.0)])
    [fault, *_] = wait_until("fault", lambda: watch.of(PatrolState.FAULT), 10, every_s=0.05)
    assert "camera xc-dome-1" in fault.reason and "['12'] are not on the camera" in fault.reason
    assert "GotoPreset" not in sim.calls and not patrol.current().settled


def _texture(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (180, 320, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("frames", "still"),
    [
        ([_texture(1)] * 3, True),  # two differences of nothing
        ([_texture(1)] * 2, False),  # only one difference yet
        ([ptz_views.pan(_texture(1), _texture(2), i / 10) for i in range(6)], False),  # sliding
        ([_texture(1), _texture(2), _texture(2)], False),  # one still difference after a change
        ([_texture(1), _texture(2), _texture(2), _texture(2)], True),
    ],
)
def test_the_picture_is_still_after_two_small_differences_in_a_row(frames, still) -> None:
    check = StillPicture(threshold=8.0, frames=2)
    results = [check.feed(f) for f in frames]
    assert results[-1] is still
