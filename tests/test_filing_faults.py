"""The fault test: 1,000 cases to a flaky platform that also goes down, through two kill -9s of the filer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from detector.config import load_config
from detector.filing.cases import CaseService
from detector.incidents.evidence import EvidenceStore
from detector.store.db import Case, EvidenceFile, open_database
from tests.conftest import write_config
from tests.support.builders import queue_cases
from tests.support.platform import PlatformServer

pytestmark = pytest.mark.slow

N = 1000
CAMERA = {
    "id": "c1",
    "name": "幸福路东",
    "source": {"url": "/nowhere.mp4"},
    "location": {"address": "幸福路 12 号", "division_code": "110107", "grid_code": "110107001002003"},
    "problems": ["09006"],
    "enabled": False,
}


def filer(cfg: Path, log: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "detector.cli", "filer", "--config", str(cfg), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log.open("a"), text=True, env=os.environ.copy())


def wait_for(count: int, plat: PlatformServer, timeout: float) -> None:
    end = time.monotonic() + timeout
    while len(plat.admin.cases()) < count and time.monotonic() < end:
        time.sleep(0.3)


def test_a_thousand_cases_arrive_exactly_once_with_intact_evidence(tmp_path: Path) -> None:
    with PlatformServer(tmp_path / "platform") as plat:
        platform = {"type": "http_json", "base_url": plat.base_url, "timeout_s": 3}
        filing = {"retry_min_s": 0.2, "retry_max_s": 3, "lease_s": 5}
        cfg = write_config(tmp_path, [CAMERA], platform=platform, filing=filing)
        loaded = load_config(cfg)
        engine, sessions = open_database(loaded.settings.database_url)
        store = EvidenceStore(loaded.settings.evidence_root)
        cases = CaseService(loaded.taxonomy, loaded.settings, store, {c.id: c for c in loaded.cameras})
        queue_cases(sessions, store, cases, N)
        plat.admin.faults(fail_rate=0.3, seed=11)
        log = tmp_path / "filer.log"

        proc = filer(cfg, log)
        wait_for(150, plat, 120)
        proc.send_signal(signal.SIGKILL)  # kill -9 while filing
        proc.wait(10)

        proc = filer(cfg, log)
        wait_for(400, plat, 120)
        plat.stop()  # the platform is down for a minute
        time.sleep(60)
        plat.start()
        wait_for(600, plat, 120)
        proc.send_signal(signal.SIGKILL)  # and once more
        proc.wait(10)

        proc = filer(cfg, log, "--until-empty")
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out

        stored = plat.admin.cases()
        stats = plat.admin.stats()
        keys = [c["idempotency_key"] for c in stored]
        with sessions() as s:
            ours = {c.idempotency_key: c for c in s.scalars(select(Case))}
            sha_by_incident: dict[int, set[str]] = {}
            for e in s.scalars(select(EvidenceFile)):
                sha_by_incident.setdefault(e.incident_id, set()).add(e.sha256)
        lost = set(ours) - set(keys)
        dupes = len(keys) - len(set(keys))
        print(f"\nfiled {len(set(keys))}, duplicates {dupes}, lost {len(lost)}; platform stats {stats}")
        assert len(stored) == N and len(set(keys)) == N and not lost
        for pc in stored:
            case = ours[pc["idempotency_key"]]
            assert case.platform_case_id == pc["case_id"]
            assert all(f["sha256_ok"] for f in pc["files"])
            assert {f["sha256"] for f in pc["files"]} == sha_by_incident[case.incident_id]
        engine.dispose()
