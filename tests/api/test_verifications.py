"""POST /api/v1/verifications: what a bad request is told, and what a good one stores (real SQLite, real app)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.accounts import create_token
from api.app import create_app
from api.deps import ApiContext
from detector.config import Camera, Settings
from detector.filing.cases import CaseService
from detector.incidents.evidence import EvidenceStore
from detector.rules.taxonomy import load_taxonomy
from detector.store.db import AuditLog, VerificationLook, open_database
from detector.verification.coverage import NotCovered, Where, covering

GRID = "110107001002003"


def camera(cam_id: str, **over: object) -> Camera:
    return Camera.model_validate(
        {"id": cam_id, "name": cam_id, "source": {"url": "rtsp://10.0.0.9/s"}, "problems": ["09006"], **over}
    )


CAMERAS = [
    # 80 m around its pole, in grid GRID
    camera("east", location={"grid_code": GRID, "lon": 116.2235, "lat": 39.9061}, view={"radius_m": 80}),
    # a polygon over a square, but it watches dust only
    camera("square", problems=["03025"], view={"polygon": [[116.30, 39.90], [116.31, 39.90], [116.31, 39.91]]}),
    camera("west", location={"grid_code": GRID}, cadence_s=300),  # same grid, no footprint
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], object]]:
    engine, sessions = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    tax = load_taxonomy(None)
    store = EvidenceStore(tmp_path / "evidence")
    cams = {c.id: c for c in CAMERAS}
    ctx = ApiContext(sessions, store, tax, cams, lambda _id: None, CaseService(tax, Settings(), store, cams))
    with sessions.begin() as s:
        token = create_token(s, "platform", "operator")  # the platform's machine token
    yield TestClient(create_app(ctx)), {"Authorization": f"Bearer {token}"}, sessions
    engine.dispose()


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"problem_code": "09006", "location": {"grid_code": "1101"}}, 422, "grid_code"),
        ({"problem_code": "99999", "location": {"grid_code": GRID}}, 422, "problem_code: unknown problem '99999'"),
        ({"problem_code": "9006", "location": {"grid_code": GRID}}, 422, "problem_code"),
        ({"problem_code": "09006", "location": {}}, 422, "location: give exactly one of grid_code"),
        ({"problem_code": "09006", "location": {"grid_code": GRID, "camera_id": "east"}}, 422, "exactly one"),
        ({"problem_code": "09006", "location": {"lon": 116.2}}, 422, "location.lon and location.lat go together"),
        ({"problem_code": "09006", "location": {"lon": 116.2235, "lat": 91}}, 422, "lat"),
        (
            {"problem_code": "09006", "location": {"grid_code": "110107001002999"}},
            422,
            "location.grid_code: no running camera covers grid 110107001002999",
        ),
        (
            {"problem_code": "09006", "location": {"lon": 116.2300, "lat": 39.9061}},
            422,
            "location: no running camera covers (116.23, 39.9061)",
        ),  # ~560 m east of the pole
        ({"problem_code": "09006", "location": {"camera_id": "north"}}, 422, "location.camera_id: no running camera"),
        (
            {"problem_code": "09006", "location": {"lon": 116.308, "lat": 39.901}},
            422,
            "problem_code: the cameras covering (116.308, 39.901) (square) do not watch 09006",
        ),
        ({"problem_code": "09006", "location": {"grid_code": GRID}, "reference": "has space"}, 422, "reference"),
        ({"problem_code": "09006", "location": {"grid_code": GRID}, "callback": "http://x"}, 422, "callback"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(client, body: dict, status: int, needle: str) -> None:
    http, headers, _ = client
    r = http.post("/api/v1/verifications", json=body, headers=headers)
    assert r.status_code == status, r.text
    assert needle in r.text


def test_a_grid_is_answered_by_every_camera_in_it_and_the_request_is_stored_and_audited(client) -> None:
    http, headers, sessions = client
    body = {"problem_code": "09006", "location": {"grid_code": GRID}, "reference": "RX-0012"}
    r = http.post("/api/v1/verifications", json=body, headers=headers)
    assert r.status_code == 201, r.text
    got = r.json()
    assert r.headers["location"] == f"/api/v1/verifications/{got['id']}"
    assert got["status"] == "pending" and got["result"] is None and got["reference"] == "RX-0012"
    assert [(c["camera_id"], c["result"]) for c in got["cameras"]] == [("east", "pending"), ("west", "pending")]
    assert got["problem_name"] == "占道经营" and got["requested_by"] == "platform"
    assert http.get(f"/api/v1/verifications/{got['id']}", headers=headers).json() == got
    with sessions() as s:
        looks = {lk.camera_id: lk for lk in s.scalars(select(VerificationLook))}
        # a slow camera gets two cadences, the others the timeout
        assert (looks["west"].deadline - looks["east"].deadline).total_seconds() == pytest.approx(600 - 120, abs=2)
        action = s.scalar(select(AuditLog).where(AuditLog.action == "verification.request"))
        assert action is not None and action.actor == "platform" and action.after["cameras"] == ["east", "west"]


def test_a_point_is_answered_by_the_cameras_whose_view_holds_it(client) -> None:
    http, headers, _ = client
    body = {"problem_code": "09006", "location": {"lon": 116.2240, "lat": 39.9063}}  # ~47 m from the pole
    r = http.post("/api/v1/verifications", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert [c["camera_id"] for c in r.json()["cameras"]] == ["east"]


def test_an_unknown_request_is_404_and_a_viewer_may_not_ask(client) -> None:
    http, headers, sessions = client
    assert http.get("/api/v1/verifications/77", headers=headers).status_code == 404
    with sessions.begin() as s:
        viewer = create_token(s, "wall", "viewer")
    body = {"problem_code": "09006", "location": {"camera_id": "east"}}
    r = http.post("/api/v1/verifications", json=body, headers={"Authorization": f"Bearer {viewer}"})
    assert r.status_code == 403


def dome(**over: object) -> Camera:
    """A dome at a crossing: preset 1 looks north, 2 east (both watch 09006), 3 south with the camera's view, a
    circle of 150 m (it watches dust only)."""
    north = [[116.2000, 39.9010], [116.2010, 39.9010], [116.2010, 39.9020], [116.2000, 39.9020]]
    east = [[116.2010, 39.9000], [116.2020, 39.9000], [116.2020, 39.9010], [116.2010, 39.9010]]
    fields: dict[str, object] = {
        "problems": ["09006", "03025"], "location": {"lon": 116.2005, "lat": 39.9005}, "view": {"radius_m": 150},
        "ptz": {"host": "10.0.0.7", "port": 8000},
        "patrol": [{"preset": "1", "problems": ["09006"], "view": {"polygon": north}},
                   {"preset": "2", "problems": ["09006"], "view": {"polygon": east}},
                   {"preset": "3", "problems": ["03025"]}],
    }  # fmt: skip
    return camera("dome", **{**fields, **over})


@pytest.mark.parametrize(
    ("lon", "lat", "code", "preset"),
    [
        (116.2005, 39.9015, "09006", "1"),  # in the north view
        (116.2015, 39.9005, "09006", "2"),  # in the east view: preset 2, not the first stop watching 09006
        (116.2005, 39.8995, "03025", "3"),  # south, 110 m from the pole: preset 3 sees it through the camera's view
    ],
)
def test_a_point_goes_to_the_patrol_stop_whose_view_holds_it(lon: float, lat: float, code: str, preset: str) -> None:
    [pick] = covering([dome()], Where(lon=lon, lat=lat), code)
    assert (pick.camera.id, pick.preset) == ("dome", preset)


def test_a_point_no_stop_watching_the_problem_sees_is_refused_and_a_grid_takes_the_first_stop() -> None:
    with pytest.raises(NotCovered, match=r"problem_code: the cameras covering .* \(dome\) do not watch 09006"):
        covering([dome()], Where(lon=116.2005, lat=39.8995), "09006")  # south: preset 3 sees it, watches dust only
    with pytest.raises(NotCovered, match=r"^location: no running camera covers"):
        covering([dome(view=None)], Where(lon=116.2005, lat=39.8995), "03025")  # no view of the south at all
    [pick] = covering([dome(location={"grid_code": GRID, "lon": 116.2005, "lat": 39.9005})], Where(grid_code=GRID),
                      "09006")  # fmt: skip
    assert pick.preset == "1"
