"""The cases list behind the console's 案件 page: its filters, and the moves each caller may make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from detector.filing.case_flow import CaseFlow
from detector.store.db import Case
from tests.support.builders import queue_cases


@pytest.fixture
def cases(api) -> TestClient:
    """Six cases: 1-3 queued at 示范街道, 4 filed as E…0001 and overdue, 5 closed, 6 at 北苑街道 next year."""
    queue_cases(api.sessions, api.store, api.cases, 3, start=3)
    now = datetime.now(UTC)
    with api.sessions.begin() as s:
        for c in s.scalars(select(Case)):
            c.deadline, c.created_at = now + timedelta(days=2), datetime(2026, 3, 6, 2, tzinfo=UTC)
        four, five, six = s.get(Case, 4), s.get(Case, 5), s.get(Case, 6)
        four.platform_case_id, four.deadline = "E09006202603060001", now - timedelta(hours=1)
        api.cases.apply_status(s, four, "filed", source="platform")
        five.platform_case_id, five.deadline = "E09006202603060002", now - timedelta(hours=1)
        api.cases.apply_status(s, five, "closed", source="platform")
        six.payload = {**six.payload, "street": "北苑街道"}
        six.problem_code, six.created_at = "06036", datetime(2027, 1, 2, tzinfo=UTC)
    return TestClient(api.app, headers=api.headers("viewer"))


def _ids(client: TestClient, **params: object) -> list[int]:
    r = client.get("/api/v1/cases", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["X-Total-Count"] == str(len(r.json()))  # one page here: the count is of all matches
    return [c["id"] for c in r.json()]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [6, 5, 4, 3, 2, 1]),
        ({"status": "filed"}, [4]),
        ({"status": "queued"}, [6, 3, 2, 1]),
        ({"problem": "06036"}, [6]),
        ({"street": "北苑街道"}, [6]),
        ({"street": "示范街道", "status": "closed"}, [5]),
        ({"overdue": "true"}, [4]),  # 5 is past its deadline too, but closed
        ({"overdue": "false"}, [6, 5, 3, 2, 1]),
        ({"since": "2027-01-01T00:00:00+08:00"}, [6]),
        ({"until": "2026-03-07T00:00:00+08:00"}, [5, 4, 3, 2, 1]),
        ({"since": "2026-03-06T10:00:00+08:00", "until": "2026-03-06T10:00:01+08:00"}, [5, 4, 3, 2, 1]),
        ({"number": "E09006202603060001"}, [4]),
        ({"number": "2026030600"}, [5, 4]),  # part of the number, as an operator types it
        ({"number": "%"}, []),  # a wildcard is a character, not "everything"
    ],
)
def test_each_filter_narrows_the_list(cases: TestClient, params: dict, expected: list[int]) -> None:
    assert _ids(cases, **params) == expected


def test_the_total_counts_every_page(cases: TestClient) -> None:
    r = cases.get("/api/v1/cases", params={"limit": 2, "offset": 2})
    assert [c["id"] for c in r.json()] == [4, 3] and r.headers["X-Total-Count"] == "6"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "open"}, "status"),
        ({"problem": "9006"}, "problem"),
        ({"overdue": "maybe"}, "overdue"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-03-06T00:00:00"}, "until"),  # no zone: which day is meant?
        ({"number": "x" * 65}, "number"),
        ({"street": ""}, "street"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(cases: TestClient, params: dict, field: str) -> None:
    r = cases.get("/api/v1/cases", params=params)
    assert r.status_code == 422, r.text
    assert field in str(r.json()["detail"])


def test_allowed_lists_the_moves_of_the_flow_for_roles_that_may_move_cases(api, cases: TestClient) -> None:
    op, viewer = api.headers("operator"), api.headers("viewer")
    assert cases.get("/api/v1/cases/4", headers=op).json()["allowed"] == ["dispatched", "voided"]
    assert cases.get("/api/v1/cases/4", headers=api.headers("admin")).json()["allowed"] == ["dispatched", "voided"]
    assert cases.get("/api/v1/cases/4", headers=viewer).json()["allowed"] == []
    assert cases.get("/api/v1/cases/5", headers=op).json()["allowed"] == []  # closed: only reopen
    listed = {c["id"]: c["allowed"] for c in cases.get("/api/v1/cases", headers=op).json()}
    assert listed[1] == [] and listed[4] == ["dispatched", "voided"]  # queued: only the platform moves it
    # each move answers with the next choices, and they lead the case to 结案
    for step, then in (("dispatched", ["handled", "voided"]), ("handled", ["dispatched", "verified", "voided"]),
                       ("verified", ["closed"]), ("closed", [])):  # fmt: skip
        r = cases.post("/api/v1/cases/4/status", json={"status": step}, headers=op)
        assert r.status_code == 200 and r.json()["allowed"] == then, r.text


def test_a_citys_own_edge_shows_in_allowed(api, cases: TestClient) -> None:
    op = api.headers("operator")
    with api.sessions.begin() as s:
        s.get(Case, 4).status = "verified"
    assert cases.get("/api/v1/cases/4", headers=op).json()["allowed"] == ["closed"]
    api.cases.flow = CaseFlow.load({"operator": {"verified": ["handled"]}})  # 返工, as filing.transitions adds it
    assert cases.get("/api/v1/cases/4", headers=op).json()["allowed"] == ["handled", "closed"]
