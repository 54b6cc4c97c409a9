"""TamperDetector on generated scenario videos, checked every 5 s of video like a camera.

What a user notices: people, cars and a cloud passing leave the camera "ok"; a
knocked camera is "moved" until an operator acknowledges the new view; a
sprayed lens is "covered"; a lens out of focus is "blurred".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from detector.analysis.tamper import TamperDetector, TamperParams, TamperState
from detector.synthetic.scenarios import SCENARIOS, ScenarioTruth, ensure_scenario
from detector.types import Frame
from tests.support.video import Sampled, sample

STEP_S = 5.0
CONFIRM_S = TamperParams().confirm * STEP_S  # a verdict is reported after `confirm` checks in a row


@pytest.fixture(scope="module")
def scenario(video_cache: Path) -> Callable[[str], tuple[Sampled, ScenarioTruth]]:
    @functools.cache
    def get(name: str) -> tuple[Sampled, ScenarioTruth]:
        path, truth = ensure_scenario(video_cache, SCENARIOS[name])
        return sample(path, STEP_S), truth

    return get


def _frame(truth: ScenarioTruth, i: int, t: float, image: NDArray[np.uint8]) -> Frame:
    return Frame(camera_id="cam", index=i, ts=truth.ts(t), image=image)


def _run(td: TamperDetector, frames: Sampled, truth: ScenarioTruth) -> Iterator[tuple[float, TamperState]]:
    for i, (t, image) in enumerate(frames):
        yield t, td.check(_frame(truth, i, t, image))


def test_people_cars_and_a_cloud_leave_the_camera_ok_and_a_knock_is_moved(scenario) -> None:
    frames, truth = scenario("tamper")
    learn_s = TamperParams().learn_s
    bump, cover = truth.spec.bump_s, truth.spec.cover_s
    assert bump is not None and cover is not None
    moved_since = None
    for t, st in _run(TamperDetector(), frames, truth):
        assert 0.0 <= st.score <= 1.0
        if t < learn_s:
            assert st.learning and st.ok
        elif t < bump:  # people and cars pass, the sun goes behind a cloud
            assert not st.learning
            assert st.ok, f"{st.kind} at {t:.0f} s: {st.details}"
        elif t >= bump + CONFIRM_S and t < cover:
            assert st.kind == "moved", f"{st.kind} at {t:.0f} s: {st.details}"
            assert st.since is not None and moved_since in (None, st.since)
            moved_since = st.since
            dx, dy = st.details["shift_px"]  # 640 px video, 320 px analysed copy
            assert abs(dx * 2 - truth.spec.bump_px[0]) < 1.5 and abs(dy * 2 - truth.spec.bump_px[1]) < 1.5
        elif t >= truth.events["covered"][0][0] + CONFIRM_S:
            assert st.kind == "covered", f"{st.kind} at {t:.0f} s: {st.details}"
            assert st.score >= 0.6
    assert moved_since is not None and truth.ts(bump) <= moved_since <= truth.ts(bump + CONFIRM_S)


def test_acknowledge_learns_the_new_view(scenario) -> None:
    frames, truth = scenario("tamper")
    bump, cover = truth.spec.bump_s, truth.spec.cover_s
    assert bump is not None and cover is not None
    td = TamperDetector(TamperParams(learn_s=20.0, learn_frames=5))
    states = {}
    acknowledged = False
    for i, (t, image) in enumerate(frames):
        if t >= cover:
            break
        if not acknowledged and td.state_now.kind == "moved":
            td.acknowledge(_frame(truth, i, t, image))  # the operator accepts the new view
            acknowledged = True
            assert td.state_now.learning and td.state_now.ok
        states[t] = td.check(_frame(truth, i, t, image))
    assert acknowledged
    after = [st for t, st in states.items() if t >= bump + CONFIRM_S + 30]
    assert after and all(st.ok and not st.learning for st in after), [st.details for st in after]


def test_defocused_lens_is_blurred(scenario) -> None:
    frames, truth = scenario("defocus")
    start = truth.events["defocused"][0][0]
    verdicts = {t: st for t, st in _run(TamperDetector(), frames, truth)}
    assert all(st.ok for t, st in verdicts.items() if t < start)
    blurred = [st for t, st in verdicts.items() if t >= start + CONFIRM_S]
    assert blurred and all(st.kind == "blurred" for st in blurred), [(st.kind, st.details) for st in blurred]


def test_dust_and_night_works_are_not_tampering(scenario) -> None:
    for name in ("dust", "night_works"):
        frames, truth = scenario(name)
        for t, st in _run(TamperDetector(), frames, truth):
            assert st.ok, f"{name}: {st.kind} at {t:.0f} s: {st.details}"


def test_turned_view_is_moved_by_keypoints(scenario) -> None:
    """A PTZ camera left on another angle: rotation and zoom defeat phase correlation, not ORB."""
    frames, truth = scenario("tamper")
    frames = frames[: int(truth.spec.bump_s // STEP_S)]  # before the knock
    td = TamperDetector(TamperParams(learn_s=30.0, learn_frames=3))
    h, w = frames[0][1].shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 4.0, 1.08)
    kinds = []
    for i, (t, image) in enumerate(frames):
        if t >= 60:
            image = cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REFLECT)
        kinds.append((t, td.check(_frame(truth, i, t, image)).kind))
    assert all(k == "ok" for t, k in kinds if t < 60)
    assert all(k == "moved" for t, k in kinds if t >= 60 + CONFIRM_S), kinds


def test_swaying_view_is_analysed_and_a_lasting_small_shift_is_moved(scenario) -> None:
    """A pole swaying 3 px (of 320 analysed) in every other frame: each frame is still usable (raw "ok")
    and the view stays ok; the same small shift lasting `sway_confirm` checks is a moved camera."""
    frames, truth = scenario("tamper")
    frames = frames[: int(truth.spec.bump_s // STEP_S)]  # before the knock
    p = TamperParams(learn_s=30.0, learn_frames=3)
    td = TamperDetector(p)
    states = []
    for i, (t, image) in enumerate(frames):
        if t >= 60 and (i % 2 or t >= 120):  # swaying from 60 s, shifted for good from 120 s
            image = np.roll(image, (0, 6), axis=(0, 1))
        states.append((t, td.check(_frame(truth, i, t, image))))
    assert all(st.ok and st.raw == "ok" for t, st in states if 30 <= t < 120), states
    assert all(st.raw == "ok" for t, st in states if t >= 120)  # a sway-sized shift never pauses a frame
    assert all(st.kind == "moved" for t, st in states if t >= 120 + p.sway_confirm * STEP_S), states


def test_state_round_trip_keeps_the_reference(scenario) -> None:
    frames, truth = scenario("tamper")
    trained = TamperDetector()
    assert trained.state() is None  # nothing learned yet
    bump = truth.spec.bump_s
    assert bump is not None
    before = [(t, im) for t, im in frames if t < bump]
    for _ in _run(trained, before, truth):
        pass
    blob = trained.state()
    assert blob is not None and len(blob) < 100_000

    restored = TamperDetector()
    restored.load_state(blob)
    after = [(t, im) for t, im in frames if bump + 1 <= t < bump + 30]
    kinds = [st.kind for _, st in _run(restored, after, truth)]
    assert not restored.state_now.learning
    assert kinds[1:] == ["moved"] * (len(kinds) - 1)

    ignored = TamperDetector()
    for junk in (b"", b"junk", _haze_state(frames, truth)):
        ignored.load_state(junk)
        assert ignored.state() is None


def _haze_state(frames: Sampled, truth: ScenarioTruth) -> bytes:
    from detector.analysis.haze import HazeAnalyzer
    from detector.synthetic.scenarios import SITE_ZONE

    an = HazeAnalyzer({"site": SITE_ZONE})
    for i, (t, image) in enumerate(frames[:2]):
        an.analyze(_frame(truth, i, t, image))
    blob = an.state()
    assert blob is not None
    return blob


def test_params_are_checked() -> None:
    with pytest.raises(ValueError):
        TamperDetector(replace(TamperParams(), learn_frames=0))
