"""The operators' console in a real browser against a real `gridsight run`.

Debian's Chromium (/usr/bin/chromium, never a downloaded browser) is driven by the
`playwright` Python client. The app runs as a subprocess on a generated street video
(kept live at 1x speed) plus an RTSP camera that never answers, on a database seeded
with pending incidents that carry real evidence (annotated and clean JPEGs, an MP4
clip cut from the street video) in the evidence store. Screenshots and the review
timings are kept under test-artifacts/browser/.
"""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import av
import cv2
import numpy as np
import pytest

from tests.browser.harness import ARTIFACTS, add_user, open_page, running_app, shot
from tests.conftest import street_camera, write_config

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (requirements-dev.txt)")
expect = sync_api.expect

OPERATOR, OPERATOR_PW = "zhang.wei", "Grid-0perator-pw"
VIEWER, VIEWER_PW = "li.na", "Grid-v1ewer-pw"
SEEDED = 125  # 10 reviewed one by one, 100 timed, the rest for the clip, viewer and detail checks
STREET, DEAD_STREET = "示范街道", "北苑街道"
REVIEW = "section.review"


# ---------------------------------------------------------------- test data


def first_frame(video: Path) -> np.ndarray:
    with av.open(str(video)) as c:
        for frame in c.decode(video=0):
            return frame.to_ndarray(format="bgr24")
    raise AssertionError(f"no frame in {video}")


def clip_bytes(video: Path, seconds: float, tmp: Path) -> bytes:
    """The first `seconds` of `video`, remuxed (no re-encode) like the evidence ring does."""
    out_path = tmp / "seed-clip.mp4"
    with av.open(str(video)) as src, av.open(str(out_path), "w", format="mp4") as out:
        vin = src.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for pkt in src.demux(vin):
            if pkt.dts is None:
                continue
            if pkt.pts is not None and pkt.pts * vin.time_base > Fraction(seconds).limit_denominator():
                break
            pkt.stream = vout
            out.mux(pkt)
    return out_path.read_bytes()


