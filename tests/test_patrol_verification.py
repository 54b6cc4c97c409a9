"""核实 on a patrolling PTZ camera in `gridsight run`: the request's preset goes next (no waiting out a lap), the
answer is present with evidence, the patrol then keeps its order and does not go back; a problem no preset watches
is a 422. The answer comes from the visit, not its first frame: an empty preset is absent, a pile left there since
the last visit is present (the stationary analyzer sees it only from the visit's third frame)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import write_config
from tests.detector.test_ptz import PASSWORD, preset_videos  # noqa: F401 - fixture
from tests.support.onvif_sim import CHANNEL, OnvifSimulator
from tests.support.waiting import wait_until
from tests.test_patrol_run import dome, dwelt, with_a_pile
from tests.test_run import api_token, api_url

pytestmark = pytest.mark.slow

PRESETS = ["1", "2", "3", "4", "5", "6"]
PILE = "5"  # the only preset that watches 06036, and where the pile is
GRID = "110107001002003"


def camera(snapshot_url: str, onvif_port: int) -> dict:
    cam = dome("dome-1", snapshot_url, onvif_port)
    cam["problems"] = ["06036", "09001"]
    cam["patrol"] = [{"preset": p, "dwell_s": 2, "problems": ["06036" if p == PILE else "09001"]} for p in PRESETS]
    return cam


def test_a_verification_sends_the_patrol_to_its_preset_next_and_is_answered_there(preset_videos, tmp_path):  # noqa: F811
    sim = OnvifSimulator({p: preset_videos[p] for p in PRESETS}, tmp_path / "sim", password=PASSWORD, move_s=0.4)
    sim.start()
    cfg = write_config(tmp_path, [camera(sim.gateway.url("snap", CHANNEL), sim.port)])
    env = {**os.environ, "DOME_USER": "admin", "DOME_PASS": PASSWORD}
    log = (tmp_path / "log.txt").open("a")
    args = [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg), "--for", "120"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        with httpx.Client(base_url=api_url(proc), headers=api_token(cfg, "operator"), timeout=10) as http:
            # preset 5 learns its empty view on the first lap; the pile is there from then on and seen on the second
            wait_until("a first visit of preset 5", lambda: dwelt(tmp_path)[-1:] == ["6"], 40, every_s=0.2)
            sim.frames[PILE] = with_a_pile(sim.frames[PILE])
            wait_until("the second lap over, back at 2", lambda: dwelt(tmp_path)[2 * len(PRESETS) :] == ["1", "2"],
                       40, every_s=0.1)  # fmt: skip
            before = dwelt(tmp_path)

            r = http.post("/api/v1/verifications", json={"problem_code": "06010", "location": {"camera_id": "dome-1"}})
            assert r.status_code == 422, r.text  # no preset of the camera watches it
            t = time.monotonic()
            r = http.post("/api/v1/verifications", json={"problem_code": "06036", "location": {"grid_code": GRID}})
            assert r.status_code == 201, r.text
            vid = r.json()["id"]
            got = wait_until("answered", lambda: (v := http.get(f"/api/v1/verifications/{vid}").json())["status"]
                             == "answered" and v, 15, every_s=0.1)  # fmt: skip
            took = time.monotonic() - t
            assert got["result"] == "present", got
            [look] = got["cameras"]
            assert look["camera_id"] == "dome-1" and look["findings"], look
            centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in (f["box"] for f in look["findings"])]
            assert any(0.40 < x < 0.63 and 0.38 < y < 0.67 for x, y in centres), look["findings"]  # the pile, found
            assert sorted(e["kind"] for e in look["evidence"]) == ["annotated", "clean"]
            for e in look["evidence"]:
                assert http.get(e["url"]).status_code == 200

            # detour: 5 straight after 2, then on with 3, 4, 5 in order; 5 not visited again on the way
            wait_until("five more stops", lambda: len(dwelt(tmp_path)) >= len(before) + 5, 25, every_s=0.2)
            assert dwelt(tmp_path)[len(before) :][:5] == ["5", "3", "4", "5", "6"], dwelt(tmp_path)[len(before) - 2 :]
        print(f"\n核实 on a {len(PRESETS)}-preset patrol, asked at preset 2 for {PILE}: answered in {took:.1f} s")
    finally:
        proc.terminate()
        proc.wait(20)
        sim.stop()


def ask(http: httpx.Client, within_s: float) -> dict:
    r = http.post("/api/v1/verifications", json={"problem_code": "06036", "location": {"grid_code": GRID}})
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    return wait_until("answered", lambda: (v := http.get(f"/api/v1/verifications/{vid}").json())["status"]
                      == "answered" and v, within_s, every_s=0.1)  # fmt: skip


def test_a_verification_is_answered_from_the_visit_absent_when_empty_present_for_a_new_pile(preset_videos, tmp_path):  # noqa: F811
    sim = OnvifSimulator({p: preset_videos[p] for p in PRESETS}, tmp_path / "sim", password=PASSWORD, move_s=0.4)
    sim.start()
    cam = camera(sim.gateway.url("snap", CHANNEL), sim.port)
    cam["patrol"][PRESETS.index(PILE)]["dwell_s"] = 4  # ~8 settled frames at cadence 0.5 s: a visit's worth
    cfg = write_config(tmp_path, [cam])
    env = {**os.environ, "DOME_USER": "admin", "DOME_PASS": PASSWORD}
    log = (tmp_path / "log.txt").open("a")
    args = [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg), "--for", "150"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        with httpx.Client(base_url=api_url(proc), headers=api_token(cfg, "operator"), timeout=10) as http:
            wait_until("a first visit of preset 5", lambda: dwelt(tmp_path)[-1:] == ["6"], 40, every_s=0.2)
            empty = ask(http, 30)  # preset 5 as it is: nothing on the pavement
            assert empty["result"] == "absent", empty
            [look] = empty["cameras"]
            assert not look["findings"] and [e["kind"] for e in look["evidence"]] == ["clean"], look

            # the pile is left at 5 while the patrol is elsewhere: the visit that answers is its first there
            wait_until("the patrol away from 5", lambda: dwelt(tmp_path)[-1:] not in ([], [PILE]), 20, every_s=0.1)
            sim.frames[PILE] = with_a_pile(sim.frames[PILE])
            piled = ask(http, 30)
            assert piled["result"] == "present", piled
            [look] = piled["cameras"]
            centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in (f["box"] for f in look["findings"])]
            assert any(0.40 < x < 0.63 and 0.38 < y < 0.67 for x, y in centres), look["findings"]  # the pile, found
            assert sorted(e["kind"] for e in look["evidence"]) == ["annotated", "clean"]
    finally:
        proc.terminate()
        proc.wait(20)
        sim.stop()
