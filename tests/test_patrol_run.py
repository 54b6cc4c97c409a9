"""`gridsight run` with a patrolling PTZ camera (轮巡) on the ONVIF simulator: presets in turn, a problem at one
preset opens an incident keyed by that preset, the moves open nothing, and an operator's lock holds the patrol."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from tests.conftest import write_config
from tests.detector.test_ptz import PASSWORD, free_port, preset_videos  # noqa: F401 - fixture
from tests.support.onvif_sim import CHANNEL, OnvifSimulator
from tests.support.waiting import wait_until
from tests.test_run import api_token, api_url

pytestmark = pytest.mark.slow

PRESETS = ["1", "2", "3", "4"]
WHOLE = [[0.02, 0.02], [0.98, 0.02], [0.98, 0.98], [0.02, 0.98]]


def dome(cam_id: str, snapshot_url: str, onvif_port: int) -> dict:
    return {
        "id": cam_id,
        "name": "巡逻球机 " + cam_id,
        "source": {"url": snapshot_url, "snapshot": True},
        "location": {"division_code": "110107", "grid_code": "110107001002003"},
        "cadence_s": 0.5,
        "zones": [{"name": "walk", "purpose": "sidewalk", "polygon": WHOLE}],
        "problems": ["06036"],
        "rules": {"06036": {"persistence": {"k": 2, "n": 3, "minutes": 0}, "clear_minutes": 0.1}},
        "ptz": {"host": "127.0.0.1", "port": onvif_port, "username_env": "DOME_USER", "password_env": "DOME_PASS",
                "timeout_s": 2, "settle_s": 0, "settle_frames": 1, "poll_s": 0.25},
        "patrol": [{"preset": p, "dwell_s": 2} for p in PRESETS],
    }  # fmt: skip


def with_a_pile(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The view with sundries piled in the middle of the pavement, and left there."""
    out = []
    for f in frames:
        f = f.copy()
        cv2.rectangle(f, (130, 70), (200, 120), (60, 90, 150), -1)
        out.append(f)
    return out


def incidents(root: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(root / "gridsight.db") as con:
        return con.execute("select case_key, problem_code, state from incidents").fetchall()


def dwelt(root: Path) -> list[str]:
    """The presets the patrol settled at, in order (from the JSON log)."""
    out = []
    for line in (root / "log.txt").read_text().splitlines():
        if '"patrol dwelling"' in line and '"dome-1"' in line:
            out.append(json.loads(line)["preset"])
    return out


def test_a_patrolled_camera_finds_a_problem_at_its_preset_and_the_moves_open_nothing(preset_videos, tmp_path):  # noqa: F811
    sim = OnvifSimulator({p: preset_videos[p] for p in PRESETS}, tmp_path / "sim", password=PASSWORD, move_s=0.4)
    sim.start()
    snap = sim.gateway.url("snap", CHANNEL)
    cams = [dome("dome-1", snap, sim.port), dome("dome-2", snap, free_port())]  # dome-2: nothing answers ONVIF
    cfg = write_config(tmp_path, cams)
    env = {**os.environ, "DOME_USER": "admin", "DOME_PASS": PASSWORD}
    log = (tmp_path / "log.txt").open("a")
    args = [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg), "--for", "120"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        base = api_url(proc)
        headers = api_token(cfg, "operator")
        wait_until("a lap and back at preset 1", lambda: dwelt(tmp_path)[:5] == [*PRESETS, "1"], 40)
        started = time.monotonic()
        ones = [time.monotonic()]

        # dome-2 is broken, named, and does not hold up dome-1
        cam2 = httpx.get(f"{base}/api/v1/cameras/dome-2", headers=headers).json()
        assert "dome-2" in cam2["last_error"] and "patrol" in cam2["last_error"], cam2
        assert cam2["patrol"]["state"] in ("fault", "starting")

        sim.frames["2"] = with_a_pile(sim.frames["2"])  # the pile appears at preset 2 only
        [(key, code, _)] = wait_until("an incident at preset 2", lambda: incidents(tmp_path), 45)
        assert key.startswith("dome-1|2|walk|") and code == "06036"
        while len(dwelt(tmp_path)) < 5 + 2 * len(PRESETS):  # two more laps over the empty presets
            assert time.monotonic() - started < 60, dwelt(tmp_path)
            time.sleep(0.5)
            if dwelt(tmp_path)[-1:] == ["1"] and time.monotonic() - ones[-1] > 3:
                ones.append(time.monotonic())
        got = incidents(tmp_path)
        assert [k for k, _, _ in got] == [key], got  # none from the moves, nor from the empty presets
        assert got[0][2] != "cleared"  # the pile stayed: time spent at presets 1, 3 and 4 does not clear it
        cam1 = httpx.get(f"{base}/api/v1/cameras/dome-1", headers=headers).json()
        assert cam1["state"] == "live" and cam1["last_error"] is None, cam1  # no tamper alarm from the moves
        print(f"\n{len(PRESETS)}-preset patrol in gridsight run, 2 s dwell: a lap in {ones[-1] - ones[-2]:.1f} s")

        # an operator takes the camera: the patrol holds, then resumes
        r = httpx.post(f"{base}/api/v1/cameras/dome-1/ptz/lock", json={"seconds": 6}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["locked_until"] is not None
        wait_until("locked", lambda: httpx.get(f"{base}/api/v1/cameras/dome-1", headers=headers).json()["patrol"]
                   ["state"] == "locked", 5, every_s=0.2)  # fmt: skip
        gotos, n = sim.calls.count("GotoPreset"), len(dwelt(tmp_path))
        time.sleep(3)
        assert sim.calls.count("GotoPreset") == gotos and len(dwelt(tmp_path)) == n  # held
        r = httpx.post(f"{base}/api/v1/cameras/dome-1/ptz/release", headers=headers)
        assert r.status_code == 200, r.text
        wait_until("patrolling again", lambda: len(dwelt(tmp_path)) > n, 10, every_s=0.2)
    finally:
        proc.terminate()
        proc.wait(20)
        sim.stop()
