"""Every route, every role: allowed, 403 or 401 — and a table that must list every route."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.accounts import PERMISSIONS

# (method, path) → the permission it needs; None = public (no credentials needed).
ROUTES: dict[tuple[str, str], str | None] = {
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/metrics"): "read",
    ("POST", "/api/v1/auth/login"): None,
    ("POST", "/api/v1/auth/logout"): None,
    ("GET", "/api/v1/auth/me"): "any",
    ("GET", "/api/v1/cameras"): "read",
    ("GET", "/api/v1/cameras/{camera_id}"): "read",
    ("GET", "/api/v1/cameras/{camera_id}/health"): "read",
    ("GET", "/api/v1/cameras/{camera_id}/frame.jpg"): "read",
    ("GET", "/api/v1/cameras/{camera_id}/picture.jpg"): "admin",
    ("GET", "/api/v1/cameras/{camera_id}/zones"): "read",
    ("PUT", "/api/v1/cameras/{camera_id}/zones"): "admin",
    ("POST", "/api/v1/cameras/{camera_id}/ptz/lock"): "review",
    ("POST", "/api/v1/cameras/{camera_id}/ptz/release"): "review",
    ("POST", "/api/v1/config/reload"): "admin",
    ("GET", "/api/v1/taxonomy"): "read",
    ("GET", "/api/v1/models"): "read",
    ("POST", "/api/v1/models/{name}/promote"): "models",
    ("POST", "/api/v1/models/{name}/rollback"): "models",
    ("POST", "/api/v1/models/{name}/shadow"): "models",
    ("DELETE", "/api/v1/models/{name}/shadow"): "models",
    ("GET", "/api/v1/models/{name}/shadow/report"): "read",
    ("GET", "/api/v1/stats"): "read",
    ("GET", "/api/v1/incidents"): "read",
    ("GET", "/api/v1/incidents/{incident_id}"): "read",
    ("GET", "/api/v1/evidence/{path}"): "read",
    ("GET", "/api/v1/review/next"): "read",
    ("POST", "/api/v1/review/{incident_id}"): "review",
    ("POST", "/api/v1/review/bulk"): "review",
    ("POST", "/api/v1/review/{incident_id}/undo"): "review",
    ("GET", "/api/v1/cases"): "read",
    ("GET", "/api/v1/cases/{case_id}"): "read",
    ("POST", "/api/v1/cases/{case_id}/retry"): "cases",
    ("POST", "/api/v1/cases/{case_id}/status"): "cases",
    ("POST", "/api/v1/cases/{case_id}/reopen"): "admin",
    ("POST", "/api/v1/verifications"): "cases",
    ("GET", "/api/v1/verifications/{verification_id}"): "read",
    ("GET", "/api/v1/users"): "admin",
    ("POST", "/api/v1/users"): "admin",
    ("POST", "/api/v1/users/{username}/disable"): "admin",
    ("POST", "/api/v1/users/{username}/enable"): "admin",
    ("POST", "/api/v1/users/{username}/password"): "admin",
    ("GET", "/api/v1/tokens"): "admin",
    ("POST", "/api/v1/tokens/{name}/revoke"): "admin",
    ("POST", "/api/v1/platform/callback"): None,  # authenticated by its HMAC signature
    ("GET", "/public/cases"): None,
    ("GET", "/public/evidence/{sha256}.jpg"): None,
}
BODIES = {
    "/api/v1/auth/login": {"username": "nobody", "password": "x"},
    "/api/v1/review/{incident_id}": {"verdict": "reject", "note": "test"},
    "/api/v1/review/bulk": {"incident_ids": [2], "verdict": "reject"},
    "/api/v1/cases/{case_id}/status": {"status": "dispatched"},
    "/api/v1/cases/{case_id}/reopen": {"reason": "test"},
    "/api/v1/verifications": {"problem_code": "09006", "location": {"camera_id": "c1"}},
    "/api/v1/cameras/{camera_id}/zones": {"zones": []},
    "/api/v1/cameras/{camera_id}/ptz/lock": {"seconds": 60},
    "/api/v1/users": {"username": "made-by-matrix", "role": "viewer"},
    "/api/v1/users/{username}/password": {},
}


def _path(template: str) -> str:
    fill = {"camera_id": "c1", "path": "x.jpg", "sha256": "0" * 64, "username": "user-viewer", "name": "t-none"}
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: fill.get(m.group(1), "1"), template)


def test_the_table_lists_every_route(shared_api) -> None:
    routes = {(m.upper(), path) for path, item in shared_api.app.openapi()["paths"].items() for m in item}
    assert routes == set(ROUTES)


@pytest.mark.parametrize("role", [None, "viewer", "operator", "trainer", "admin"])
@pytest.mark.parametrize(("method", "template"), list(ROUTES))
def test_role_matrix(shared_api, role: str | None, method: str, template: str) -> None:
    needs = ROUTES[(method, template)]
    client = TestClient(shared_api.app)
    r = client.request(method, _path(template), headers=shared_api.headers(role), json=BODIES.get(template))
    if needs is None:
        assert r.status_code not in (403,), r.text
    elif role is None:
        assert r.status_code == 401, r.text
        assert "token" in r.json()["detail"] or "log in" in r.json()["detail"]
    elif needs == "any" or needs in PERMISSIONS[role]:
        assert r.status_code not in (401, 403), f"{role} {method} {template}: {r.status_code} {r.text}"
    else:
        assert r.status_code == 403, f"{role} {method} {template}: {r.status_code} {r.text}"
        assert needs in r.json()["detail"]
