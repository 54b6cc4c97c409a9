"""The filer against a real platform server on 127.0.0.1 (tests/support/platform_server.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from api.app import create_app
from api.deps import ApiContext
from detector.config import Camera, HttpJsonPlatform, Settings
from detector.filing.cases import CaseService
from detector.filing.filer import Filer, retry_dead
from detector.filing.platform import HttpJsonAdapter
from detector.incidents.evidence import EvidenceStore
from detector.rules.taxonomy import load_taxonomy
from detector.store.db import Case, CaseHistory, EvidenceFile, Outbox, open_database
from tests.support.builders import T0, queue_cases
from tests.support.platform import PlatformServer, sign_callback

TAX = load_taxonomy(None)
SECRET = "cb-secret"
CAMERA = Camera.model_validate(
    {
        "id": "c1",
        "name": "幸福路东",
        "source": {"url": "/x.mp4"},
        "location": {"address": "幸福路 12 号", "division_code": "110107", "grid_code": "110107001002003"},
        "problems": ["09006"],
    }
)


class World:
    def __init__(self, root: Path, base_url: str, **platform: object) -> None:
        self.engine, self.sessions = open_database(f"sqlite:///{root / 'db.sqlite'}")
        self.store = EvidenceStore(root / "evidence")
        cfg = HttpJsonPlatform(type="http_json", base_url=base_url, timeout_s=1.5, **platform)
        self.settings = Settings(platform=cfg, filing={"retry_min_s": 0.05, "retry_max_s": 0.2, "lease_s": 2})
        self.cases = CaseService(TAX, self.settings, self.store, {"c1": CAMERA})
        self.filer = Filer(self.sessions, HttpJsonAdapter(cfg), self.store, self.cases, self.settings.filing)

    def drain(self, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while self.filer.pending() and time.monotonic() < end:
            if not self.filer.drain_once():
                time.sleep(0.05)

    def rows(self, model):
        with self.sessions() as s:
            return list(s.scalars(select(model).order_by(model.id)))


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[PlatformServer]:
    with PlatformServer(tmp_path / "platform") as server:
        yield server


def test_cases_are_filed_once_with_their_evidence(tmp_path: Path, platform: PlatformServer) -> None:
    w = World(tmp_path, platform.base_url)
    queue_cases(w.sessions, w.store, w.cases, 5)
    w.drain()
    stored = platform.admin.cases()
    assert len(stored) == 5
    ours = {c.idempotency_key: c for c in w.rows(Case)}
    for pc in stored:
        case = ours[pc["idempotency_key"]]
        assert case.platform_case_id == pc["case_id"] and case.status == "accepted"
        assert pc["payload"]["sxdm"] == "11010709006"
        # the first sighting travels with the case: the platform's reviewer sees before and after
        assert sorted(e["kind"] for e in pc["payload"]["evidence"]) == ["annotated", "clean", "first_seen"]
        files = {(f["sha256"], f["sha256_ok"]) for f in pc["files"]}
        with w.sessions() as s:
            evidence = s.scalars(select(EvidenceFile.sha256).where(EvidenceFile.incident_id == case.incident_id))
            assert files == {(sha, True) for sha in evidence}
    assert {m.state for m in w.rows(Outbox)} == {"done"}
    assert [h.to_status for h in w.rows(CaseHistory)].count("accepted") == 5


def test_failures_timeouts_and_dropped_answers_still_end_in_exactly_one_case_each(
    tmp_path: Path, platform: PlatformServer
) -> None:
    w = World(tmp_path, platform.base_url)
    queue_cases(w.sessions, w.store, w.cases, 12)
    platform.admin.faults(fail_rate=0.3, drop_after_accept_rate=0.3, non_json_rate=0.1, seed=7)
    w.drain(60)
    stored = platform.admin.cases()
    assert len(stored) == 12 and len({c["idempotency_key"] for c in stored}) == 12
    assert sum(m.attempts for m in w.rows(Outbox)) > 12  # some attempts failed and were retried
    assert {c.platform_case_id for c in w.rows(Case)} == {c["case_id"] for c in stored}


def test_a_refusal_is_dead_lettered_with_its_error_and_can_be_retried(tmp_path: Path, platform: PlatformServer) -> None:
    w = World(tmp_path, platform.base_url)
    queue_cases(w.sessions, w.store, w.cases, 1)
    with w.sessions.begin() as s:  # a case the platform must refuse
        case = s.scalars(select(Case)).one()
        case.payload = {k: v for k, v in case.payload.items() if k != "sxdm"}
    w.drain(5)
    [msg] = w.rows(Outbox)
    assert msg.state == "dead" and "HTTP 400" in msg.last_error and "sxdm" in msg.last_error
    with w.sessions.begin() as s:
        s.scalars(select(Case)).one().payload = {**case.payload, "sxdm": "11010709006"}
        assert retry_dead(s, case_id=case.id) == 1
    w.drain(5)
    assert [m.state for m in w.rows(Outbox)] == ["done"] and len(platform.admin.cases()) == 1


def test_an_unreachable_platform_dead_letters_after_the_configured_age(
    tmp_path: Path, platform: PlatformServer
) -> None:
    w = World(tmp_path, platform.base_url)
    platform.stop()
    w.settings = w.settings.model_copy(
        update={"filing": w.settings.filing.model_copy(update={"dead_after_hours": 0.0003})}
    )
    w.filer.cfg = w.settings.filing
    queue_cases(w.sessions, w.store, w.cases, 1)
    end = time.monotonic() + 10
    while w.rows(Outbox)[0].state != "dead" and time.monotonic() < end:
        w.filer.drain_once()
        time.sleep(0.1)
    [msg] = w.rows(Outbox)
    assert msg.state == "dead" and "connection failed" in msg.last_error and msg.attempts >= 2


def test_updates_wait_for_the_case_and_statuses_arrive_by_poll_and_signed_callback(
    tmp_path: Path, platform: PlatformServer
) -> None:
    w = World(tmp_path, platform.base_url, callback_secret_env=None)
    queue_cases(w.sessions, w.store, w.cases, 1)
    with w.sessions.begin() as s:  # an update queued before the case is even filed
        case = s.scalars(select(Case)).one()
        w.cases._update(s, case, "still_present", None, T0, "仍存在", [])
    w.filer.drain_once()
    w.drain()
    [pc] = platform.admin.cases()
    assert [u["payload"]["kind"] for u in pc["updates"]] == ["still_present"]

    platform.admin.set_status(pc["case_id"], "dispatched", note="派遣至城管执法队")
    assert w.filer.poll_statuses() == 1
    [case] = w.rows(Case)
    assert case.status == "dispatched"
    assert [(h.to_status, h.source) for h in w.rows(CaseHistory)][-1] == ("dispatched", "poll")

    # The platform pushes "handled" to GridSight's real API; verification starts.
    ctx = ApiContext(w.sessions, w.store, TAX, {"c1": CAMERA}, lambda _id: None, w.cases, callback_secret=SECRET)
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/api/v1/platform/callback"
    try:
        body = json.dumps({"case_id": pc["case_id"], "status": "handled", "note": "已清理"}).encode()
        ts = str(int(time.time()))
        good = {"X-Platform-Timestamp": ts, "X-Platform-Signature": sign_callback(SECRET, ts, body)}
        bad = {**good, "X-Platform-Signature": hashlib.sha256(b"forged").hexdigest()}
        assert httpx.post(url, content=body, headers=bad).status_code == 401
        stale = str(int(time.time()) - 3600)
        old = {"X-Platform-Timestamp": stale, "X-Platform-Signature": sign_callback(SECRET, stale, body)}
        assert httpx.post(url, content=body, headers=old).status_code == 401

        def signed(raw: bytes) -> dict[str, str]:
            return {"X-Platform-Timestamp": ts, "X-Platform-Signature": sign_callback(SECRET, ts, raw)}

        unknown = json.dumps({"case_id": "NOPE-1", "status": "handled"}).encode()
        assert httpx.post(url, content=unknown, headers=signed(unknown)).status_code == 404
        garbage = b"{not json"
        assert httpx.post(url, content=garbage, headers=signed(garbage)).status_code == 422
        assert httpx.post(url, content=body, headers=good).status_code == 204
    finally:
        server.should_exit = True
        thread.join(5)
    [case] = w.rows(Case)
    assert case.status == "handled" and case.verification == "checking"
    assert [(h.to_status, h.source) for h in w.rows(CaseHistory)][-1] == ("handled", "callback")


@contextmanager
def cpu_load(processes: int = 2) -> Iterator[None]:
    """Busy processes beside the test, as on a loaded machine."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for p in hogs:
            p.kill()
            p.wait()


