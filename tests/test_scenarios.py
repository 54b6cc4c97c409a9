"""Model-free problems end to end: `gridsight run` on generated scenarios opens the right incidents."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from detector.synthetic.scenarios import SCENARIOS, SITE_ZONE, ensure_scenario
from tests.conftest import write_config
from tests.test_run import api_url, start

pytestmark = pytest.mark.slow


def site_camera(video: Path, start_time: str) -> dict:
    return {
        "id": "site-1",
        "name": "示范工地",
        "source": {"url": str(video), "loop": False, "start_time": start_time},
        "cadence_s": 5,
        "zones": [{"name": "site", "purpose": "construction_site", "polygon": [list(p) for p in SITE_ZONE]}],
        "problems": ["08004"],
        "rules": {"08004": {"persistence": {"k": 4, "n": 6, "minutes": 1}, "clear_minutes": 1}},
    }


@pytest.mark.parametrize(("scenario", "expect"), [("dust", 1), ("sun_cloud", 0)])
def test_dust_over_a_site_opens_one_incident_and_a_cloud_opens_none(
    tmp_path: Path, video_cache: Path, scenario: str, expect: int
) -> None:
    spec = SCENARIOS[scenario]
    video, _truth = ensure_scenario(video_cache, spec)
    cfg = write_config(tmp_path, [site_camera(video, spec.start)])
    proc = start(cfg, 15, tmp_path)
    api_url(proc)
    assert proc.wait(120) == 0
    con = sqlite3.connect(tmp_path / "gridsight.db")
    rows = con.execute("select problem_code, zone from incidents").fetchall()
    assert rows == [("08004", "site")] * expect
