"""OccupancyAnalyzer on synthetic street scenes analysed every 10 s of pipeline time.

The scene is a textured street (road, pavement tiles, lane marks, a façade)
with per-frame sensor noise and JPEG artefacts; passers are random blobs that
never stay, lighting is a per-channel gain with a slight spatial gradient.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from detector.analysis.occupancy import LABEL, OccupancyAnalyzer, OccupancyParams
from detector.types import Frame, Observations

W, H = 640, 360
STEP_S = 10
T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
OBJ = (300, 200, 364, 262)  # ~10% of the width, on the road
OBJ2 = (60, 210, 124, 270)  # left side, for the mask test
K = OccupancyParams().short_frames


def _street(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((H, W, 3), np.float32)
    img[:] = (105, 100, 95)  # asphalt, slightly bluish
    img[:110] = (120, 135, 160)  # pavement, warm tiles
    img[:60] = (90, 110, 140)  # façade
    for x in range(20, W, 90):  # windows
        img[12:48, x : x + 40] = (60, 55, 50)
    for x in range(0, W, 32):  # tile joints
        img[60:110, x : x + 2] -= 25
    img[84:86] -= 25
    img[108:114] = (170, 170, 170)  # kerb
    for x in range(0, W, 120):  # lane marks
        img[228:236, x : x + 60] = (200, 200, 200)
    for scale, amp in ((40, 18.0), (8, 10.0), (2, 8.0)):  # large shading, gravel, grain
        small = rng.normal(0, amp, (H // scale + 2, W // scale + 2)).astype(np.float32)
        img += cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)[:, :, None]
    return np.clip(img, 30, 215)


class Scene:
    """Renders frames: street + objects + passers, lighting gain, noise, JPEG."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed + 100)
        self.bg = _street(seed)
        self.noise = [self.rng.normal(0, 4.0, (H, W, 1)).astype(np.int16) for _ in range(6)]
        xs = np.linspace(-1, 1, W, dtype=np.float32)[None, :, None]
        self.gradient = 1 + 0.04 * xs  # the sun is a bit to the right
        self._lit: dict[tuple, np.ndarray] = {}

    def _base(self, boxes: tuple[tuple[int, int, int, int], ...], gain: tuple[float, float, float]) -> np.ndarray:
        """Street + objects under `gain`, cached: rendering must not dominate the tests."""
        key = (boxes, gain)
        if key not in self._lit:
            img = self.bg.copy()
            for i, (x0, y0, x1, y1) in enumerate(boxes):
                colour = np.array([(40, 90, 200), (160, 60, 40)][i % 2], np.float32)
                shade = np.linspace(1.1, 0.85, y1 - y0, dtype=np.float32)[:, None, None]
                img[y0:y1, x0:x1] = colour * shade
                img[y0 + 15 : y0 + 19, x0:x1] = colour * 0.6  # a stripe on the stall
            img = img * np.asarray(gain, np.float32) * self.gradient
            if len(self._lit) > 64:
                self._lit.clear()
            self._lit[key] = np.clip(img, 0, 255).astype(np.int16)
        return self._lit[key]

    def render(
        self,
        boxes: tuple[tuple[int, int, int, int], ...] = (),
        passers: int = 0,
        gain: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> np.ndarray:
        img = self._base(boxes, tuple(round(g, 4) for g in gain)) + self.noise[int(self.rng.integers(len(self.noise)))]
        for _ in range(passers):
            cx, cy = int(self.rng.integers(20, W - 20)), int(self.rng.integers(120, H - 30))
            body = tuple(float(c) * gain[k] for k, c in enumerate(self.rng.integers(20, 230, 3)))
            cv2.ellipse(img, (cx, cy), (9, 24), 0, 0, 360, body, -1)
            cv2.circle(img, (cx, cy - 30), 6, tuple(c * g for c, g in zip((40, 50, 70), gain)), -1)
        u8 = np.clip(img, 0, 255).astype(np.uint8)
        ok, jpg = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, 60])
        assert ok
        return cv2.imdecode(jpg, cv2.IMREAD_COLOR)


def _frame(i: int, image: np.ndarray) -> Frame:
    return Frame(camera_id="cam", index=i, ts=T0 + timedelta(seconds=i * STEP_S), image=image)


