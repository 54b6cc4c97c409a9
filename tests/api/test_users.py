"""The admins' users and tokens API: on a real SQLite database, through real logins and tokens."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from detector.store.db import AuditLog

ENDPOINTS = [
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"username": "intruder", "role": "admin"}),
    ("POST", "/api/v1/users/user-admin/disable", None),
    ("POST", "/api/v1/users/user-viewer/password", {"password": "chosen-by-me-123"}),
    ("GET", "/api/v1/tokens", None),
    ("POST", "/api/v1/tokens/t-admin/revoke", None),
]


def client(api, role: str | None = "admin") -> TestClient:
    return TestClient(api.app, headers=api.headers(role))


def login(api, user: str, password: str) -> TestClient:
    c = TestClient(api.app)
    r = c.post("/api/v1/auth/login", json={"username": user, "password": password})
    assert r.status_code == 200, r.text
    return c


def audited(api, action: str) -> list[tuple[str, str]]:
    with api.sessions() as s:
        return [(a.actor, a.target) for a in s.scalars(select(AuditLog).where(AuditLog.action == action))]


@pytest.mark.parametrize("role", ["viewer", "operator", "trainer"])
def test_only_admins_may_see_or_change_users_and_tokens(api, role: str) -> None:
    c = client(api, role)
    for method, path, body in ENDPOINTS:
        r = c.request(method, path, json=body)
        assert r.status_code == 403 and "'admin'" in r.json()["detail"], (method, path, r.text)
    with api.sessions() as s:  # nothing changed
        assert s.scalars(select(AuditLog)).all() == []
    assert client(api, "admin").get("/api/v1/tokens").json()[0]["revoked"] is False


def test_an_admin_adds_a_user_who_can_then_log_in(api) -> None:
    r = client(api).post("/api/v1/users", json={"username": "wang.li", "role": "operator"})
    assert r.status_code == 201
    body = r.json()
    assert body["user"]["username"] == "wang.li" and body["user"]["role"] == "operator"
    me = login(api, "wang.li", body["password"]).get("/api/v1/auth/me").json()
    assert me["username"] == "wang.li" and "review" in me["permissions"]
    assert audited(api, "user.add") == [("t-admin", "user:wang.li")]
    again = client(api).post("/api/v1/users", json={"username": "wang.li", "role": "viewer"})
    assert again.status_code == 409 and "exists" in again.json()["detail"]
    bad = client(api).post("/api/v1/users", json={"username": "x", "role": "boss"})
    assert bad.status_code == 422
    listed = {u["username"]: (u["role"], u["disabled"]) for u in client(api).get("/api/v1/users").json()}
    assert listed["wang.li"] == ("operator", False) and listed["user-viewer"] == ("viewer", False)


def test_disabling_a_user_ends_their_session_and_enabling_lets_them_back(api) -> None:
    operator = login(api, "user-operator", "password-operator-123")
    assert operator.get("/api/v1/auth/me").status_code == 200
    r = client(api).post("/api/v1/users/user-operator/disable")
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert operator.get("/api/v1/auth/me").status_code == 401
    refused = TestClient(api.app).post(
        "/api/v1/auth/login", json={"username": "user-operator", "password": "password-operator-123"}
    )
    assert refused.status_code == 401
    assert audited(api, "user.disable") == [("t-admin", "user:user-operator")]
    assert client(api).post("/api/v1/users/user-operator/enable").json()["disabled"] is False
    login(api, "user-operator", "password-operator-123")


def test_an_admin_cannot_lock_the_console(api) -> None:
    admin = login(api, "user-admin", "password-admin-123")
    own = admin.post("/api/v1/users/user-admin/disable")
    assert own.status_code == 409 and "yourself" in own.json()["detail"]
    last = client(api).post("/api/v1/users/user-admin/disable")  # by token: still the only admin
    assert last.status_code == 409 and "last enabled admin" in last.json()["detail"]
    missing = client(api).post("/api/v1/users/nobody/disable")
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
    assert admin.get("/api/v1/auth/me").status_code == 200


def test_a_password_reset_logs_the_user_out_and_only_the_new_password_works(api) -> None:
    viewer = login(api, "user-viewer", "password-viewer-123")
    r = client(api).post("/api/v1/users/user-viewer/password", json={})
    new = r.json()["password"]
    assert r.status_code == 200 and len(new) >= 10
    assert viewer.get("/api/v1/auth/me").status_code == 401
    old = TestClient(api.app).post(
        "/api/v1/auth/login", json={"username": "user-viewer", "password": "password-viewer-123"}
    )
    assert old.status_code == 401
    login(api, "user-viewer", new)
    chosen = client(api).post("/api/v1/users/user-viewer/password", json={"password": "chosen-by-admin-1"})
    assert chosen.json()["password"] is None  # not echoed: the admin knows it
    login(api, "user-viewer", "chosen-by-admin-1")
    assert audited(api, "user.reset_password") == [("t-admin", "user:user-viewer")] * 2


def test_tokens_are_listed_without_secrets_and_a_revoked_one_stops_working(api) -> None:
    r = client(api).get("/api/v1/tokens")
    assert {t["name"] for t in r.json()} == {"t-viewer", "t-operator", "t-trainer", "t-admin"}
    assert "gst_" not in r.text and all(secret not in r.text for secret in api.tokens.values())
    assert client(api, "viewer").get("/api/v1/cameras").status_code == 200
    revoked = client(api).post("/api/v1/tokens/t-viewer/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert client(api, "viewer").get("/api/v1/cameras").status_code == 401
    assert client(api).post("/api/v1/tokens/t-viewer/revoke").status_code == 409
    assert client(api).post("/api/v1/tokens/t-none/revoke").status_code == 404
    assert audited(api, "token.revoke") == [("t-admin", "token:t-viewer")]
