"""核实 request → answer time on a fixed camera, against the real server.

Starts `gridsight run` with one camera on the generated street video (a file paced at real
time, looping), cadence N s, then sends verification requests at random moments of the
camera's cycle and times each until GET shows it answered (client side) and from the
request's created_at to its answered_at (server side). The baseline beside it is one
cadence: the longest a request may wait for the camera's next analysed frame.

Each answer is also checked against what the scene holds ("right answers"): the street video's stall
stands from its second 20 to 100 (of 120), so the truth at the answering frame's camera time is known.

`--ptz`: a patrolling dome on the ONVIF simulator (tests/support/onvif_sim.py) instead: 8 presets,
dwell 10-15 s, a 1.5 s move, the default settle (2 s, 2 still frames); the problem (piled sundries)
is watched at two presets, each with a view (footprint) of its own: preset 5, where a pile is left
after the patrol's first visit, and preset 2, which stays empty. Requests by point alternate between
the two views, so each sends the patrol to that preset next, and its answer should be present at 5,
absent at 2. The baseline beside it is one patrol lap (measured): what a request would wait at worst
without the detour.

    .venv/bin/python bench/verification_latency.py [--cadence 2 5 10] [--requests 8]
    .venv/bin/python bench/verification_latency.py --ptz [--requests 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detector.synthetic.demo import DEMO_NO_VENDING_ZONE, StreetSpec, ensure_demo_video  # noqa: E402

GRID = "110107001002003"
STREET = StreetSpec(width=640, height=360, fps=10, duration_s=120, stall_arrive_s=20, stall_leave_s=100, cloud_s=None)
T0 = datetime.fromisoformat("2026-03-02T10:00:00+08:00")  # camera time of the video's second 0


def stall_there(frame_at: str | None) -> bool | None:
    """Whether the street video shows its stall at this camera time (None: no frame answered)."""
    if frame_at is None:
        return None
    second = (datetime.fromisoformat(frame_at) - T0).total_seconds() % STREET.duration_s
    assert STREET.stall_arrive_s is not None and STREET.stall_leave_s is not None
    return STREET.stall_arrive_s <= second < STREET.stall_leave_s


def right(result: str, truth: bool | None) -> bool:
    return truth is not None and result == ("present" if truth else "absent")


def setup(root: Path, video: Path, cadence: float) -> Path:
    cfg = root / f"config-{cadence:g}"
    cfg.mkdir()
    settings = {"database_url": f"sqlite:///{cfg / 'db.sqlite'}", "evidence_root": str(cfg / "evidence"),
                "api_port": 0, "log_level": "WARNING"}  # fmt: skip
    camera = {
        "id": "bench-1", "name": "测速街",
        "source": {"url": str(video), "loop": True, "speed": 1, "start_time": T0.isoformat()},
        "location": {"division_code": "110107", "grid_code": GRID}, "cadence_s": cadence,
        "zones": [{"name": "walk", "purpose": "no_vending", "polygon": [list(p) for p in DEMO_NO_VENDING_ZONE]}],
        "problems": ["09006"],
    }  # fmt: skip
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings))
    (cfg / "cameras.yaml").write_text(yaml.safe_dump({"cameras": [camera]}, allow_unicode=True))
    return cfg


def measure(
    cfg: Path, cadence: float, requests: int, rng: random.Random
) -> tuple[list[float], list[float], int, list[tuple[str, bool | None]]]:
    """(client seconds, server seconds, answers other than present/absent, (answer, truth) each) of `requests`
    requests, spread over the video's loop (its stall stands 80 of its 120 s)."""
    cli = [sys.executable, "-m", "detector.cli"]
    token = subprocess.run(
        [*cli, "token", "create", "bench", "--role", "operator", "--config", str(cfg)],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout.strip()  # fmt: skip
    proc = subprocess.Popen(
        [*cli, "run", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
    )
    client, server, odd, truths = [], [], 0, []
    try:
        base = next(m.group(1) for line in proc.stdout if (m := re.search(r"GridSight API: (http://\S+?:\d+)", line)))
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            while http.get("/api/v1/cameras/bench-1").json()["last_frame_at"] is None:
                time.sleep(0.1)
            started = time.monotonic()
            for i in range(requests):
                # a random moment of the camera's cycle, the requests spread over the video's loop
                time.sleep(max(0.0, started + i * STREET.duration_s / requests - time.monotonic()))
                time.sleep(rng.uniform(0, cadence))
                t = time.perf_counter()
                r = http.post("/api/v1/verifications", json={"problem_code": "09006", "location": {"grid_code": GRID}})
                r.raise_for_status()
                vid = r.json()["id"]
                while (got := http.get(f"/api/v1/verifications/{vid}").json())["status"] != "answered":
                    time.sleep(0.01)
                client.append(time.perf_counter() - t)
                asked, done = datetime.fromisoformat(got["created_at"]), datetime.fromisoformat(got["answered_at"])
                server.append((done - asked).total_seconds())
                odd += got["result"] not in ("present", "absent")
                truths.append((got["result"], stall_there(got["cameras"][0]["frame_at"])))
    finally:
        proc.terminate()
        proc.wait(30)
    return client, server, odd, truths


PRESETS = [str(i) for i in range(1, 9)]
PILED, EMPTY = "5", "2"  # the presets that watch 06036: a pile is left at 5 after its first visit, 2 stays empty
MOVE_S = 1.5
POLE = (116.2005, 39.9005)  # the dome's location
VIEWS = {  # each watching preset's footprint, and a point in it that a request names
    PILED: ([[116.2000, 39.9010], [116.2010, 39.9010], [116.2010, 39.9020], [116.2000, 39.9020]], (116.2005, 39.9015)),
    EMPTY: ([[116.2010, 39.9000], [116.2020, 39.9000], [116.2020, 39.9010], [116.2010, 39.9010]], (116.2015, 39.9005)),
}


def piled(frames: list) -> list:
    """A preset's view with sundries piled in the middle of the pavement (as tests/test_patrol_run.with_a_pile)."""
    import cv2

    out = []
    for f in frames:
        f = f.copy()
        cv2.rectangle(f, (130, 70), (200, 120), (60, 90, 150), -1)
        out.append(f)
    return out


def setup_ptz(root: Path, snapshot_url: str, onvif_port: int) -> Path:
    cfg = root / "config-ptz"
    cfg.mkdir()
    settings = {"database_url": f"sqlite:///{cfg / 'db.sqlite'}", "evidence_root": str(cfg / "evidence"),
                "api_port": 0, "log_level": "INFO", "log_format": "json"}  # fmt: skip
    whole = [[0.02, 0.02], [0.98, 0.02], [0.98, 0.98], [0.02, 0.98]]
    camera = {
        "id": "bench-ptz", "name": "测速球机", "source": {"url": snapshot_url, "snapshot": True},
        "location": {"division_code": "110107", "grid_code": GRID, "lon": POLE[0], "lat": POLE[1]}, "cadence_s": 1,
        "zones": [{"name": "walk", "purpose": "sidewalk", "polygon": whole}], "problems": ["06036", "09001"],
        "ptz": {"host": "127.0.0.1", "port": onvif_port, "username_env": "BENCH_PTZ_USER",
                "password_env": "BENCH_PTZ_PASS", "timeout_s": 3, "poll_s": 0.5},
        "patrol": [{"preset": p, "dwell_s": 10 + i % 6, "problems": ["06036" if p in VIEWS else "09001"],
                    **({"view": {"polygon": VIEWS[p][0]}} if p in VIEWS else {})}
                   for i, p in enumerate(PRESETS)],
    }  # fmt: skip
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings))
    (cfg / "cameras.yaml").write_text(yaml.safe_dump({"cameras": [camera]}, allow_unicode=True))
    return cfg


