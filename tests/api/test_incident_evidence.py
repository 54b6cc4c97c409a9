"""An incident opened by the real manager, as the console's review screen reads it from the API."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from fastapi.testclient import TestClient

from detector.incidents.manager import IncidentManager
from detector.rules.engine import CameraRules
from detector.types import Observations
from tests.api.conftest import CAMERA

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
STALL = (0.50, 0.45, 0.60, 0.70)
IMAGE = cv2.resize(np.random.default_rng(1).integers(0, 255, (36, 64, 3), np.uint8), (640, 360))


def test_the_incident_api_lists_the_first_sighting_and_names_the_analyzer_and_zone(api) -> None:
    rules = CameraRules.build(CAMERA, api.cases.taxonomy)
    opened: list[int] = []
    manager = IncidentManager(
        api.sessions, api.store, api.cases.taxonomy, on_event=lambda kind, inc: opened.append(inc.id)
    )
    manager.attach(rules, ring=None)
    for i in range(16):  # 09006's default window: present 5 minutes
        ts = T0 + timedelta(seconds=20 * i)
        obs = Observations.build([STALL], [0.9], ["occupancy:stationary"])
        manager.process("c1", IMAGE, rules.findings(obs, ts), ts)
        manager.poll()
    c = TestClient(api.app, headers=api.headers("viewer"))
    inc = c.get(f"/api/v1/incidents/{opened[0]}").json()
    assert (inc["analyzer"], inc["label"]) == ("occupancy", "stationary")
    assert (inc["zone"], inc["zone_name"]) == ("walk", "东门口")
    kinds = {e["kind"]: e for e in inc["evidence"]}
    assert set(kinds) == {"first_seen", "clean", "annotated"}
    before, after = (c.get(kinds[k]["url"]) for k in ("first_seen", "annotated"))
    assert before.status_code == after.status_code == 200 and before.headers["content-type"] == "image/jpeg"
    assert before.content != after.content  # two moments, two pictures
    assert datetime.fromisoformat(inc["first_seen_at"]) == T0
