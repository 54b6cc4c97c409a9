"""POST /review/bulk: one verdict for several waiting incidents (the console's 批量审核)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from detector.store.db import Case, Incident


def test_a_bulk_verdict_judges_each_waiting_incident_and_names_the_ones_it_could_not(api) -> None:
    with api.sessions.begin() as s:
        for inc in s.scalars(select(Incident).where(Incident.id.in_([1, 2]))):
            s.execute(Case.__table__.delete().where(Case.incident_id == inc.id))
            inc.review_state = "pending"
    client = TestClient(api.app, headers=api.headers("operator"))
    r = client.post(
        "/api/v1/review/bulk", json={"incident_ids": [1, 2, 3, 99], "verdict": "reject", "note": "光影误报"}
    )
    assert r.status_code == 200, r.text  # not taken for /review/{incident_id} with id "bulk"
    errors = {x["incident_id"]: x["error"] for x in r.json()}
    assert errors[1] is None and errors[2] is None
    assert "not waiting for review" in errors[3] and "no incident 99" in errors[99]
    with api.sessions() as s:
        states = dict(s.execute(select(Incident.id, Incident.review_state).where(Incident.id.in_([1, 2, 3]))).all())
    assert states == {1: "rejected", 2: "rejected", 3: None}
    assert client.post("/api/v1/review/bulk", json={"incident_ids": [], "verdict": "reject"}).status_code == 422