class Arrivals:
    """Follows the JSON log: when the patrol settled at which preset (monotonic s)."""

    def __init__(self, log: Path) -> None:
        self.log, self.seen, self._stop = log, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.log.open() as f:
            while not self._stop.is_set():
                line = f.readline()
                if not line:
                    time.sleep(0.05)
                elif '"patrol dwelling"' in line:
                    self.seen.append((time.monotonic(), json.loads(line)["preset"]))

    def lap(self, after: float) -> float | None:
        """From the first arrival after `after` to the next arrival at that preset."""
        later = [(t, p) for t, p in self.seen if t > after]
        again = [t for t, p in later[1:] if later and p == later[0][1]]
        return again[0] - later[0][0] if again else None

    def stop(self) -> None:
        self._stop.set()


def measure_ptz(root: Path, requests: int, rng: random.Random) -> None:
    from tests.support import ptz_views
    from tests.support.onvif_sim import CHANNEL, OnvifSimulator

    videos = {p: ptz_views.view_video(root / f"preset-{p}.mp4", int(p)) for p in PRESETS}
    with OnvifSimulator(videos, root / "sim", move_s=MOVE_S) as sim:
        cfg = setup_ptz(root, sim.gateway.url("snap", CHANNEL), sim.port)
        cli = [sys.executable, "-m", "detector.cli"]
        token = subprocess.run(
            [*cli, "token", "create", "bench", "--role", "operator", "--config", str(cfg)],
            capture_output=True, text=True, check=True, cwd=REPO,
        ).stdout.strip()  # fmt: skip
        env = {**os.environ, "BENCH_PTZ_USER": sim.username, "BENCH_PTZ_PASS": sim.password}
        log = root / "ptz-log.txt"
        log.touch()
        with log.open("a") as err:
            proc = subprocess.Popen([*cli, "run", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=err,
                                    text=True, cwd=REPO, env=env)  # fmt: skip
        arrivals = Arrivals(log)
        client, server, detours, odd = [], [], 0, 0
        answers: dict[str, list[str]] = {PILED: [], EMPTY: []}
        try:
            base = next(
                m.group(1) for line in proc.stdout if (m := re.search(r"GridSight API: (http://\S+?:\d+)", line))
            )
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                # preset 5 learns its empty view on its first visit; the pile is left there once the patrol moved on
                while [p for _, p in arrivals.seen[-1:]] not in ([PRESETS[PRESETS.index(PILED) + 1]],):
                    time.sleep(0.1)
                sim.frames[PILED] = piled(sim.frames[PILED])
                for i in range(requests):
                    target = (PILED, EMPTY)[i % 2]
                    time.sleep(rng.uniform(0, 15))  # a random moment of a stop's dwell
                    if arrivals.seen[-1][1] == target:
                        time.sleep(16)  # at the preset already: no detour to time
                    t = time.perf_counter()
                    n = len(arrivals.seen)
                    lon, lat = VIEWS[target][1]
                    r = http.post(
                        "/api/v1/verifications", json={"problem_code": "06036", "location": {"lon": lon, "lat": lat}}
                    )
                    r.raise_for_status()
                    vid = r.json()["id"]
                    while (got := http.get(f"/api/v1/verifications/{vid}").json())["status"] != "answered":
                        time.sleep(0.05)
                    client.append(time.perf_counter() - t)
                    asked, done = datetime.fromisoformat(got["created_at"]), datetime.fromisoformat(got["answered_at"])
                    server.append((done - asked).total_seconds())
                    detours += [p for _, p in arrivals.seen[n:]][:1] == [target]
                    odd += got["result"] not in ("present", "absent")
                    assert got["cameras"][0]["preset"] == target, got
                    answers[target].append(got["result"])
                    route = [p for _, p in arrivals.seen[n - 1 :]]  # where it was, then where it went until answered
                    print(f"request {i + 1}: preset {target}, {got['result']} in {client[-1]:.1f} s, "
                          f"route {' → '.join(route)}, findings {got['cameras'][0]['findings']}", flush=True)
                quiet = time.monotonic()
                while arrivals.lap(quiet) is None:  # a lap without requests (a detour lengthens the lap it is in)
                    time.sleep(1)
        finally:
            proc.terminate()
            proc.wait(30)
            arrivals.stop()
    lap = arrivals.lap(quiet)
    rights = sum(a == "present" for a in answers[PILED]) + sum(a == "absent" for a in answers[EMPTY])
    print(f"\n| PTZ patrol | requests | client p50 s | client max s | server p50 s | server max s "
          f"| baseline: one lap s | next stop was the preset | cannot_see | right answers "
          f"| at {PILED} (pile): present | at {EMPTY} (empty): absent |\n"
          f"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
          f"| {len(PRESETS)} presets, dwell 10-15 s, move {MOVE_S:g} s | {len(client)} "
          f"| {statistics.median(client):.2f} | {max(client):.2f} | {statistics.median(server):.2f} "
          f"| {max(server):.2f} | {lap:.1f} "
          f"| {detours}/{len(client)} | {odd} | {rights}/{len(client)} "
          f"| {answers[PILED].count('present')}/{len(answers[PILED])} "
          f"| {answers[EMPTY].count('absent')}/{len(answers[EMPTY])} |", flush=True)  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cadence", type=float, nargs="+", default=[2.0, 5.0, 10.0], help="seconds between analyses")
    ap.add_argument("--requests", type=int, default=8, help="requests per cadence")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ptz", action="store_true", help="a patrolling PTZ camera on the ONVIF simulator instead")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    if args.ptz:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
                  f"{args.requests} requests at random moments of a dwell")  # fmt: skip
            measure_ptz(Path(tmp), args.requests, rng)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        video = ensure_demo_video(Path(tmp), STREET)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; file source at real time, "
              f"{args.requests} requests per row at random moments of the cycle\n")  # fmt: skip
        print("| cadence s | requests | client p50 s | client max s | server p50 s | server max s "
              "| baseline: one cadence s | cannot_see | right answers | stall there: present | no stall: absent |\n"
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
        for cadence in args.cadence:
            client, server, odd, truths = measure(setup(Path(tmp), video, cadence), cadence, args.requests, rng)
            cells = [len(client), statistics.median(client), max(client), statistics.median(server), max(server)]
            there = [a for a, t in truths if t]
            gone = [a for a, t in truths if t is False]
            print(f"| {cadence:g} | " + " | ".join(f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells)
                  + f" | {cadence:g} | {odd} | {sum(right(a, t) for a, t in truths)}/{len(truths)} "
                  f"| {there.count('present')}/{len(there)} | {gone.count('absent')}/{len(gone)} |",
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