def seed_pending_incidents(cfg: Path, camera_id: str, video: Path, n: int, tmp: Path) -> list[int]:
    """n incidents waiting for review, each with its own annotated and clean JPEG and a shared clip."""
    from detector.config import load_config
    from detector.incidents.evidence import EvidenceStore
    from detector.store.db import EvidenceFile, Incident, IncidentEvent, open_database

    settings = load_config(cfg).settings
    engine, sessions = open_database(settings.database_url)
    store = EvidenceStore(settings.evidence_root)
    base = first_frame(video)
    hgt, wid = base.shape[:2]
    clip = store.put_bytes("clip", clip_bytes(video, 4.0, tmp), ".mp4")
    now = datetime.now(UTC).replace(microsecond=0)
    ids: list[int] = []
    with sessions.begin() as s:
        for i in range(n):
            opened = now - timedelta(days=i % 7, minutes=5 + i)
            first = opened - timedelta(minutes=6 + i % 9)
            x0 = 0.15 + 0.5 * ((i * 37) % 100) / 100
            box = [round(x0, 3), 0.5, round(x0 + 0.12, 3), 0.72]
            clean = base.copy()
            cv2.circle(clean, (8 + i, 8), 3, (0, 0, 0), -1)  # distinct content, distinct file
            annotated = clean.copy()
            p1 = (int(box[0] * wid), int(box[1] * hgt))
            p2 = (int(box[2] * wid), int(box[3] * hgt))
            cv2.rectangle(annotated, p1, p2, (0, 0, 255), 2)
            cv2.putText(annotated, f"09006 #{i + 1}", (p1[0], p1[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1)
            inc = Incident(
                case_key=f"{camera_id}|-|walk|09006|seed{i}", active_key=f"{camera_id}|-|walk|09006|seed{i}",
                camera_id=camera_id, zone="walk", problem_code="09006", state="open", opened_at=opened,
                first_seen_at=first, last_seen_at=opened, recurrences=int(i % 3 == 0),
                score=round(0.5 + (i % 10) / 25, 2), box=box, details={}, review_state="pending",
            )  # fmt: skip
            s.add(inc)
            s.flush()
            s.add(IncidentEvent(incident_id=inc.id, ts=first, kind="opened", details={"score": inc.score}))
            s.add(IncidentEvent(incident_id=inc.id, ts=opened, kind="present", details={}))
            for kind, image in (("clean", clean), ("annotated", annotated)):
                f = store.put_jpeg(kind, image)
                s.add(EvidenceFile(incident_id=inc.id, kind=kind, path=f.path, sha256=f.sha256, bytes=f.bytes,
                                   created_at=opened))  # fmt: skip
            s.add(EvidenceFile(incident_id=inc.id, kind="clip", path=clip.path, sha256=clip.sha256, bytes=clip.bytes,
                               created_at=opened))  # fmt: skip
            ids.append(inc.id)
    engine.dispose()
    return ids


# ---------------------------------------------------------------- the app


@dataclass
class Console:
    url: str
    root: Path
    seeded: list[int]

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.root / "gridsight.db", timeout=10)

    def review_states(self, ids: list[int]) -> dict[int, tuple[str | None, str, str | None]]:
        marks = ",".join("?" * len(ids))
        with self.db() as con:
            rows = con.execute(
                f"select id, review_state, problem_code, review_note from incidents where id in ({marks})", ids
            ).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.fixture(scope="module")
def console(short_street: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    start = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0).isoformat()
    cams = [
        street_camera(
            short_street,
            source={"url": str(short_street), "loop": True, "speed": 1.0, "start_time": start},
            location={"address": "幸福路 12 号", "street": STREET, "community": "幸福社区"},
        ),
        {"id": "dead-1", "name": "北苑路口（无信号）", "problems": ["09006"], "source": {"url": "rtsp://127.0.0.1:9/none"},
         "location": {"address": "北苑路 1 号", "street": DEAD_STREET, "community": "北苑社区"}},
    ]  # fmt: skip
    cfg = write_config(root, cams)
    seeded = seed_pending_incidents(cfg, "street-1", short_street, SEEDED, root)
    add_user(cfg, OPERATOR, "operator", OPERATOR_PW)
    add_user(cfg, VIEWER, "viewer", VIEWER_PW)
    with running_app(cfg, root) as url:
        yield Console(url, root, seeded)


# ---------------------------------------------------------------- the browser


@pytest.fixture
def page(browser, console: Console, request: pytest.FixtureRequest) -> Iterator[object]:
    with open_page(browser, console.url, request.node.name) as pg:
        yield pg


def sign_in(pg, console: Console, user: str = OPERATOR, password: str = OPERATOR_PW) -> None:
    r = pg.request.post(f"{console.url}/api/v1/auth/login", data={"username": user, "password": password})
    assert r.status == 200, r.text()


def current_id(pg, not_id: int | None = None, timeout: float = 10_000) -> int:
    """The incident on screen, once it differs from `not_id`."""
    pg.wait_for_function(
        "prev => { const s = document.querySelector('section.review'); const id = s && s.dataset.incidentId;"
        " return id && Number(id) !== prev; }",
        arg=not_id if not_id is not None else -1,
        timeout=timeout,
    )
    return int(pg.locator(REVIEW).get_attribute("data-incident-id"))


def wait_db(console: Console, expected: dict[int, str], timeout: float = 15) -> dict[int, tuple]:
    deadline = time.monotonic() + timeout
    while True:
        states = console.review_states(list(expected))
        if all(states[i][0] == v for i, v in expected.items()) or time.monotonic() > deadline:
            return states
        time.sleep(0.2)


# ---------------------------------------------------------------- tests


def test_sign_in_by_keyboard_in_chinese_then_english(page, console: Console) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.get_by_label("用户名").focus()
    page.keyboard.type(OPERATOR)
    page.keyboard.press("Tab")
    page.keyboard.type("wrong password")
    page.keyboard.press("Enter")
    expect(page.locator("#login-error")).to_have_text("用户名或密码错误")
    page.get_by_label("密码").focus()
    page.keyboard.type(OPERATOR_PW)
    page.keyboard.press("Enter")
    expect(page.locator("#whoami")).to_contain_text(OPERATOR)
    expect(page.locator("#whoami")).to_contain_text("值班员")
    expect(page).to_have_url(re.compile(r"#/review$"))  # operators land on the review queue
    nav = page.get_by_role("navigation", name="主导航")
    for name in ("审核", "摄像头", "事件", "统计"):
        expect(nav.get_by_role("link", name=name)).to_be_visible()
    expect(page.locator(".keybar")).to_contain_text("确认")
    shot(page, "login-review-zh")

    page.get_by_role("button", name="切换语言").click()
    expect(page.locator(".keybar")).to_contain_text("Confirm")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    shot(page, "review-en")
    page.reload()
    expect(page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Review")).to_be_visible()
    page.get_by_role("button", name="Switch language").click()
    expect(page.get_by_role("navigation", name="主导航")).to_be_visible()

    page.get_by_role("button", name="退出登录").click()
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    assert page.request.get(f"{console.url}/api/v1/auth/me").status == 401


def test_ten_verdicts_by_keyboard_reach_the_database_and_the_audit_log(page, console: Console) -> None:
    sign_in(page, console)
    page.goto("/#/review")
    expected: dict[int, str] = {}
    notes: dict[int, str] = {}
    relabels: dict[int, str] = {}
    prev = None
    plan = ["y", "n-reason", "y", "r", "n", "y", "y", "r", "y", "n"]
    for step in plan:
        iid = current_id(page, prev)
        if step == "y":
            page.keyboard.press("y")
            expected[iid] = "confirmed"
        elif step.startswith("n"):
            page.keyboard.press("n")
            reason = page.locator("#reject-reason")
            expect(reason).to_be_focused()
            if step == "n-reason":
                page.keyboard.type("不是摊点，是停放的三轮车")  # typed Chinese: the IME path is covered by isComposing
                notes[iid] = "不是摊点，是停放的三轮车"
                page.keyboard.press("Enter")
            else:
                page.keyboard.press("Escape")  # Esc cancels: no verdict, the same incident stays
                expect(reason).to_be_hidden()
                expect(page.locator(REVIEW)).to_have_attribute("data-incident-id", str(iid))
                page.keyboard.press("n")
                page.keyboard.press("Enter")  # no reason
            expected[iid] = "rejected"
        else:
            page.keyboard.press("r")
            second = page.locator(".relabel-box button[data-key='2']")
            expect(second).to_be_visible()
            relabels[iid] = second.get_attribute("data-code")
            shot(page, "review-relabel")
            page.keyboard.press("2")
            expected[iid] = "relabelled"
        prev = iid
    # U undoes the last verdict (a reject): the same incident is back on screen; confirm it instead.
    last = prev
    current_id(page, last)
    page.keyboard.press("u")
    expect(page.locator(REVIEW)).to_have_attribute("data-incident-id", str(last))
    expect(page.locator(".last-verdict")).to_contain_text("已撤销")
    page.keyboard.press("y")
    expected[last] = "confirmed"
    current_id(page, last)
    shot(page, "review-after-ten")

    states = wait_db(console, expected)
    assert {i: states[i][0] for i in expected} == expected
    for iid, note in notes.items():
        assert states[iid][2] == note
    for iid, code in relabels.items():
        assert code and states[iid][1] == code != "09006"

    with console.db() as con:
        rows = con.execute("select actor, action, target from audit_log").fetchall()
    for iid, verdict in expected.items():
        mine = [r for r in rows if r[0] == OPERATOR and re.search(rf"\b{iid}\b", str(r[2]))]
        assert mine, f"no audit row for incident {iid}: {rows[-15:]}"
    undo_rows = [r for r in rows if r[0] == OPERATOR and "undo" in r[1] and re.search(rf"\b{last}\b", str(r[2]))]
    assert undo_rows, f"no audit row for the undo of {last}"


def test_clip_plays_one_key_away(page, console: Console) -> None:
    sign_in(page, console)
    page.goto("/#/review")
    current_id(page)
    page.keyboard.press("v")
    video = page.locator(f"{REVIEW} video")
    expect(video).to_be_visible()
    page.wait_for_function(
        "() => { const v = document.querySelector('section.review video');"
        " return v && v.readyState >= 2 && v.currentTime > 0.3; }",
        timeout=15_000,
    )
    shot(page, "review-clip")
    page.keyboard.press("v")
    expect(page.locator(f"{REVIEW} img.evidence-image")).to_be_visible()
    page.keyboard.press("?")
    expect(page.locator(".help-box")).to_contain_text("撤销上一次判定")
    page.keyboard.press("Escape")
    expect(page.locator(".help-box")).to_have_count(0)


def test_camera_wall_shows_a_failed_camera_and_filters_by_street(page, console: Console) -> None:
    sign_in(page, console)
    page.goto("/#/cameras")
    dead = page.locator("li.camera-card[data-camera-id='dead-1']")
    live = page.locator("li.camera-card[data-camera-id='street-1']")
    expect(dead.locator(".badge")).to_have_text(re.compile("故障|中断"), timeout=30_000)  # refreshed every 10 s
    expect(dead).to_have_attribute("data-state", re.compile("failed|stalled"))
    expect(dead).to_contain_text("尚未收到画面")
    expect(live.locator(".badge")).to_have_text("在线", timeout=20_000)
    frame = live.locator("img.camera-frame")
    expect(frame).to_be_visible(timeout=20_000)
    assert frame.evaluate("img => img.naturalWidth") > 0
    expect(live.locator(".age")).to_contain_text("前")  # "最新画面：3 秒前"
    shot(page, "cameras")

    page.get_by_label("街道").select_option(DEAD_STREET)
    expect(page.locator("li.camera-card")).to_have_count(1)
    expect(page).to_have_url(re.compile("street="))


def test_viewer_sees_the_queue_without_verdict_keys(page, console: Console) -> None:
    sign_in(page, console, VIEWER, VIEWER_PW)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"#/cameras$"))
    page.goto("/#/review")
    expect(page.locator(".keybar")).to_contain_text("下一条")
    expect(page.locator(".keybar")).not_to_contain_text("确认")
    if page.locator(REVIEW).get_attribute("data-incident-id") is None:
        current_id(page)
    iid = int(page.locator(REVIEW).get_attribute("data-incident-id"))
    page.keyboard.press("y")
    page.wait_for_timeout(300)
    assert console.review_states([iid])[iid][0] == "pending"
    assert page.request.post(f"{console.url}/api/v1/review/{iid}", data={"verdict": "confirm"}).status == 403


