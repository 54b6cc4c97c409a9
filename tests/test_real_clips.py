"""A real fixed-camera clip looped through the whole pipeline with every analyzer on: no false incident.

The bottle clip (hands putting bottles down and taking them away) is seen as a
few keyframes again and again, two of them with the camera swayed by ~3 px.
Zones of every purpose cover the whole view. Pausing or skipping the swayed
frames left only the frames with a hand in the same place, which then read as
goods in front of a shop (09005) and, with bottles as "people" beside them, as
a stall and a vendor (09006, 09001).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from detector.analysis.occupancy import OccupancyAnalyzer
from detector.types import Frame, Observations
from tests.conftest import write_config
from tests.support.replay import replay

pytestmark = pytest.mark.slow

FULL = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
START = "2026-03-02T18:00:00+08:00"


def test_looped_bottle_clip_opens_nothing_and_pauses_nothing(tmp_path: Path, shared_video: Callable) -> None:
    clip = shared_video("bottle-detection.mp4")
    zones = [{"name": p, "purpose": p, "polygon": FULL} for p in ("no_vending", "shop_front", "wall")]
    cam = {
        "id": "bottles", "name": "bottles", "source": {"url": str(clip), "loop": True, "start_time": START},
        "cadence_s": 10, "zones": zones, "problems": ["09006", "09005", "09001", "07001"],
    }  # fmt: skip
    result = replay(write_config(tmp_path, [cam], log_level="ERROR"), until_s=15 * 60, timeout_s=600)
    with sqlite3.connect(tmp_path / "gridsight.db") as con:
        opened = con.execute("select problem_code, opened_at, box from incidents").fetchall()
    assert result.frames["bottles"] >= 80
    assert result.paused["bottles"] == 0
    assert opened == []


def test_bottles_put_down_and_taken_away_are_seen_but_never_stand_five_minutes(
    tmp_path: Path, shared_video: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four whole-view zones (an even number: the occupancy mask once filled them even-odd, i.e. not at all,
    # and the clip "opened nothing" unseen). Seen, the left bottle is there in about every other analysis
    # (put down, taken away; looped) and the hole it leaves in the learned view in the others: hits at one
    # spot kept a 09005 candidate alive from 18:01 until a run of 4 in 6 opened it at 18:17, though
    # occupancy saw the object arrive anew at every hit (its static_since).
    clip = shared_video("bottle-detection.mp4")
    zones = [{"name": p, "purpose": p, "polygon": FULL} for p in ("no_vending", "shop_front", "wall", "sidewalk")]
    cam = {
        "id": "bottles", "name": "bottles", "source": {"url": str(clip), "loop": True, "start_time": START},
        "cadence_s": 10, "zones": zones, "problems": ["09006", "09005", "09001", "07001"],
    }  # fmt: skip
    reported = []
    analyze = OccupancyAnalyzer.analyze

    def counting(self: OccupancyAnalyzer, frame: Frame) -> Observations:
        obs = analyze(self, frame)
        reported.append(len(obs))
        return obs

    monkeypatch.setattr(OccupancyAnalyzer, "analyze", counting)
    replay(write_config(tmp_path, [cam], log_level="ERROR"), until_s=25 * 60, timeout_s=600)
    with sqlite3.connect(tmp_path / "gridsight.db") as con:
        opened = con.execute("select problem_code, opened_at, box from incidents").fetchall()
    assert sum(n > 0 for n in reported) >= len(reported) // 3, "occupancy does not see the bottles"
    assert opened == []