@pytest.mark.postgres
def test_filers_sharing_postgresql_send_each_case_once(tmp_path: Path, platform: PlatformServer, postgres_url) -> None:
    w = World(tmp_path, platform.base_url)
    w.engine.dispose()
    w.engine, w.sessions = open_database(postgres_url)
    w.cases = CaseService(TAX, w.settings, w.store, {"c1": CAMERA})
    queue_cases(w.sessions, w.store, w.cases, 40)
    cfg = w.settings.platform
    # A slow platform (0.15 s a case) makes a claimed batch of 20 outlast the 2 s lease: the
    # claims of the batch's tail run out while it waits, and other filers take them over.
    platform.admin.faults(delay_s=0.15)
    filers = [Filer(w.sessions, HttpJsonAdapter(cfg), w.store, w.cases, w.settings.filing) for _ in range(3)]
    with cpu_load():
        for f in filers:
            f.start()
        end = time.monotonic() + 90
        while filers[0].pending() and time.monotonic() < end:
            time.sleep(0.2)
        for f in filers:
            f.stop()
    stored = platform.admin.cases()
    assert len(stored) == 40 and len({c["idempotency_key"] for c in stored}) == 40
    assert sum(f.sent for f in filers) == 40 and sum(1 for f in filers if f.sent) >= 2  # the work was shared
    assert platform.admin.stats()["duplicates_replayed"] == 0
    w.engine.dispose()