def test_empty_queue_says_so(page, console: Console) -> None:
    sign_in(page, console)
    page.route("**/api/v1/review/next*", lambda route: route.fulfill(json=[]))
    page.goto("/#/review")
    expect(page.get_by_role("heading", name="审核队列已清空")).to_be_visible()
    expect(page.locator(".review-card")).to_be_hidden()
    page.keyboard.press("y")  # nothing to judge: no request, no error
    shot(page, "review-empty")


def test_incident_list_detail_case_and_stats(page, console: Console) -> None:
    sign_in(page, console)
    iid = console.seeded[-1]
    if console.review_states([iid])[iid][0] == "pending":
        assert page.request.post(f"{console.url}/api/v1/review/{iid}", data={"verdict": "confirm"}).ok
    page.goto("/#/incidents")
    expect(page.locator("table.incident-table tbody tr").first).to_be_visible()
    page.get_by_label("街道").select_option(STREET)
    expect(page).to_have_url(re.compile("street="))
    expect(page.locator(".pager")).to_contain_text("共")
    page.goto(f"/#/incidents/{iid}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"事件 #{iid}")
    expect(page.locator(".timeline li")).to_have_count(2)
    expect(page.locator(".gallery img").first).to_be_visible()
    expect(page.locator(".gallery video")).to_have_count(1)
    shot(page, "incident-detail")
    # a filing that died: operators see the error and send it again
    case_id = int(page.locator(".case-list a").first.get_attribute("href").rsplit("/", 1)[1])
    with console.db() as con:
        con.execute(
            "update outbox set state = 'dead', last_error = 'HTTP 503 from the platform' where case_id = ?", (case_id,)
        )
    page.locator(".case-list a").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"案件 #{case_id}")
    expect(page.get_by_role("heading", name="状态历史")).to_be_visible()
    expect(page.locator("tr.row-dead")).to_contain_text("HTTP 503 from the platform")
    shot(page, "case-dead-letter")
    page.get_by_role("button", name="重新发送").click()
    expect(page.locator(".toast")).to_contain_text("已重新排队")
    with console.db() as con:
        dead = con.execute("select count(*) from outbox where case_id = ? and state = 'dead'", (case_id,)).fetchone()
    assert dead == (0,)
    page.goto("/#/stats")
    expect(page.locator("svg.chart-svg")).to_have_count(3)
    expect(page.locator("table.ranking thead")).to_contain_text("排名街道处置率")
    shot(page, "stats")


