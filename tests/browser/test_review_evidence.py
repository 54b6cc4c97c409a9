"""The review screen of a real `gridsight run`: the first sighting beside the opened picture, the
zone by its Chinese name, and which analyzer and label produced the detection.

Same set-up as tests/browser/test_console.py: Debian's Chromium driven by Playwright, the app as a
subprocess on the generated street video, the incident opened by the real pipeline (review mode).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.browser.harness import add_user, open_page, running_app, shot
from tests.conftest import street_camera, write_config

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (requirements-dev.txt)")
expect = sync_api.expect

OPERATOR, OPERATOR_PW = "wang.fang", "Grid-0perator-pw"


@pytest.fixture(scope="module")
def site(short_street: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict]]:
    """The app's URL and the pending incident the pipeline opened, as the API answers it."""
    root = tmp_path_factory.mktemp("review-evidence")
    cam = street_camera(short_street, filing={"09006": {"mode": "review"}})
    cam["zones"][0]["display_name"] = "东门口"
    cfg = write_config(root, [cam])
    add_user(cfg, OPERATOR, "operator", OPERATOR_PW)
    with running_app(cfg, root) as url:
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.post("/api/v1/auth/login", json={"username": OPERATOR, "password": OPERATOR_PW}).is_success
            pending: list[dict] = []
            deadline = time.monotonic() + 60
            while not pending and time.monotonic() < deadline:
                pending = http.get("/api/v1/review/next").json()
                time.sleep(0.5)
        assert pending, f"no incident to review within 60 s; log: {(root / 'log.txt').read_text()[-2000:]}"
        yield url, pending[0]


@pytest.fixture
def page(browser, site: tuple[str, dict], request: pytest.FixtureRequest) -> Iterator[object]:
    with open_page(browser, site[0], request.node.name) as pg:
        yield pg


def test_review_shows_the_first_sighting_beside_the_opened_picture_and_the_detection_source(
    page, site: tuple[str, dict]
) -> None:
    url, inc = site
    assert inc["analyzer"] and inc["label"], inc  # the pipeline recorded what saw it
    r = page.request.post(f"{url}/api/v1/auth/login", data={"username": OPERATOR, "password": OPERATOR_PW})
    assert r.status == 200
    page.goto("/#/review")
    stage = page.locator("section.review .stage")
    before, opened = stage.locator("figure.ev-first-seen"), stage.locator("figure.ev-opened")
    for fig in (before, opened):
        expect(fig.locator("img.evidence-image")).to_be_visible()
        fig.locator("img").evaluate("img => img.decode()")
        assert fig.locator("img").evaluate("img => img.naturalWidth") > 0
    first = before.bounding_box()
    second = opened.bounding_box()
    assert first["x"] + first["width"] <= second["x"] + 1  # side by side, the first sighting on the left
    expect(before.locator("figcaption")).to_contain_text("首次发现 " + fmt(inc["first_seen_at"]))
    expect(opened.locator("figcaption")).to_contain_text("确认 " + fmt(inc["opened_at"]))
    facts = page.locator("section.review .facts-box")
    expect(facts.locator("dt", has_text="区域").locator("xpath=following-sibling::dd[1]")).to_have_text("东门口")
    source = facts.locator("dt", has_text="检测来源").locator("xpath=following-sibling::dd[1]")
    expect(source).to_contain_text(f"{inc['analyzer']}:{inc['label']}")
    shot(page, "review-first-seen")


def fmt(iso: str) -> str:
    """An API time as the console writes it: Beijing time, to the second."""
    return datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