def _iou(a: np.ndarray, b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _norm(box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    return box[0] / W, box[1] / H, box[2] / W, box[3] / H


def _hits(obs: Observations, box: tuple[int, int, int, int]) -> bool:
    return any(_iou(b, _norm(box)) >= 0.5 for b in obs.xyxy)


def _run(an: OccupancyAnalyzer, frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, Observations]]:
    for i, image in frames:
        yield i, an.analyze(_frame(i, image))


def test_object_detected_kept_for_an_hour_then_released() -> None:
    scene, an = Scene(1), OccupancyAnalyzer()
    appear, remove = 120 // STEP_S, 62 * 60 // STEP_S
    end = remove + 180 // STEP_S
    first_hit: int | None = None

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        for i in range(end):
            yield i, scene.render((OBJ,) if appear <= i < remove else (), passers=2)

    for i, obs in _run(an, frames()):
        assert all(lbl == LABEL for lbl in obs.labels)
        assert np.all((obs.scores >= 0) & (obs.scores <= 1))
        if i < appear:
            assert len(obs) == 0, f"false positive before the object, frame {i}"
        elif i < remove:
            # nothing but the object, ever
            assert all(_iou(b, _norm(OBJ)) > 0.2 for b in obs.xyxy), (i, obs.xyxy)
            if first_hit is None and _hits(obs, OBJ):
                first_hit = i
                extra = obs.extras[0]
                assert 0.01 < extra["area"] < 0.03
                since = datetime.fromisoformat(extra["static_since"])
                assert T0 + timedelta(seconds=appear * STEP_S) <= since <= T0 + timedelta(seconds=i * STEP_S)
            if first_hit is not None:
                assert _hits(obs, OBJ), f"object lost at minute {i * STEP_S / 60:.1f}"
        elif (i - remove) * STEP_S >= 60:
            assert len(obs) == 0, f"still reported {(i - remove) * STEP_S} s after removal"
    assert first_hit is not None and (first_hit - appear) * STEP_S <= 60


def test_passers_never_reported() -> None:
    scene, an = Scene(2), OccupancyAnalyzer()
    for i in range(90):
        assert len(an.analyze(_frame(i, scene.render(passers=int(scene.rng.integers(2, 7)))))) == 0, i


def test_lighting_drift_and_cloud_not_reported() -> None:
    scene, an = Scene(3), OccupancyAnalyzer()
    for i in range(100):
        t = i * STEP_S
        if t < 600:  # ±15% over 10 minutes, a bit warmer when brighter
            s = 0.15 * np.sin(2 * np.pi * t / 600)
            gain = (1 + 0.8 * s, 1 + s, 1 + 1.2 * s)
        elif t < 800:  # a cloud: 25% darker at once
            gain = (0.75, 0.75, 0.75)
        else:  # and gone
            gain = (1.0, 1.0, 1.0)
        obs = an.analyze(_frame(i, scene.render(passers=2, gain=gain)))
        assert len(obs) == 0, f"reported at t={t}s: {obs.xyxy}"


def test_object_detected_under_cloud() -> None:
    scene, an = Scene(4), OccupancyAnalyzer()
    hits = []
    for i in range(40):
        gain = (0.75,) * 3 if i >= 20 else (1.0,) * 3
        obs = an.analyze(_frame(i, scene.render((OBJ,) if i >= 12 else (), passers=1, gain=gain)))
        hits.append(_hits(obs, OBJ))
        assert all(_iou(b, _norm(OBJ)) > 0.2 for b in obs.xyxy)
    assert all(hits[18:20]) and all(hits[24:])


def test_mask_excludes_objects_outside() -> None:
    left_half = [[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]]
    scene, an = Scene(5), OccupancyAnalyzer(mask=left_half)
    last = Observations()
    for i in range(30):
        last = an.analyze(_frame(i, scene.render((OBJ2, (450, 200, 514, 262)) if i >= 10 else (), passers=1)))
        assert all(b[0] < 0.5 for b in last.xyxy), last.xyxy
    assert _hits(last, OBJ2)


@pytest.mark.parametrize("zones", [2, 4])
def test_overlapping_zones_do_not_cancel_out(zones: int) -> None:
    # the mask is the union of the zones: an object where an even number of them overlap is inside it
    # (filled as one even-odd polygon set, two whole-view zones gave an empty mask and nothing was reported)
    full = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    left_half = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
    scene, an = Scene(5), OccupancyAnalyzer(mask=[full, left_half] * (zones // 2))
    last = Observations()
    for i in range(30):
        last = an.analyze(_frame(i, scene.render((OBJ2,) if i >= 10 else (), passers=1)))
    assert _hits(last, OBJ2)


def test_state_round_trip_keeps_the_empty_view() -> None:
    scene, trained = Scene(6), OccupancyAnalyzer()
    for i in range(40):  # empty for 200 s, then the object for 200 s
        obs = trained.analyze(_frame(i, scene.render((OBJ,) if i >= 20 else (), passers=1)))
    assert _hits(obs, OBJ)
    since = obs.extras[0]["static_since"]
    blob = trained.state()
    assert blob is not None and len(blob) < 400_000

    restored = OccupancyAnalyzer()
    restored.load_state(blob)
    for j in range(K):
        obs = restored.analyze(_frame(100 + j, scene.render((OBJ,), passers=1)))
        if j < K - 1:
            assert len(obs) == 0  # warm-up
    assert _hits(obs, OBJ)
    assert obs.extras[0]["static_since"] == since


def test_state_that_does_not_fit_is_ignored() -> None:
    an = OccupancyAnalyzer()
    an.load_state(b"not a state")
    small = OccupancyAnalyzer(OccupancyParams(work_width=160))
    small.load_state(OccupancyAnalyzer().state() or b"")
    scene, trained = Scene(7), OccupancyAnalyzer()
    for i in range(K + 1):
        trained.analyze(_frame(i, scene.render()))
    small.load_state(trained.state() or b"")  # 320-wide background for a 160-wide analyzer
    for i in range(K + 3):
        assert len(small.analyze(_frame(i, scene.render()))) == 0


def test_ghost_of_an_object_in_the_first_view_is_absorbed() -> None:
    scene, an = Scene(8), OccupancyAnalyzer()
    for i in range(60):  # a parked stall leaves after 5 minutes
        obs = an.analyze(_frame(i, scene.render((OBJ,) if i < 30 else (), passers=1)))
        assert len(obs) == 0, f"ghost reported at frame {i}: {obs.xyxy}"


@pytest.mark.parametrize("size", [(1280, 720), (320, 180)])
def test_any_input_size(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    an = OccupancyAnalyzer()
    base = rng.integers(60, 180, (size[1], size[0], 3), dtype=np.uint8)
    for i in range(K + 2):
        assert len(an.analyze(_frame(i, base))) == 0


def test_bumped_camera_is_realigned_not_reported() -> None:
    scene, an = Scene(9), OccupancyAnalyzer()
    moved = (OBJ[0] + 40, OBJ[1] + 10, OBJ[2] + 40, OBJ[3] + 10)
    for i in range(70):  # the object stands from frame 12; the camera turns at frame 30
        image = scene.render((OBJ,) if i >= 12 else (), passers=2)
        if i >= 30:
            image = np.roll(image, (10, 40), axis=(0, 1))
        obs = an.analyze(_frame(i, image))
        target = moved if i >= 30 else OBJ
        assert all(_iou(b, _norm(target)) > 0.2 for b in obs.xyxy), (i, obs.xyxy)
    assert _hits(obs, moved)
    assert obs.extras[0]["static_since"] < (T0 + timedelta(seconds=30 * STEP_S)).isoformat()


def test_object_absorbed_after_max_static() -> None:
    scene, an = Scene(10), OccupancyAnalyzer(OccupancyParams(max_static_minutes=3))
    hits = [_hits(an.analyze(_frame(i, scene.render((OBJ,) if i >= 12 else ()))), OBJ) for i in range(50)]
    assert any(hits[14:20]) and not any(hits[40:])


def test_swaying_camera_keeps_every_analysis_and_a_recurring_passer_is_not_stationary() -> None:
    # a camera that sways 3 px (of 320 analysed) in half of its frames; a passer comes back to the same
    # spot in one unswayed frame of four. Skipping the swayed frames would leave only the passer's frames
    # and the clean ones in turn, and the passer would read as an object standing there.
    scene, an = Scene(11), OccupancyAnalyzer()
    sway = {2: (0, 6), 3: (5, 0)}  # (dy, dx) at 640 px
    seen = []
    for i in range(80):
        boxes = ((OBJ,) if i >= 12 else ()) + ((OBJ2,) if i % 4 == 1 else ())
        image = scene.render(boxes, passers=1)
        if i % 4 in sway:
            image = np.roll(image, sway[i % 4], axis=(0, 1))
        obs = an.analyze(_frame(i, image))
        assert not any(_iou(b, _norm(OBJ2)) > 0.2 for b in obs.xyxy), (i, obs.xyxy)
        if i >= 24:
            seen.append(_hits(obs, OBJ))
    assert sum(seen) >= 0.9 * len(seen), seen