def test_keypress_to_next_item_over_100_verdicts(page, console: Console) -> None:
    sign_in(page, console)
    page.goto("/#/review")
    prev = current_id(page)
    page.wait_for_timeout(500)  # let the first preloads settle, as they would while an operator looks
    page.evaluate("window.__reviewTimings = []")
    decided: dict[int, str] = {}
    for i in range(100):
        if i % 4 == 3:
            page.keyboard.press("n")
            page.keyboard.press("Enter")
            decided[prev] = "rejected"
        else:
            page.keyboard.press("y")
            decided[prev] = "confirmed"
        # like an operator, look at the next item (painted) before judging it
        page.wait_for_function("n => window.__reviewTimings.length >= n", arg=i + 1, timeout=10_000)
        prev = current_id(page, prev)
    page.wait_for_function("() => window.__reviewSaveTimings.length >= 100", timeout=30_000)
    timings = page.evaluate("window.__reviewTimings")
    saves = page.evaluate("window.__reviewSaveTimings")
    median, p90 = statistics.median(timings), statistics.quantiles(timings, n=10)[-1]
    save_median = statistics.median(saves)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "review-timings.json").write_text(
        json.dumps({"n": len(timings), "median_ms": median, "p90_ms": p90, "max_ms": max(timings),
                    "save_median_ms": save_median, "ms": timings, "save_ms": saves})
    )  # fmt: skip
    print(f"\nkeypress → next item painted over {len(timings)} verdicts: median {median:.1f} ms, "
          f"p90 {p90:.1f} ms, max {max(timings):.1f} ms; verdict saved (server answered): "
          f"median {save_median:.1f} ms")  # fmt: skip
    states = wait_db(console, decided, timeout=30)
    assert {i: states[i][0] for i in decided} == decided
    assert len(timings) == 100
    assert median < 250, f"median keypress → next item {median:.0f} ms"
    assert p90 < 1000, f"p90 keypress → next item {p90:.0f} ms"
