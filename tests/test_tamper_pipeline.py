"""A camera knocked off its view, sprayed or out of focus: rules pause, one maintenance incident, never a case.

The street of the tamper scenarios with the demo's vendor stall pushed into the
no-vending zone *after* the view went wrong: while the view is off its
reference the stall must not become an incident, and when the view comes back
(the preset restored, the lens cleaned) the rules resume and find it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from api.accounts import create_token
from detector.rules.engine import MAINTENANCE
from detector.runtime.app import GridSight
from detector.synthetic.scenarios import ScenarioSpec, ensure_scenario
from detector.synthetic.street_scenes import NO_VENDING_ZONE
from tests.conftest import write_config
from tests.support.replay import replay

pytestmark = pytest.mark.slow

TAMPER_AT_S = 150  # the reference view is learned in the first two minutes
STALL_AT_S = 170


def camera(video: Path, start: str) -> dict:
    return {
        "id": "cam-1",
        "name": "示范街",
        "source": {"url": str(video), "loop": False, "start_time": start},
        "cadence_s": 10,
        "zones": [{"name": "walk", "purpose": "no_vending", "polygon": [list(p) for p in NO_VENDING_ZONE]}],
        "problems": ["09006"],
        "rules": {"09006": {"persistence": {"k": 4, "n": 6, "minutes": 1}, "clear_minutes": 1}},
        "filing": {"09006": {"mode": "auto", "min_score": 0.0, "min_minutes": 0}},  # every 09006 incident is a case
        "location": {"division_code": "110107", "grid_code": "110107001002003"},
    }


def rows(root: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(root / "gridsight.db") as con:
        return con.execute(sql).fetchall()


def utc(stored: str) -> datetime:
    """A timestamp as the database stores it (naive UTC)."""
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("fault", "kinds"),
    [
        ({"bump_s": TAMPER_AT_S}, {"moved"}),
        ({"cover_s": TAMPER_AT_S}, {"covered", "blurred"}),  # paint smears the view before it hides it
    ],
    ids=["moved", "covered"],
)
def test_a_tampered_camera_pauses_its_rules_and_opens_one_maintenance_incident(
    tmp_path: Path, video_cache: Path, fault: dict, kinds: set[str]
) -> None:
    spec = ScenarioSpec(seed=15, duration_s=420, stall_arrive_s=STALL_AT_S, **fault)
    video, _ = ensure_scenario(video_cache, spec)
    cfg = write_config(tmp_path, [camera(video, spec.start)], log_level="WARNING")
    seen: list[dict] = []

    def ask_api(app: GridSight) -> None:
        with app.sessions.begin() as s:
            token = create_token(s, "test", "viewer")
        r = httpx.get(
            f"http://127.0.0.1:{app.api_port}/api/v1/cameras", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        seen.extend(r.json())

    # stopped 20 s before the end of the file: the camera is still live when the API is asked
    run = replay(cfg, until_s=spec.duration_s - 20, inspect=ask_api)

    assert run.paused["cam-1"] >= 15  # every analysis from the fault on
    [cam] = seen
    assert cam["state"] == "tampered" and "rules paused" in cam["last_error"]
    incidents = rows(tmp_path, "select problem_code, zone, state, review_state, details from incidents")
    assert len(incidents) == 1, incidents  # no stall incident from a view that is not the configured one
    code, zone, state, review, details = incidents[0]
    assert (code, zone, state, review) == (MAINTENANCE, "view", "present", None)  # never in the review queue
    assert json.loads(details)["extras"]["kind"] in kinds
    assert rows(tmp_path, "select count(*) from cases") == [(0,)]
    assert rows(tmp_path, "select count(*) from outbox") == [(0,)]


def test_when_the_view_comes_back_the_maintenance_incident_clears_and_the_rules_resume(
    tmp_path: Path, video_cache: Path
) -> None:
    restore = 270
    spec = ScenarioSpec(seed=16, duration_s=420, defocus_s=TAMPER_AT_S, restore_s=restore, stall_arrive_s=STALL_AT_S)
    video, truth = ensure_scenario(video_cache, spec)
    cfg = write_config(tmp_path, [camera(video, spec.start)], log_level="WARNING")

    run = replay(cfg)

    assert run.health["cam-1"].view is None
    found = rows(tmp_path, "select id, problem_code, state, opened_at, cleared_at from incidents order by id")
    assert [(code, state) for _, code, state, _, _ in found] == [(MAINTENANCE, "cleared"), ("09006", "present")]
    (_, _, _, m_open, m_clear), (stall_id, _, _, s_open, _) = found
    back = truth.ts(restore)
    assert utc(m_open) < back <= utc(m_clear) <= back + timedelta(seconds=20)  # cleared by the first analyses back
    assert utc(s_open) > back  # the stall, there since the fault, is only found once the view is back
    assert rows(tmp_path, "select incident_id from cases") == [(stall_id,)]  # the stall filed, the camera never
