"""Cases and camera pages of the console in a real browser against a real `gridsight run`.

An operator moves a case of the local register (案件号 E…) through 派遣 → 已处置 → 核查 → 结案 with the
page's buttons, the buttons being the moves the server's case flow allows; a viewer gets none. The
camera page shows a live camera's health history and its incidents. Same set-up as test_console.py:
Debian's Chromium driven by the playwright client, the app as a subprocess.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.browser.harness import ARTIFACTS, add_user, open_page, running_app
from tests.browser.test_console import (
    OPERATOR,
    OPERATOR_PW,
    VIEWER,
    VIEWER_PW,
    Console,
    sign_in,
)
from tests.conftest import street_camera, write_config

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (requirements-dev.txt)")
expect = sync_api.expect

IDLE = "idle-1"  # an RTSP camera that never answers: its incidents stay as seeded, nothing verifies them


def seed_incidents(cfg: Path, plan: list[tuple[str, str]]) -> list[int]:
    """One incident per (camera, state); all wait for review, none is active (the pipeline leaves them be)."""
    from detector.config import load_config
    from detector.store.db import Incident, IncidentEvent, open_database

    engine, sessions = open_database(load_config(cfg).settings.database_url)
    now = datetime.now(UTC).replace(microsecond=0)
    ids = []
    with sessions.begin() as s:
        for i, (camera_id, state) in enumerate(plan):
            opened = now - timedelta(hours=i + 1)
            inc = Incident(
                case_key=f"{camera_id}|-|walk|09006|case{i}", active_key=None, camera_id=camera_id, zone="walk",
                problem_code="09006", state=state, opened_at=opened, first_seen_at=opened - timedelta(minutes=8),
                last_seen_at=opened, cleared_at=opened if state == "cleared" else None, recurrences=0, score=0.8,
                box=[0.3, 0.5, 0.45, 0.7], details={}, review_state="pending",
            )  # fmt: skip
            s.add(inc)
            s.flush()
            s.add(IncidentEvent(incident_id=inc.id, ts=inc.first_seen_at, kind="opened", details={}))
            ids.append(inc.id)
    engine.dispose()
    return ids


@pytest.fixture(scope="module")
def console(short_street: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("cases-console")
    start = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0).isoformat()
    cams = [
        street_camera(short_street, source={"url": str(short_street), "loop": True, "speed": 1.0, "start_time": start}),
        {"id": IDLE, "name": "北苑路口（无信号）", "problems": ["09006"], "source": {"url": "rtsp://127.0.0.1:9/none"},
         "location": {"address": "北苑路 1 号", "street": "北苑街道", "community": "北苑社区",
                      "division_code": "110107", "grid_code": "110107001002009"}},
    ]  # fmt: skip
    cfg = write_config(root, cams)
    plan = [(IDLE, "cleared")] * 3 + [("street-1", "cleared")] * 2 + [(IDLE, "cleared")] * 3  # cases, camera, bulk
    seeded = seed_incidents(cfg, plan)
    add_user(cfg, OPERATOR, "operator", OPERATOR_PW)
    add_user(cfg, VIEWER, "viewer", VIEWER_PW)
    with running_app(cfg, root) as url:
        yield Console(url, root, seeded)


@pytest.fixture
def page(browser, console: Console, request: pytest.FixtureRequest) -> Iterator[object]:
    with open_page(browser, console.url, request.node.name) as pg:
        yield pg


def registered_case(pg, console: Console, incident_id: int, timeout: float = 30) -> tuple[int, str]:
    """Confirms the incident and waits for the local register's number: (case id, 案件号)."""
    assert pg.request.post(f"{console.url}/api/v1/review/{incident_id}", data={"verdict": "confirm"}).ok
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with console.db() as con:
            row = con.execute(
                "select id, platform_case_id, status from cases where incident_id = ?", (incident_id,)
            ).fetchone()
        if row and row[2] == "filed":
            return row[0], row[1]
        time.sleep(0.3)
    raise AssertionError(f"the case of incident {incident_id} was not registered: {row}")


