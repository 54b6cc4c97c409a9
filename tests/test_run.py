"""`gridsight run` end to end, as a user runs it: real process, real HTTP, real files, kill -9."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest
import yaml

from detector.incidents.evidence import GRACE_S
from tests.conftest import street_camera, write_config

pytestmark = pytest.mark.slow

SECRET = "s3cret-pa55"


def start(cfg: Path, seconds: float | None, root: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg)]
    if seconds is not None:
        args += ["--for", str(seconds)]
    env = {**os.environ, "CAM_USER": "admin", "CAM_PASS": SECRET}
    log = (root / "log.txt").open("a")
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env)


def api_url(proc: subprocess.Popen) -> str:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if m := re.search(r"GridSight API: (http://127\.0\.0\.1:\d+)", line):
            return m.group(1)
    raise AssertionError(f"no API line in {seen!r}")


def api_token(cfg: Path, role: str = "admin") -> dict[str, str]:
    """Authorization header of a fresh API token (made with the real CLI)."""
    name = f"test-{role}-{time.monotonic_ns()}"
    out = subprocess.run(
        [sys.executable, "-m", "detector.cli", "token", "create", name, "--role", role, "--config", str(cfg)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {"Authorization": f"Bearer {out.stdout.strip()}"}


def db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / "gridsight.db")


def test_run_opens_an_incident_with_evidence_served_over_http(short_street: Path, tmp_path: Path) -> None:
    cams = [
        street_camera(short_street),
        # a camera that never answers, with credentials: reported, never blocks, never leaks
        {"id": "dead-1", "name": "dead", "problems": ["09006"],
         "source": {"url": "rtsp://127.0.0.1:9/none", "username_env": "CAM_USER", "password_env": "CAM_PASS"}},
        {"id": "broken-1", "name": "broken", "problems": ["09006"], "cadence_s": "often", "source": {"url": "x"}},
    ]  # fmt: skip
    cfg = write_config(tmp_path, cams)
    headers = api_token(cfg, "viewer")
    proc = start(cfg, 40, tmp_path)
    base = api_url(proc)
    assert httpx.get(base + "/api/v1/incidents").status_code == 401  # nothing without credentials
    with httpx.Client(base_url=base, timeout=10, headers=headers) as http:
        deadline = time.monotonic() + 35
        items = []
        while time.monotonic() < deadline and not items:
            items = http.get("/api/v1/incidents").json()["items"]
            time.sleep(0.5)
        assert items, "no incident within 35 s"
        inc = http.get(f"/api/v1/incidents/{items[0]['id']}").json()
        assert inc["camera_id"] == "street-1" and inc["problem_code"] == "09006" and inc["zone"] == "walk"
        assert inc["problem_name"] == "占道经营"
        kinds = {e["kind"]: e for e in inc["evidence"]}
        assert set(kinds) == {"first_seen", "clean", "annotated", "clip"}  # first_seen: the window's start
        for kind, e in kinds.items():
            body = http.get(e["url"]).content
            assert hashlib.sha256(body).hexdigest() == e["sha256"]
            if kind == "clip":
                part = http.get(e["url"], headers={"Range": "bytes=0-99"})  # browsers seek with ranges
                assert part.status_code == 206 and part.content == body[:100]
                clip = tmp_path / "clip.mp4"
                clip.write_bytes(body)
                with av.open(str(clip)) as c:
                    assert sum(1 for _ in c.decode(video=0)) >= 50  # 3 s pre + 3 s post at 10 fps
            else:
                assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (360, 640, 3)
        cams = {c["id"]: c for c in http.get("/api/v1/cameras").json()}
        assert set(cams) == {"street-1", "dead-1"}  # the broken entry was skipped
        assert cams["dead-1"]["state"] in ("failed", "connecting") and SECRET not in str(cams)
        assert http.get("/api/v1/evidence/../gridsight.db").status_code in (400, 404)
    assert proc.wait(60) == 0
    log = (tmp_path / "log.txt").read_text()
    assert SECRET not in log
    assert "broken-1" in log and "cadence_s" in log  # the broken camera was reported
    assert '"message": "gridsight stopped"' in log


def test_sigterm_stops_cleanly(short_street: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, [street_camera(short_street, source={"url": str(short_street), "speed": 1.0})])
    proc = start(cfg, None, tmp_path)
    api_url(proc)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert '"message": "gridsight stopped"' in (tmp_path / "log.txt").read_text()


def test_kill_9_then_restart_never_opens_twice_and_keeps_files_and_rows_consistent(
    short_street: Path, tmp_path: Path
) -> None:
    # A looping file: the stall comes and goes every 2 minutes of video, so
    # incidents open, clear and recur all the time while we kill the process.
    cams = [
        street_camera(short_street, cam_id=f"loop-{i}", source={"url": str(short_street), "loop": True})
        for i in range(2)
    ]
    cfg = write_config(tmp_path, cams)
    for delay in (6.0, 9.0):
        proc = start(cfg, None, tmp_path)
        api_url(proc)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with db(tmp_path) as con:
        assert con.execute("select count(*) from incidents").fetchone()[0] >= 1, "nothing happened before the kills"
    # The kills left files whose rows never committed; the start sweeps those older than the grace that spares
    # another live writer's (evidence.GRACE_S): as if the last kill was that long ago.
    then = time.time() - GRACE_S - 1
    for p in (tmp_path / "evidence").rglob("*"):
        os.utime(p, (then, then))
    proc = start(cfg, 10, tmp_path)
    assert proc.wait(60) == 0
    with db(tmp_path) as con:
        opened = con.execute(
            "select i.case_key, count(*) from incident_events e join incidents i on i.id = e.incident_id "
            "where e.kind = 'opened' group by i.case_key"
        ).fetchall()
        rows = con.execute("select path, sha256 from evidence").fetchall()
        # a persistence window still open keeps the picture of its first sighting, in its candidate row
        first_seen = {p for (p,) in con.execute("select first_frame from candidates where first_frame is not null")}
        per_camera = con.execute("select camera_id, count(*) from incidents group by camera_id").fetchall()
    assert opened and all(n == 1 for _, n in opened), opened
    assert {cam for cam, _ in per_camera} == {"loop-0", "loop-1"} and all(n == 1 for _, n in per_camera)
    root = tmp_path / "evidence"
    for path, sha in rows:
        assert hashlib.sha256((root / path).read_bytes()).hexdigest() == sha
    on_disk = {str(p.relative_to(root)) for p in root.glob("*/*") if p.is_file()}
    named = {p for p, _ in rows} | first_seen
    assert named <= on_disk  # no row without its file
    # no file without its row, but those of the last run that are still young (spared: evidence.GRACE_S)
    assert all(time.time() - (root / p).stat().st_mtime < 60 for p in on_disk - named), on_disk - named


def test_settings_file_is_respected(tmp_path: Path, short_street: Path) -> None:
    cfg = write_config(tmp_path, [street_camera(short_street)], log_format="text", retention_days=1)
    data = yaml.safe_load((cfg / "settings.yaml").read_text())
    assert data["log_format"] == "text"
    proc = start(cfg, 3, tmp_path)
    api_url(proc)
    assert proc.wait(60) == 0
    assert "INFO    detector.runtime.app: gridsight started" in (tmp_path / "log.txt").read_text()


def test_the_default_demo_camera_ends_with_an_incident(tmp_path: Path) -> None:
    """The quickstart: the bundled demo config (paths moved to tmp) opens a real incident."""
    from tests.conftest import REPO

    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "demo.yaml").write_text((REPO / "camera_config" / "demo.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    settings = yaml.safe_load((REPO / "camera_config" / "settings.yaml").read_text())
    settings.update(
        database_url=f"sqlite:///{tmp_path / 'gridsight.db'}",
        evidence_root=str(tmp_path / "evidence"),
        cache_dir=str(REPO / "var" / "cache"),  # share the generated demo video with the quickstart
        api_port=0,
    )
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings))
    proc = start(cfg, 20, tmp_path)
    api_url(proc)
    assert proc.wait(300) == 0
    out = subprocess.run(
        [sys.executable, "-m", "detector.cli", "incidents", "--config", str(cfg)], capture_output=True, text=True
    ).stdout
    assert "09006 占道经营 camera=demo-street-01 zone=sidewalk-east" in out
    files = re.findall(r"(clean|annotated|clip)\s+(\S+)", out)
    assert {k for k, _ in files} == {"clean", "annotated", "clip"}
    for kind, path in files:
        if kind == "clip":
            with av.open(path) as c:
                assert sum(1 for _ in c.decode(video=0)) >= 90  # 5 s before + 5 s after, 10 fps
        else:
            assert cv2.imread(path).shape == (720, 1280, 3)


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_a_missing_or_empty_config_is_an_error_not_a_silent_demo(tmp_path: Path, folder: str) -> None:
    cfg = tmp_path / "config"
    if folder == "empty":
        cfg.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg), "--for", "1"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 2
    assert str(cfg) in run.stderr and ("no such configuration folder" in run.stderr or "no camera" in run.stderr)
    assert "--demo" in run.stderr  # says how to get the demo
    assert not (tmp_path / "var").exists()  # nothing created, no database
    if folder == "empty":
        check = subprocess.run(
            [sys.executable, "-m", "detector.cli", "config", "check", str(cfg)], capture_output=True, text=True
        )
        assert check.returncode == 1 and "no camera configured" in check.stderr
