"""The verification desk answers cannot_see for a camera that cannot see, and never for our own shutdown."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from detector.incidents.evidence import EvidenceStore
from detector.ingest.health import CameraState, HealthSnapshot
from detector.rules.taxonomy import load_taxonomy
from detector.store.db import Verification, VerificationLook, open_database
from detector.verification.desk import VerificationDesk


@pytest.mark.parametrize(("state", "answered"), [(CameraState.FAILED, True), (CameraState.STALLED, True),
                                                 (CameraState.STOPPED, False), (CameraState.LIVE, False)])  # fmt: skip
def test_a_look_is_answered_cannot_see_only_when_the_camera_cannot_see(
    tmp_path: Path, state: CameraState, answered: bool
) -> None:
    _engine, sessions = open_database(f"sqlite:///{tmp_path / 'g.db'}")
    now = datetime.now(UTC)
    with sessions.begin() as s:
        look = VerificationLook(camera_id="cam-1", state="pending", details={}, deadline=now + timedelta(minutes=5))
        s.add(Verification(problem_code="09006", location={"camera_id": "cam-1"}, requested_by="t", status="pending",
                           created_at=now, looks=[look]))  # fmt: skip
    snap = HealthSnapshot("cam-1", state, None, None, 0, 0, 0, 0, time.time())
    desk = VerificationDesk(sessions, EvidenceStore(tmp_path / "ev"), load_taxonomy(None),
                            served=lambda: ["cam-1"], health=lambda _id: snap)  # fmt: skip
    desk.tick()
    with sessions() as s:
        got = s.query(VerificationLook).one()
        assert (got.state != "pending") is answered
        if answered:
            assert (got.state, got.reason) == ("cannot_see", f"camera {state.value}")