def history(console: Console, case_id: int) -> list[tuple[str, str]]:
    with console.db() as con:
        rows = con.execute("select to_status, source from case_history where case_id = ? order by id", (case_id,))
        return rows.fetchall()


def test_an_operator_moves_a_registered_case_to_closed_with_the_buttons(page, console: Console) -> None:
    sign_in(page, console)
    case_id, number = registered_case(page, console, console.seeded[0])
    assert re.fullmatch(r"E09006\d{8}\d{4}", number), number
    # the list finds it by part of its number and by status
    page.goto("/#/cases")
    expect(page.get_by_role("navigation", name="主导航").get_by_role("link", name="案件")).to_have_attribute(
        "aria-current", "page"
    )
    page.get_by_label("案件号").fill(number[-8:])
    page.get_by_label("案件号").press("Enter")
    expect(page).to_have_url(re.compile(f"number={number[-8:]}"))
    rows = page.locator("table.case-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("已立案")
    page.get_by_label("案件状态").select_option("closed")
    expect(page.locator(".empty")).to_have_text("没有符合条件的案件")
    page.goto(f"/#/cases?number={number}")
    page.get_by_role("link", name=number).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"案件 #{case_id}")

    actions = page.locator("section.case-actions button")
    expect(actions).to_have_text(["派遣", "作废"])  # what the flow allows operators from 已立案
    page.get_by_role("button", name="派遣").click()
    expect(page.locator(".page-head .pills")).to_contain_text("已派遣")
    expect(actions).to_have_text(["已处置", "作废"])
    page.get_by_label("办理意见").fill("已劝离")
    page.get_by_role("button", name="已处置").click()
    expect(page.locator(".toast").last).to_contain_text("已处置")
    expect(actions).to_have_text(["派遣", "核查通过", "作废"])  # 核查不通过 can send it back to 派遣
    page.get_by_role("button", name="核查通过").click()
    expect(actions).to_have_text(["结案"])
    page.get_by_role("button", name="结案").click()
    expect(page.locator(".page-head .pills")).to_contain_text("已结案")
    expect(page.locator("section.case-actions")).to_have_count(0)  # closed: only an admin's reopen
    assert history(console, case_id)[-4:] == [
        ("dispatched", "operator"),
        ("handled", "operator"),
        ("verified", "operator"),
        ("closed", "operator"),
    ]
    with console.db() as con:
        note = con.execute(
            "select note from case_history where case_id = ? and to_status = 'handled'", (case_id,)
        ).fetchone()
    assert note == ("已劝离",)


def test_a_move_refused_because_the_case_moved_meanwhile_says_so(page, console: Console) -> None:
    sign_in(page, console)
    case_id, _ = registered_case(page, console, console.seeded[2])
    page.goto(f"/#/cases/{case_id}")
    expect(page.locator("section.case-actions button")).to_have_text(["派遣", "作废"])
    for status in ("dispatched", "handled", "verified"):  # another operator, while this page stood open
        assert page.request.post(f"{console.url}/api/v1/cases/{case_id}/status", data={"status": status}).ok
    page.get_by_role("button", name="派遣").click()
    expect(page.locator("#case-move-error")).to_contain_text("未能变更为「已派遣」：案件状态已变化")
    expect(page.locator(".page-head .pills")).to_contain_text("已核查")
    expect(page.locator("section.case-actions button")).to_have_text(["结案"])
    page.screenshot(path=str(ARTIFACTS / "case-refused.png"))
    assert history(console, case_id)[-1] == ("verified", "operator")


def test_a_viewer_sees_cases_without_buttons(page, console: Console) -> None:
    sign_in(page, console)
    case_id, number = registered_case(page, console, console.seeded[1])
    page.context.clear_cookies()
    sign_in(page, console, VIEWER, VIEWER_PW)
    page.goto(f"/#/cases/{case_id}")
    expect(page.locator(".page-head .pills")).to_contain_text("已立案")
    expect(page.get_by_text(number)).to_be_visible()
    expect(page.locator("section.case-actions")).to_have_count(0)
    expect(page.get_by_role("button", name="派遣")).to_have_count(0)
    r = page.request.post(f"{console.url}/api/v1/cases/{case_id}/status", data={"status": "dispatched"})
    assert r.status == 403


