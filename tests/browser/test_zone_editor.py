"""The zone editor in a real browser against a real `gridsight run`: an admin draws a zone on the
camera's picture, saves, and the running pipeline uses it without a restart.

The street camera starts with no zone, so its stall (present from 20 s to 100 s of each loop of
the video) opens nothing. Once the admin draws a no-vending zone around the sidewalk, the same
stall opens a 占道经营 incident in that zone: the rule that needs a no_vending zone handles it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from detector.synthetic.demo import DEMO_NO_VENDING_ZONE
from tests.browser.harness import ARTIFACTS, add_user, open_page, running_app
from tests.conftest import street_camera, write_config

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (requirements-dev.txt)")
expect = sync_api.expect

ADMIN, ADMIN_PW = "wang.fang", "Grid-4dmin-pw!"


@pytest.fixture(scope="module")
def running(short_street: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("zones")
    start = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0).isoformat()
    cam = street_camera(
        short_street, source={"url": str(short_street), "loop": True, "speed": 2.0, "start_time": start}, zones=[]
    )
    cfg = write_config(root, [cam])
    add_user(cfg, ADMIN, "admin", ADMIN_PW)
    with running_app(cfg, root) as url:
        yield url, cfg


@pytest.fixture
def page(browser, running: tuple[str, Path], request: pytest.FixtureRequest) -> Iterator[object]:
    with open_page(browser, running[0], request.node.name, height=1000) as pg:
        yield pg


def test_admin_draws_a_zone_and_the_running_pipeline_uses_it(page, running: tuple[str, Path]) -> None:
    base, cfg = running
    r = page.request.post(f"{base}/api/v1/auth/login", data={"username": ADMIN, "password": ADMIN_PW})
    assert r.status == 200, r.text()
    page.goto("/#/cameras")
    card = page.locator('li.camera-card[data-camera-id="street-1"]')
    card.get_by_role("link", name="编辑区域").click()
    expect(page).to_have_url(re.compile(r"#/cameras/street-1/zones$"))
    editor = page.locator("section.zone-editor")
    expect(editor).to_have_attribute("data-ready", "true", timeout=30_000)  # the full-resolution picture is in
    expect(editor.get_by_role("heading", level=1)).to_contain_text("区域编辑")

    box = page.locator("svg.zone-overlay").bounding_box()
    for x, y in DEMO_NO_VENDING_ZONE:  # the sidewalk where the stall will stand
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
    page.get_by_role("button", name="完成多边形").click()
    name = page.get_by_label("编号（英文字母、数字、- _）")
    expect(name).to_be_focused()

    name.fill("东门 walk")  # not an id: refused, naming the field, nothing written
    page.get_by_role("button", name="保存并生效").click()
    expect(page.locator(".zone-errors")).to_contain_text("zones.0.name")
    assert "zones:" not in (cfg / "cameras.yaml").read_text(encoding="utf-8").replace("zones: []", "")

    name.fill("stall-walk")
    page.get_by_label("显示名称").fill("东门口人行道")
    page.get_by_label("用途").select_option(label="禁止摆摊区")
    page.get_by_role("button", name="保存并生效").click()
    expect(page.locator(".toasts")).to_contain_text("区域已保存并生效")
    expect(page.locator(".zone-errors")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "zone-editor-saved.png"))

    on_disk = yaml.safe_load((cfg / "cameras.yaml").read_text(encoding="utf-8"))["cameras"][0]["zones"]
    assert [(z["name"], z["display_name"], z["purpose"]) for z in on_disk] == [
        ("stall-walk", "东门口人行道", "no_vending")
    ]
    for (x, y), (zx, zy) in zip(DEMO_NO_VENDING_ZONE, on_disk[0]["polygon"], strict=True):
        assert abs(x - zx) < 0.01 and abs(y - zy) < 0.01
    cam = page.request.get(f"{base}/api/v1/cameras/street-1").json()
    assert [(z["name"], z["display_name"]) for z in cam["zones"]] == [("stall-walk", "东门口人行道")]

    page.goto("/#/cameras")  # the wall shows the zone with its name
    expect(card.locator("svg.camera-zones text")).to_have_text("东门口人行道", timeout=20_000)

    deadline = time.monotonic() + 150
    items: list[dict] = []
    while time.monotonic() < deadline and not items:
        items = [i for i in page.request.get(f"{base}/api/v1/incidents").json()["items"] if i["zone"] == "stall-walk"]
        time.sleep(1)
    assert items, "no incident in the drawn zone within 150 s"
    assert items[0]["problem_code"] == "09006" and items[0]["camera_id"] == "street-1"
