"""核实 on request end to end: `gridsight run` on a real street video, real HTTP, a real platform server."""

from __future__ import annotations

import hashlib
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import street_camera, write_config
from tests.support.platform import PlatformServer
from tests.test_run import api_token, api_url, db, start

pytestmark = pytest.mark.slow

GRID = "110107001002003"
T0 = datetime.fromisoformat("2026-03-02T10:00:00+08:00")  # street_camera's start_time: video second 0
DEAD = {"id": "dead-1", "name": "断线", "problems": ["09006"], "source": {"url": "rtsp://127.0.0.1:9/none"},
        "location": {"division_code": "110107", "grid_code": "110107001002009"}}  # fmt: skip


def ask(http: httpx.Client, location: dict, reference: str | None = None) -> int:
    r = http.post("/api/v1/verifications", json={"problem_code": "09006", "location": location, "reference": reference})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def answered(http: httpx.Client, vid: int, within_s: float) -> dict:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        got = http.get(f"/api/v1/verifications/{vid}").json()
        if got["status"] == "answered":
            return got
        time.sleep(0.1)
    raise AssertionError(f"verification {vid} not answered within {within_s} s: {got}")


def video_second(http: httpx.Client, camera_id: str) -> float:
    at = http.get(f"/api/v1/cameras/{camera_id}").json()["last_frame_at"]
    return -1.0 if at is None else (datetime.fromisoformat(at) - T0).total_seconds()


def test_present_absent_and_cannot_see_are_answered_and_reach_the_platform(short_street: Path, tmp_path: Path) -> None:
    cam = street_camera(short_street, source={"url": str(short_street), "loop": False, "speed": 4,
                                              "start_time": T0.isoformat()})  # fmt: skip
    with PlatformServer(tmp_path / "platform") as plat:
        platform = {"type": "http_json", "base_url": plat.base_url, "timeout_s": 3}
        cfg = write_config(tmp_path, [cam, DEAD], platform=platform, filing={"retry_min_s": 0.5, "retry_max_s": 1})
        headers = api_token(cfg, "operator")
        proc = start(cfg, 90, tmp_path)
        base = api_url(proc)
        with httpx.Client(base_url=base, timeout=10, headers=headers) as http:
            # the stall arrives at video second 20: before it, the street is clear
            while video_second(http, "street-1") < 0:
                time.sleep(0.1)
            assert video_second(http, "street-1") < 12, "the video ran ahead before the first request"
            absent = answered(http, ask(http, {"grid_code": GRID}, "RX-1"), 5)
            assert absent["result"] == "absent"
            [look] = absent["cameras"]
            assert look["camera_id"] == "street-1" and look["reason"] is None and look["findings"] == []
            assert [e["kind"] for e in look["evidence"]] == ["clean"]
            # while it stands (video seconds 20-100), the camera sees it: no persistence window to wait out
            while video_second(http, "street-1") < 45:
                time.sleep(0.2)
            present = answered(http, ask(http, {"camera_id": "street-1"}, "RX-2"), 5)
            assert present["result"] == "present", present
            [look] = present["cameras"]
            assert look["findings"] and look["findings"][0]["zone"] == "walk"
            assert 45 <= (datetime.fromisoformat(look["frame_at"]) - T0).total_seconds() < 60
            assert sorted(e["kind"] for e in look["evidence"]) == ["annotated", "clean"]
            for e in look["evidence"]:
                assert hashlib.sha256(http.get(e["url"]).content).hexdigest() == e["sha256"]
            # a camera that never connects cannot see; the platform is down meanwhile: the answer waits for it
            plat.stop()
            dead = answered(http, ask(http, {"camera_id": "dead-1"}, "RX-3"), 30)
            assert dead["result"] == "cannot_see" and dead["cameras"][0]["reason"] == "camera failed"
            time.sleep(1.5)
            assert http.get(f"/api/v1/verifications/{dead['id']}").json()["delivery"] == "pending"
            plat.start()
            end = time.monotonic() + 20  # RX-2's answer may have been on its way when the platform stopped
            for v in (absent, present, dead):
                while http.get(f"/api/v1/verifications/{v['id']}").json()["delivery"] != "done":
                    assert time.monotonic() < end, f"answer {v['id']} not delivered after the platform came back"
                    time.sleep(0.2)
        got = {v["payload"]["reference"]: v for v in plat.admin.verifications()}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert set(got) == {"RX-1", "RX-2", "RX-3"}  # each answered once
    assert [got[r]["payload"]["result"] for r in ("RX-1", "RX-2", "RX-3")] == ["absent", "present", "cannot_see"]
    files = got["RX-2"]["files"]
    assert sorted(f["kind"] for f in files) == ["annotated", "clean"] and all(f["sha256_ok"] for f in files)
    assert got["RX-2"]["payload"]["cameras"][0]["findings"][0]["zone"] == "walk"
    [dead_look] = got["RX-3"]["payload"]["cameras"]
    assert (dead_look["camera_id"], dead_look["reason"], got["RX-3"]["files"]) == ("dead-1", "camera failed", [])


def test_a_pending_request_is_answered_after_a_restart(short_street: Path, tmp_path: Path) -> None:
    # one analysis a minute of real time: the request made after the first frame waits for the next one
    cam = street_camera(short_street, cadence_s=60, source={"url": str(short_street), "loop": False, "speed": 1,
                                                            "start_time": T0.isoformat()})  # fmt: skip
    cfg = write_config(tmp_path, [cam])
    headers = api_token(cfg, "operator")
    proc = start(cfg, None, tmp_path)
    with httpx.Client(base_url=api_url(proc), timeout=10, headers=headers) as http:
        # the first frame analysed, not only received: else that analysis could answer the request
        while not http.get("/api/v1/cameras/street-1").json()["frames_analysed_per_min"]:
            time.sleep(0.1)
        vid = ask(http, {"grid_code": GRID}, "RX-9")
        time.sleep(0.5)
        assert http.get(f"/api/v1/verifications/{vid}").json()["status"] == "pending"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert db(tmp_path).execute("select status from verifications where id = ?", (vid,)).fetchone() == ("pending",)
    restarted = datetime.now().astimezone()
    proc = start(cfg, None, tmp_path)
    with httpx.Client(base_url=api_url(proc), timeout=10, headers=headers) as http:
        got = answered(http, vid, 15)  # the first frame after the restart, not the next minute
        end = time.monotonic() + 10
        while http.get(f"/api/v1/verifications/{vid}").json()["delivery"] != "done" and time.monotonic() < end:
            time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert got["result"] in ("absent", "present") and got["cameras"][0]["evidence"]
    assert datetime.fromisoformat(got["answered_at"]) > restarted - timedelta(seconds=1)
    outbox = db(tmp_path).execute("select kind, state from outbox where verification_id = ?", (vid,)).fetchall()
    assert outbox == [("verification", "done")]  # the local register: stored, told once