def test_the_camera_page_shows_health_and_its_incidents(page, console: Console) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:  # the live camera's first state changes reach the database
        with console.db() as con:
            live = con.execute("select count(*) from camera_health where camera_id = 'street-1' and state = 'live'")
            if live.fetchone()[0]:
                break
        time.sleep(0.5)
    sign_in(page, console)
    page.goto("/#/cameras")
    page.locator("li.camera-card[data-camera-id='street-1'] a.camera-name").click()
    expect(page).to_have_url(re.compile(r"#/cameras/street-1$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("测试街 street-1")
    expect(page.locator("table.health-table tbody tr[data-state='live']").first).to_contain_text("在线")
    expect(page.locator("img.camera-frame")).to_be_visible(timeout=20_000)
    incidents = page.locator("table.camera-incidents tbody tr")
    expect(incidents).to_have_count(2)  # street-1's, not idle-1's
    ids = {int(x) for x in incidents.evaluate_all("rows => rows.map(r => r.dataset.incidentId)")}
    assert ids == set(console.seeded[3:5])
    expect(page.get_by_role("link", name="编辑区域")).to_have_count(0)  # the zone editor is for admins
    page.get_by_role("link", name="查看全部事件").click()
    expect(page).to_have_url(re.compile(r"#/incidents\?camera=street-1"))
    page.screenshot(path=str(ARTIFACTS / "camera-page.png"))


def test_the_incident_list_filters_by_date(page, console: Console) -> None:
    sign_in(page, console)
    page.goto("/#/incidents?camera=street-1")
    rows = page.locator("table.incident-table tbody tr")
    expect(rows).to_have_count(2)
    tomorrow = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=1)).date().isoformat()
    page.get_by_label("起始日期").fill(tomorrow)
    expect(page).to_have_url(re.compile(f"from={tomorrow}"))
    expect(page.locator(".empty")).to_have_text("没有符合条件的事件")
    page.get_by_label("起始日期").fill("2020-01-01")
    page.get_by_label("截止日期").fill(tomorrow)
    expect(rows).to_have_count(2)
    page.get_by_label("截止日期").fill("2020-01-31")
    expect(page.locator(".empty")).to_be_visible()


def test_bulk_review_rejects_and_confirms_the_ticked_incidents(page, console: Console) -> None:
    sign_in(page, console)
    a, b, c = console.seeded[5:8]
    page.goto("/#/review")
    page.get_by_role("link", name="批量审核").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("批量审核")
    reject = page.get_by_role("button", name="驳回所选")
    expect(reject).to_be_disabled()
    for iid in (a, b):
        page.locator(f"#bulk-{iid}").check()
    expect(page.locator(".bulk-bar")).to_contain_text("已选 2")
    page.get_by_label("备注（驳回原因）").fill("光影误报")
    reject.click()
    expect(page.locator(".toast").last).to_have_text("已驳回 2 件")
    expect(page.locator(f"li.bulk-item[data-incident-id='{a}']")).to_have_count(0)  # judged: gone from the list
    assert console.review_states([a, b]) == {a: ("rejected", "09006", "光影误报"), b: ("rejected", "09006", "光影误报")}
    # one judged elsewhere meanwhile: the others go through, the page names the one that did not
    page.locator(f"#bulk-{c}").check()
    assert page.request.post(f"{console.url}/api/v1/review/{c}", data={"verdict": "reject"}).ok
    page.get_by_role("button", name="确认所选").click()
    expect(page.locator("#bulk-failed")).to_contain_text(f"事件 #{c}")
    assert console.review_states([c])[c][0] == "rejected"


def test_a_viewer_has_no_bulk_review(page, console: Console) -> None:
    sign_in(page, console, VIEWER, VIEWER_PW)
    page.goto("/#/review/bulk")
    expect(page.get_by_role("heading", level=1)).to_have_text("无权限执行此操作")
    expect(page.get_by_role("button", name="驳回所选")).to_have_count(0)
