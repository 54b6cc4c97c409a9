"""Login, rate limiting, audit, review verdicts and hardening, through the real app."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from detector.store.db import AuditLog, Case, Incident, Outbox


def rows(api, model):
    with api.sessions() as s:
        return list(s.scalars(select(model).order_by(model.id)))


def test_login_gives_a_session_that_the_console_uses_and_logout_ends(api) -> None:
    c = TestClient(api.app)
    assert c.get("/api/v1/auth/me").status_code == 401
    r = c.post("/api/v1/auth/login", json={"username": "user-operator", "password": "password-operator-123"})
    assert r.status_code == 200 and r.json()["role"] == "operator" and "review" in r.json()["permissions"]
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert c.get("/api/v1/auth/me").json()["role"] == "operator"
    assert c.get("/api/v1/incidents").status_code == 200
    assert c.post("/api/v1/auth/logout").status_code == 204
    assert c.get("/api/v1/incidents").status_code == 401


def test_failed_logins_are_rate_limited(api) -> None:
    c = TestClient(api.app)
    codes = [
        c.post("/api/v1/auth/login", json={"username": "user-admin", "password": f"guess-{i}"}).status_code
        for i in range(7)
    ]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    # even the right password is refused while blocked
    right = c.post("/api/v1/auth/login", json={"username": "user-admin", "password": "password-admin-123"})
    assert right.status_code == 429 and "try again" in right.json()["detail"]


def test_verdicts_are_audited_and_undo_works_until_the_platform_has_it(api) -> None:
    with api.sessions.begin() as s:  # make the three queued incidents wait for review instead
        for inc in s.scalars(select(Incident)):
            inc.review_state = "pending"
        for model in (Outbox, Case):
            for row in s.scalars(select(model)):
                s.delete(row)
    c = TestClient(api.app, headers=api.headers("operator"))
    pending = c.get("/api/v1/review/next", params={"limit": 10}).json()
    assert [i["review_state"] for i in pending] == ["pending"] * 3
    assert pending[0]["camera_name"] == "幸福路东" and pending[0]["street"] == "示范街道"
    first, second, third = (i["id"] for i in pending)

    r = c.post(f"/api/v1/review/{first}", json={"verdict": "confirm"})
    assert r.status_code == 200 and r.json()["case_id"] is not None
    assert c.post(f"/api/v1/review/{first}", json={"verdict": "reject"}).status_code == 409  # already judged
    box = [0.52, 0.48, 0.66, 0.7]
    r = c.post(
        f"/api/v1/review/{second}", json={"verdict": "relabel", "problem_code": "06036", "box": box, "note": "堆物"}
    )
    assert r.status_code == 200
    assert c.get(f"/api/v1/incidents/{second}").json()["box"] == box
    assert c.post(f"/api/v1/review/{third}", json={"verdict": "relabel"}).status_code == 422
    assert c.post("/api/v1/review/999", json={"verdict": "confirm"}).status_code == 404

    assert c.post(f"/api/v1/review/{second}/undo").status_code == 200  # nothing sent yet
    [inc] = [i for i in rows(api, Incident) if i.id == second]
    assert inc.review_state == "pending" and inc.problem_code == "09006" and inc.box == [0.5, 0.4, 0.6, 0.7]
    with api.sessions.begin() as s:  # the filer has sent the first one
        for m in s.scalars(select(Outbox)):
            m.state = "done"
    assert c.post(f"/api/v1/review/{first}/undo").status_code == 409

    audit = [(a.actor, a.action, a.target) for a in rows(api, AuditLog) if a.action.startswith("review")]
    assert audit == [
        ("t-operator", "review.confirm", f"incident:{first}"),
        ("t-operator", "review.relabel", f"incident:{second}"),
        ("t-operator", "review.undo", f"incident:{second}"),
    ]
    relabel = next(a for a in rows(api, AuditLog) if a.action == "review.relabel")
    assert relabel.before["problem_code"] == "09006" and relabel.after["problem_code"] == "06036"


def test_hardening(api) -> None:
    c = TestClient(api.app, headers=api.headers("admin"))
    r = c.get("/api/v1/cameras")
    assert r.status_code == 200
    assert "10.0.0.9" not in r.text and "rtsp" not in r.text  # camera addresses and credentials stay inside
    for h in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert h in r.headers
    assert "access-control-allow-origin" not in {k.lower() for k in r.headers}  # CORS is off
    assert c.get("/api/v1/evidence/../db.sqlite").status_code in (400, 404)
    assert c.get("/api/v1/evidence/%2e%2e/db.sqlite").status_code in (400, 404)
    big = c.post("/api/v1/review/bulk", content=b"x" * (2 << 20), headers={"Content-Type": "application/json"})
    assert big.status_code == 413 and "larger than" in big.json()["detail"]
    bad = c.post("/api/v1/review/1", json={"verdict": "maybe"})
    assert bad.status_code == 422 and "verdict" in bad.text
    r = c.get("/metrics")
    assert r.status_code == 200 and "gridsight_filing_queue" in r.text and 'gridsight_incidents{state="open"}' in r.text
