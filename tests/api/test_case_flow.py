"""The case lifecycle through the API: only the standard's moves, reopen as its own action,
stale platform updates kept out of the case."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select

from detector.config import Settings
from detector.filing.cases import CaseService
from detector.rules.taxonomy import load_taxonomy
from detector.store.db import AuditLog, Case, CaseHistory


def _filed(api, case_id: int = 1) -> None:
    """The filing receipt, as the filer applies it."""
    with api.sessions() as s:
        case = s.get(Case, case_id)
        case.platform_case_id = f"PC-{case_id}"
        api.cases.apply_status(s, case, "filed", source="platform")
        s.commit()


def _counts(api) -> tuple[int, int]:
    with api.sessions() as s:
        return s.scalar(select(func.count()).select_from(CaseHistory)), s.scalar(
            select(func.count()).select_from(AuditLog)
        )


def _callback(client: TestClient, body: dict) -> int:
    raw = json.dumps(body).encode()
    ts = str(int(time.time()))
    sig = hmac.new(b"cb", f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
    headers = {"X-Platform-Timestamp": ts, "X-Platform-Signature": sig, "Content-Type": "application/json"}
    return client.post("/api/v1/platform/callback", content=raw, headers=headers)


def test_an_operator_moves_a_case_only_along_the_standard_flow(api) -> None:
    _filed(api)
    client = TestClient(api.app)
    op = api.headers("operator")
    for status in ("dispatched", "handled", "verified", "closed"):  # 派遣 → 处置 → 核查 → 结案
        r = client.post("/api/v1/cases/1/status", json={"status": status}, headers=op)
        assert r.status_code == 200 and r.json()["status"] == status, r.text
    before = _counts(api)
    # what the issue saw accepted: closed → handled → voided → … and a voided case back to accepted
    for status in ("handled", "voided", "verified", "dispatched", "filed", "accepted"):
        r = client.post("/api/v1/cases/1/status", json={"status": status}, headers=op)
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert "'closed'" in detail and f"'{status}'" in detail and "reopen" in detail
    assert _counts(api) == before  # nothing written: no history, no audit
    assert client.get("/api/v1/cases/1", headers=op).json()["status"] == "closed"
    # skipping 派遣 is refused too, and the message lists what is allowed
    _filed(api, 2)
    r = client.post("/api/v1/cases/2/status", json={"status": "closed"}, headers=op)
    assert r.status_code == 409 and "allowed from 'filed': dispatched, voided" in r.json()["detail"]


def test_reopen_is_an_admins_audited_action_and_the_ranking_counts_the_case_once(api) -> None:
    for case_id in (1, 2, 3):
        _filed(api, case_id)
    client = TestClient(api.app)
    op, admin = api.headers("operator"), api.headers("admin")
    for status in ("dispatched", "handled", "verified", "closed"):
        assert client.post("/api/v1/cases/1/status", json={"status": status}, headers=op).status_code == 200
    assert client.post("/api/v1/cases/1/reopen", json={"reason": "复现"}, headers=op).status_code == 403
    assert client.post("/api/v1/cases/1/reopen", json={}, headers=admin).status_code == 422  # a reason is required
    r = client.post("/api/v1/cases/1/reopen", json={"reason": "市民反映问题复现"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "verified"  # where it was before 结案
    detail = client.get("/api/v1/cases/1", headers=op).json()
    assert detail["history"][-1] | {"ts": None} == {
        "ts": None, "from_status": "closed", "to_status": "verified", "source": "reopen",
        "note": "市民反映问题复现", "stale": False,
    }  # fmt: skip
    with api.sessions() as s:
        row = s.scalars(select(AuditLog).where(AuditLog.action == "case.reopen")).one()
        assert (row.actor, row.before, row.after) == (
            "t-admin",
            {"status": "closed"},
            {"status": "verified", "reason": "市民反映问题复现"},
        )
    assert client.post("/api/v1/cases/1/status", json={"status": "closed"}, headers=op).status_code == 200
    stats = client.get("/api/v1/stats", params={"days": 366}, headers=op).json()
    [street] = stats["by_street"]
    assert (street["filed"], street["closed"], street["disposal_rate"]) == (3, 1, 0.333)
    # an open case cannot be "reopened"
    r = client.post("/api/v1/cases/2/reopen", json={"reason": "误操作"}, headers=admin)
    assert r.status_code == 409 and "only a closed or voided case" in r.json()["detail"]


def test_an_older_platform_update_after_closing_is_recorded_as_stale_and_moves_nothing(api) -> None:
    _filed(api)
    client = TestClient(api.app)
    closed = {"case_id": "PC-1", "status": "closed", "ts": "2026-03-06T12:00:00+08:00", "note": "结案"}
    assert _callback(client, closed).status_code == 204
    late = {"case_id": "PC-1", "status": "dispatched", "ts": "2026-03-06T11:00:00+08:00", "note": "派遣"}
    assert _callback(client, late).status_code == 204  # delivered late: accepted, not applied
    case = client.get("/api/v1/cases/1", headers=api.headers("viewer")).json()
    assert case["status"] == "closed"
    last = case["history"][-1]
    assert (last["from_status"], last["to_status"], last["source"], last["stale"]) == (
        "closed",
        "dispatched",
        "callback",
        True,
    )
    # a newer one that the flow does not allow is refused, naming both statuses
    newer = {**late, "ts": "2026-03-06T13:00:00+08:00"}
    r = _callback(client, newer)
    assert r.status_code == 409 and "'closed'" in r.json()["detail"] and "'dispatched'" in r.json()["detail"]


def test_a_city_adds_its_own_edge_in_config_and_a_wrong_one_is_named() -> None:
    settings = Settings.model_validate({"filing": {"transitions": {"operator": {"verified": ["handled"]}}}})
    flow = CaseService(load_taxonomy(None), settings, None, {}).flow  # type: ignore[arg-type]
    assert "handled" in flow.allowed("operator", "verified")  # 返工 from 核查 back to 处置
    assert "closed" in flow.allowed("operator", "verified")  # the bundled edges stay
    with pytest.raises(ValidationError, match=r"transitions\.operator\.verified: unknown status 'rework'"):
        Settings.model_validate({"filing": {"transitions": {"operator": {"verified": ["rework"]}}}})
    with pytest.raises(ValidationError, match="unknown source 'mayor'"):
        Settings.model_validate({"filing": {"transitions": {"mayor": {"closed": ["filed"]}}}})
    with pytest.raises(ValidationError, match="changes only through reopen"):
        Settings.model_validate({"filing": {"transitions": {"operator": {"closed": ["dispatched"]}}}})
