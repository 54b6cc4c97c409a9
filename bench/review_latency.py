"""Review-queue latency under concurrent clients, against the real server.

Starts `gridsight run` (no cameras, a SQLite database with pending incidents),
then N client threads each fetch the next review items (`GET /api/v1/review/next`)
for a fixed time; the same load on `/healthz` (no database, no auth) is the
baseline measured in the same run.

    .venv/bin/python bench/review_latency.py [--clients 20] [--seconds 15] [--pending 200]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detector.config import load_config  # noqa: E402
from detector.filing.cases import CaseService  # noqa: E402
from detector.incidents.evidence import EvidenceStore  # noqa: E402
from detector.store.db import Incident, open_database  # noqa: E402
from tests.support.builders import queue_cases  # noqa: E402

CAMERA = {
    "id": "c1",
    "name": "幸福路东",
    "source": {"url": "/nowhere.mp4"},
    "location": {"address": "幸福路 12 号", "division_code": "110107", "street": "示范街道"},
    "problems": ["09006"],
    "enabled": False,
}


def setup(root: Path, pending: int) -> Path:
    cfg = root / "config"
    cfg.mkdir()
    settings = {"database_url": f"sqlite:///{root / 'db.sqlite'}", "evidence_root": str(root / "evidence"),
                "api_port": 0, "log_level": "WARNING"}  # fmt: skip
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings))
    (cfg / "cameras.yaml").write_text(yaml.safe_dump({"cameras": [CAMERA]}, allow_unicode=True))
    loaded = load_config(cfg)
    engine, sessions = open_database(loaded.settings.database_url)
    store = EvidenceStore(loaded.settings.evidence_root)
    cases = CaseService(loaded.taxonomy, loaded.settings, store, {c.id: c for c in loaded.cameras})
    queue_cases(sessions, store, cases, pending)
    with sessions.begin() as s:  # these wait for operators instead of being filed
        for inc in s.query(Incident):
            inc.review_state = "pending"
    engine.dispose()
    return cfg


def load(url: str, headers: dict[str, str], clients: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client() -> None:
        mine = []
        with httpx.Client(headers=headers, timeout=30) as http:
            while time.monotonic() < end:
                t = time.perf_counter()
                r = http.get(url)
                mine.append(time.perf_counter() - t)
                r.raise_for_status()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def row(name: str, lat: list[float], seconds: float) -> str:
    q = [v * 1000 for v in statistics.quantiles(lat, n=100)]
    return f"| {name} | {len(lat)} | {len(lat) / seconds:.0f} | {q[49]:.1f} | {q[94]:.1f} | {q[98]:.1f} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--pending", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = setup(Path(tmp), args.pending)
        cli = [sys.executable, "-m", "detector.cli"]
        token = subprocess.run(
            [*cli, "token", "create", "bench", "--role", "operator", "--config", str(cfg)],
            capture_output=True, text=True, check=True, cwd=REPO,
        ).stdout.strip()  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=os.environ.copy(),
        )  # fmt: skip
        try:
            base = ""
            for line in proc.stdout:
                if m := re.search(r"GridSight API: (http://\S+?:\d+)", line):
                    base = m.group(1)
                    break
            auth = {"Authorization": f"Bearer {token}"}
            print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {args.clients} clients, "
                  f"{args.seconds:.0f} s per row, {args.pending} pending incidents\n")  # fmt: skip
            print("| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|")
            base_lat = load(f"{base}/healthz", {}, args.clients, args.seconds)
            print(row("baseline: GET /healthz", base_lat, args.seconds))
            review = load(f"{base}/api/v1/review/next?limit=5", auth, args.clients, args.seconds)
            print(row("GET /api/v1/review/next?limit=5", review, args.seconds))
            p95 = statistics.quantiles(review, n=100)[94] * 1000
            print(f"\nreview queue p95: {p95:.1f} ms under {args.clients} concurrent clients "
                  f"(baseline /healthz p95 {statistics.quantiles(base_lat, n=100)[94] * 1000:.1f} ms)")  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
