"""核查 on video: after the platform says "handled", the camera decides whether the stall is gone."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from detector.synthetic.demo import StreetSpec, ensure_demo_video
from tests.conftest import street_camera, write_config
from tests.test_run import api_token, api_url, start

pytestmark = pytest.mark.slow

LEAVES = StreetSpec(width=640, height=360, duration_s=240, stall_arrive_s=20, stall_leave_s=150, cloud_s=None)
STAYS = StreetSpec(width=640, height=360, duration_s=240, stall_arrive_s=20, stall_leave_s=None, cloud_s=None)


def verify_scenario(tmp_path: Path, video: Path) -> dict:
    cam = street_camera(
        video,
        source={"url": str(video), "loop": False, "speed": 8},  # 240 s of video in 30 s
        filing={"09006": {"mode": "auto", "min_score": 0.0, "min_minutes": 0}},
    )
    cfg = write_config(tmp_path, [cam], filing={"verify_grace_minutes": 0.25})
    headers = api_token(cfg, "operator")
    proc = start(cfg, 34, tmp_path)
    base = api_url(proc)
    with httpx.Client(base_url=base, timeout=10, headers=headers) as http:
        end = time.monotonic() + 25
        cases: list = []
        while not (cases and cases[0]["status"] == "filed") and time.monotonic() < end:  # the local register's number
            cases = http.get("/api/v1/cases").json()
            time.sleep(0.2)
        assert cases and cases[0]["status"] == "filed", f"no case filed: {cases}"
        case_id = cases[0]["id"]
        # The street reports the stall handled (local register: the operator moves it).
        r = http.post(f"/api/v1/cases/{case_id}/status", json={"status": "dispatched"})
        assert r.status_code == 200, r.text
        r = http.post(f"/api/v1/cases/{case_id}/status", json={"status": "handled", "note": "已劝离"})
        assert r.status_code == 200 and r.json()["verification"] == "checking"
        assert proc.wait(60) == 0
    return {"case_id": case_id, "cfg": cfg}


def final_case(tmp_path: Path, case_id: int) -> dict:
    import sqlite3

    con = sqlite3.connect(tmp_path / "gridsight.db")
    verification, status = con.execute("select verification, status from cases where id = ?", (case_id,)).fetchone()
    updates = con.execute(
        "select payload, state from outbox where case_id = ? and kind = 'update' order by id", (case_id,)
    ).fetchall()
    return {"verification": verification, "status": status, "updates": updates}


def test_a_stall_gone_after_handled_is_verified_cleared(tmp_path: Path, video_cache: Path) -> None:
    run = verify_scenario(tmp_path, ensure_demo_video(video_cache, LEAVES))
    got = final_case(tmp_path, run["case_id"])
    assert got["verification"] == "cleared"
    assert got["status"] == "verified"  # local register: the camera's 核查 is the verdict
    assert any('"result": "cleared"' in p and state == "done" for p, state in got["updates"])


def test_a_stall_still_there_after_handled_is_reported_not_resolved(tmp_path: Path, video_cache: Path) -> None:
    run = verify_scenario(tmp_path, ensure_demo_video(video_cache, STAYS))
    got = final_case(tmp_path, run["case_id"])
    assert got["verification"] == "not_resolved" and got["status"] == "handled"
    assert any('"result": "not_resolved"' in p for p, _ in got["updates"])
