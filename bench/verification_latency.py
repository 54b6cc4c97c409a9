"""核实 request → answer time on a fixed camera, against the real server.

Starts `gridsight run` with one camera on the generated street video (a file paced at real
time, looping), cadence N s, then sends verification requests at random moments of the
camera's cycle and times each until GET shows it answered (client side) and from the
request's created_at to its answered_at (server side). The baseline beside it is one
cadence: the longest a request may wait for the camera's next analysed frame.

    .venv/bin/python bench/verification_latency.py [--cadence 2 5 10] [--requests 8]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
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


def setup(root: Path, video: Path, cadence: float) -> Path:
    cfg = root / f"config-{cadence:g}"
    cfg.mkdir()
    settings = {"database_url": f"sqlite:///{cfg / 'db.sqlite'}", "evidence_root": str(cfg / "evidence"),
                "api_port": 0, "log_level": "WARNING"}  # fmt: skip
    camera = {
        "id": "bench-1", "name": "测速街", "source": {"url": str(video), "loop": True, "speed": 1},
        "location": {"division_code": "110107", "grid_code": GRID}, "cadence_s": cadence,
        "zones": [{"name": "walk", "purpose": "no_vending", "polygon": [list(p) for p in DEMO_NO_VENDING_ZONE]}],
        "problems": ["09006"],
    }  # fmt: skip
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings))
    (cfg / "cameras.yaml").write_text(yaml.safe_dump({"cameras": [camera]}, allow_unicode=True))
    return cfg


def measure(cfg: Path, cadence: float, requests: int, rng: random.Random) -> tuple[list[float], list[float], int]:
    """(client seconds, server seconds, answers other than present/absent) of `requests` requests."""
    cli = [sys.executable, "-m", "detector.cli"]
    token = subprocess.run(
        [*cli, "token", "create", "bench", "--role", "operator", "--config", str(cfg)],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout.strip()  # fmt: skip
    proc = subprocess.Popen(
        [*cli, "run", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
    )
    client, server, odd = [], [], 0
    try:
        base = next(m.group(1) for line in proc.stdout if (m := re.search(r"GridSight API: (http://\S+?:\d+)", line)))
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            while http.get("/api/v1/cameras/bench-1").json()["last_frame_at"] is None:
                time.sleep(0.1)
            for _ in range(requests):
                time.sleep(rng.uniform(0, cadence))  # a random moment of the camera's cycle
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
    finally:
        proc.terminate()
        proc.wait(30)
    return client, server, odd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cadence", type=float, nargs="+", default=[2.0, 5.0, 10.0], help="seconds between analyses")
    ap.add_argument("--requests", type=int, default=8, help="requests per cadence")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        video = ensure_demo_video(Path(tmp), STREET)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; file source at real time, "
              f"{args.requests} requests per row at random moments of the cycle\n")  # fmt: skip
        print("| cadence s | requests | client p50 s | client max s | server p50 s | server max s "
              "| baseline: one cadence s | cannot_see |\n|---:|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
        for cadence in args.cadence:
            client, server, odd = measure(setup(Path(tmp), video, cadence), cadence, args.requests, rng)
            cells = [len(client), statistics.median(client), max(client), statistics.median(server), max(server)]
            print(f"| {cadence:g} | " + " | ".join(f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells)
                  + f" | {cadence:g} | {odd} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
