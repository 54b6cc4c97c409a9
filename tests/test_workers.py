"""`gridsight run --workers 2`: camera worker processes, spread by leases, a killed one restarted.

The supervisor runs the API and the filer; two worker processes share four looping street
cameras through the camera leases (on the embedded SQLite). `kill -9` of a worker: its
cameras move to the other within the lease time, the supervisor starts a new worker, and
the cameras are shared again.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import street_camera, write_config
from tests.support.waiting import wait_until
from tests.test_run import api_token, api_url

pytestmark = pytest.mark.slow

LEASE_S = 6
CAMERAS = [f"w-{i}" for i in range(4)]


def holders(db: Path) -> dict[str, str]:
    """Camera → holder of a live lease."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT camera_id, holder, expires_at FROM camera_leases WHERE holder IS NOT NULL"
        ).fetchall()
    now = time.time()
    return {cam: holder for cam, holder, exp in rows if _epoch(exp) > now}


def balanced(db: Path) -> bool:
    return sorted(Counter(holders(db).values()).values()) == [2, 2]


def _epoch(ts: str) -> float:
    from datetime import UTC, datetime

    t = datetime.fromisoformat(ts)
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def worker_pids(log: Path) -> list[int]:
    """Pids of "worker started" lines in the supervisor's JSON log, oldest first."""
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"worker started"' in line:
            out.append(json.loads(line)["pid"])
    return out


def test_workers_share_cameras_and_a_killed_worker_is_replaced(short_street: Path, tmp_path: Path) -> None:
    cams = [
        street_camera(short_street, cam_id=c, source={"url": str(short_street), "loop": True, "speed": 4})
        for c in CAMERAS
    ]
    cfg = write_config(tmp_path, cams, instance={"lease_s": LEASE_S})
    db = tmp_path / "gridsight.db"
    headers = api_token(cfg, "viewer")
    log = tmp_path / "log.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg), "--for", "150", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=log.open("a"), text=True,
    )  # fmt: skip
    try:
        base = api_url(proc)
        shared = wait_until("two workers sharing the four cameras", lambda: balanced(db) and holders(db), 60)
        pids = worker_pids(log)
        assert len(pids) == 2
        # the supervisor's API shows every camera, whichever worker serves it
        listed = httpx.get(f"{base}/api/v1/cameras", headers=headers, timeout=10).json()
        assert sorted(c["id"] for c in listed) == CAMERAS

        victim = pids[0]
        lost = [cam for cam, holder in shared.items() if holder.endswith(f"-{victim}")]
        assert len(lost) == 2
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        wait_until("its cameras served again", lambda: set(holders(db)) == set(CAMERAS)
             and all(not h.endswith(f"-{victim}") for h in holders(db).values()), LEASE_S + 10)  # fmt: skip
        takeover_s = time.monotonic() - t0
        wait_until("a new worker", lambda: len(worker_pids(log)) == 3, 30)
        wait_until("the cameras shared again", lambda: balanced(db), 60)
        assert takeover_s <= LEASE_S + 10
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0
    with sqlite3.connect(db) as con:  # one active incident per case key, whoever served the camera
        keys = con.execute("SELECT case_key, count(*) FROM incidents WHERE active_key IS NOT NULL GROUP BY case_key")
        assert all(n == 1 for _key, n in keys)
    assert holders(db) == {}  # workers released their leases on the way out


def test_a_worker_stopped_while_it_starts_its_cameras_releases_their_leases(short_street: Path, tmp_path: Path) -> None:
    """A supervisor stopping (SIGTERM) a worker it has just restarted: the worker holds leases from its first
    claim on, while its cameras are still being built; it must stop cleanly and release them, not die holding
    them (the other instances would wait out the lease)."""
    cams = [street_camera(short_street, cam_id=c, source={"url": str(short_street), "loop": True}) for c in CAMERAS]
    cfg = write_config(tmp_path, cams, instance={"lease_s": 60})
    db = tmp_path / "gridsight.db"
    log = tmp_path / "log.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg), "--worker", "0", "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=log.open("a"),
    )  # fmt: skip
    try:
        wait_until("the worker's first claim", lambda: db.exists() and _claimed(db), 60, every_s=0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert holders(db) == {}
    assert "stopping on signal" in log.read_text()


def _claimed(db: Path) -> bool:
    try:
        return bool(holders(db))
    except sqlite3.OperationalError:  # the table is not there yet
        return False
