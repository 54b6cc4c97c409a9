from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from detector.analysis.gate import SceneGate
from detector.analysis.zones import ZoneMasks
from detector.config import Zone
from detector.types import Frame

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
BASE = np.random.default_rng(1).integers(60, 200, (360, 640, 3), np.uint8)


def frame(i: int, image: np.ndarray, seconds: float) -> Frame:
    return Frame("c", i, T0 + timedelta(seconds=seconds), image)


def test_unchanged_scene_is_skipped_but_reanalysed_every_max_skip() -> None:
    gate = SceneGate(threshold=2.0, max_skip=timedelta(minutes=1))
    noisy = [
        np.clip(BASE + np.random.default_rng(i).normal(0, 2, BASE.shape), 0, 255).astype(np.uint8) for i in range(20)
    ]
    decisions = [gate.should_analyze(frame(i, img, 10 * i)) for i, img in enumerate(noisy)]
    # first frame, then once a minute (every 6th analysis at 10 s)
    assert [i for i, d in enumerate(decisions) if d] == [0, 6, 12, 18]


def test_a_change_inside_the_watched_zone_is_analysed_and_outside_it_is_not() -> None:
    zone = Zone(name="walk", purpose="no_vending", polygon=[(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)])
    gate = SceneGate(threshold=2.0, max_skip=timedelta(minutes=10), masks=ZoneMasks([zone]))
    assert gate.should_analyze(frame(0, BASE, 0))
    sky = BASE.copy()
    sky[:150] = 255  # a big change above the zone (e.g. a bus passing on the far side)
    assert not gate.should_analyze(frame(1, sky, 10))
    stall = BASE.copy()
    stall[220:330, 300:400] = (20, 20, 200)
    assert gate.should_analyze(frame(2, stall, 20))
