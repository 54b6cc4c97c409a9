"""Cases from incidents: fields, filing policy, review queue, verification, recurrence, escalation."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from detector.config import Camera, Settings
from detector.filing.cases import CaseService, ReviewError
from detector.incidents.evidence import EvidenceStore
from detector.incidents.manager import IncidentManager
from detector.rules.engine import CameraRules
from detector.rules.taxonomy import load_taxonomy
from detector.store.db import Case, EvidenceFile, Incident, Outbox, open_database
from detector.types import Observations

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 6, 15, 0, tzinfo=SH)  # a Friday afternoon
TAX = load_taxonomy(None)
STALL = (0.50, 0.45, 0.60, 0.70)
IMAGE = cv2.resize(np.random.default_rng(0).integers(0, 255, (36, 64, 3), np.uint8), (640, 360))


def camera(mode: str = "auto") -> Camera:
    return Camera.model_validate(
        {
            "id": "c1",
            "name": "幸福路东",
            "source": {"url": "/x.mp4"},
            "location": {"address": "幸福路 12 号", "division_code": "110107", "street": "示范街道",
                         "community": "幸福社区", "grid_code": "110107001002003", "lon": 116.2, "lat": 39.9},
            "zones": [{"name": "walk", "display_name": "东门口", "purpose": "no_vending",
                       "polygon": [[0, 0.5], [1, 0.5], [1, 0.8], [0, 0.8]]}],
            "problems": ["09006", "06036"],
            "rules": {"09006": {"persistence": {"k": 3, "n": 4, "minutes": 1}, "clear_minutes": 1}},
            "filing": {"09006": {"mode": mode, "min_score": 0.5, "min_minutes": 1}},
        }
    )  # fmt: skip


class World:
    def __init__(self, root: Path, mode: str = "auto", **filing: float) -> None:
        self.engine, self.sessions = open_database(f"sqlite:///{root / 'db.sqlite'}")
        self.store = EvidenceStore(root / "evidence")
        cam = camera(mode)
        settings = Settings(filing=filing)
        self.cases = CaseService(TAX, settings, self.store, {cam.id: cam})
        self.manager = IncidentManager(self.sessions, self.store, TAX, cases=self.cases)
        self.rules = CameraRules.build(cam, TAX)
        self.manager.attach(self.rules, ring=None)
        self.t = 0

    def run(self, pattern: str, step_s: int = 20) -> None:
        """One analysis per character: 'x' the stall is there, '.' it is not."""
        for ch in pattern:
            ts = T0 + timedelta(seconds=step_s * self.t)
            obs = Observations.build([STALL], [0.9], ["occupancy:stationary"]) if ch == "x" else Observations()
            self.manager.process("c1", IMAGE, self.rules.findings(obs, ts), ts)
            self.manager.poll()
            self.t += 1

    def one(self, model):
        with self.sessions() as s:
            return list(s.scalars(select(model).order_by(model.id)))

    def set_status(self, status: str) -> None:
        with self.sessions() as s:
            case = s.scalars(select(Case).order_by(Case.id.desc())).first()
            if case.status == "queued":  # the filing receipt comes before any callback
                self.cases.apply_status(s, case, "filed", source="platform")
            self.cases.apply_status(s, case, status, source="callback")
            s.commit()


def test_auto_policy_files_with_national_fields_and_deadline(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.run("xxxx")
    [case] = w.one(Case)
    [msg] = w.one(Outbox)
    assert (msg.kind, msg.state, msg.case_id) == ("file", "pending", case.id)
    p = case.payload
    assert p["sxdm"] == "11010709006" and len(p["sxdm"]) == 11
    assert p["sxmc"] == "占道经营" and p["source"] == "视频发现" and p["grid_code"] == "110107001002003"
    assert p["department"]["name"] == "城市管理综合执法局"
    assert p["co_dispatch_street"] is True and p["street"] == "示范街道"
    assert "幸福路 12 号" in p["description"] and "2026-03-06 15:00" in p["description"]
    # the text speaks of the zone by its Chinese name, never its id
    assert "（幸福路东）东门口发现占道经营摊点" in p["description"] and "walk" not in p["description"]
    filed = {e.id: e.kind for e in w.one(EvidenceFile)}
    assert sorted(filed[i] for i in msg.payload["evidence"]) == ["annotated", "clean", "first_seen"]
    # opened Friday 15:01; 4 working hours: 2 h 29 min on Friday to 17:30, 1 h 31 min from 08:30 Monday
    assert datetime.fromisoformat(p["deadline"]) == datetime(2026, 3, 9, 10, 1, tzinfo=SH)
    assert p["idempotency_key"] == case.idempotency_key == msg.idempotency_key


def test_review_policy_queues_and_verdicts_move_the_queue(tmp_path: Path) -> None:
    w = World(tmp_path, mode="review")
    w.run("xxxx")
    [inc] = w.one(Incident)
    assert inc.review_state == "pending" and w.one(Case) == []
    with w.sessions() as s:
        with pytest.raises(ReviewError, match="relabel needs a known problem code"):
            w.cases.review(s, inc.id, "relabel", code="99999")
        case = w.cases.review(s, inc.id, "relabel", code="06036", note="是堆物不是摊位")
        s.commit()
        assert case.problem_code == "06036" and case.payload["sxdm"] == "11010706036"
        with pytest.raises(ReviewError, match="not waiting for review"):
            w.cases.review(s, inc.id, "confirm")
    [inc] = w.one(Incident)
    assert inc.review_state == "relabelled" and inc.details["relabelled_from"] == "09006"


def test_rejected_incident_files_nothing(tmp_path: Path) -> None:
    w = World(tmp_path, mode="review")
    w.run("xxxx")
    with w.sessions() as s:
        assert w.cases.review(s, 1, "reject", note="是快递车") is None
        s.commit()
    assert w.one(Case) == [] and w.one(Outbox) == []


def test_verification_reports_not_resolved_then_cleared_with_fresh_evidence(tmp_path: Path) -> None:
    w = World(tmp_path, verify_grace_minutes=1)
    w.run("xxxx")
    w.set_status("handled")
    w.run("xx")  # within the grace minute: nothing yet
    assert [m.kind for m in w.one(Outbox)] == ["file"]
    w.run("xx")  # still there after the grace minute
    msgs = w.one(Outbox)
    assert msgs[-1].payload["result"] == "not_resolved"
    fresh = msgs[-1].payload["evidence"]
    assert [e.kind for e in w.one(EvidenceFile) if e.id in fresh] == ["fresh"]
    w.run("....")  # gone for longer than clear_minutes
    msgs = w.one(Outbox)
    assert msgs[-1].payload["result"] == "cleared" and msgs[-1].payload["kind"] == "verification"
    assert [e.kind for e in w.one(EvidenceFile) if e.id in msgs[-1].payload["evidence"]] == ["after"]
    assert w.one(Case)[0].verification == "cleared"


def test_a_problem_back_after_closing_is_a_linked_recurrence(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.run("xxxx")
    w.set_status("handled")
    w.run("....")
    w.set_status("closed")
    w.run("xxxx")  # back within the recurrence window
    first, second = w.one(Case)
    assert second.recurrence_of == first.id and second.status == "queued"
    assert w.one(Incident)[0].recurrences == 1


def test_a_problem_back_before_closing_updates_the_open_case(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.run("xxxx....xxxx")
    assert len(w.one(Case)) == 1
    assert [m.payload.get("kind") for m in w.one(Outbox)] == [None, "still_present"]


def test_an_overdue_case_gets_fresh_evidence_at_the_escalation_interval(tmp_path: Path) -> None:
    w = World(tmp_path, escalate_every_minutes=30)
    w.run("xxxx")
    [case] = w.one(Case)
    with w.sessions() as s:  # pretend the deadline is already behind us
        s.get(Case, case.id).deadline = T0
        s.commit()
    w.run("x" * 200)  # 200 analyses at 20 s: ~67 minutes
    updates = [m for m in w.one(Outbox) if m.kind == "update"]
    assert len(updates) == 3  # at 0, 30 and 60 minutes, not one per analysis
    assert all(m.payload["kind"] == "still_present" for m in updates)


ENTRY = '{code: "%s", name_zh: a, name_en: a, outputs: [x], rule: {persistence: {k: 1, n: 1, minutes: 0}}}'


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (f"problems:\n  - {ENTRY % '09006'}\n  - {ENTRY % '09006'}\n", "problems.1.code: duplicate code 09006"),
        (f"problems:\n  - {ENTRY % '9006'}\n", "problems.0.code"),
        ("problems: {}\n", "expected a top-level 'problems' list"),
    ],
)
def test_a_broken_taxonomy_file_is_refused_with_the_entry_and_field(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError, match=message):
        load_taxonomy(path)
