"""The admins' users page, and /docs with no internet, in a real browser against a real `gridsight run`.

Same set-up as tests/browser/test_console.py: Debian's Chromium driven by Playwright, the app
as a subprocess on a generated street video, users and a token made with the real CLI.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser.harness import add_user, gridsight_cmd, open_page, running_app
from tests.conftest import street_camera, write_config

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (requirements-dev.txt)")
expect = sync_api.expect

ADMIN, ADMIN_PW = "chen.admin", "Grid-adm1n-pw"
OPERATOR, OPERATOR_PW = "zhao.lei", "Grid-0perator-pw"
VIEWER, VIEWER_PW = "li.na", "Grid-v1ewer-pw"


@dataclass
class Site:
    url: str
    root: Path
    token: str

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.root / "gridsight.db", timeout=10)


@pytest.fixture(scope="module")
def site(short_street: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("users-page")
    cfg = write_config(
        root, [street_camera(short_street, source={"url": str(short_street), "loop": True, "speed": 1.0})]
    )
    add_user(cfg, ADMIN, "admin", ADMIN_PW)
    add_user(cfg, OPERATOR, "operator", OPERATOR_PW)
    add_user(cfg, VIEWER, "viewer", VIEWER_PW)
    made = subprocess.run(
        [*gridsight_cmd(), "token", "create", "platform-bot", "--role", "viewer", "--config", str(cfg)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    with running_app(cfg, root) as url:
        yield Site(url, root, made.stdout.strip())


@pytest.fixture
def page(browser, site: Site, request: pytest.FixtureRequest) -> Iterator[object]:
    outside: list[str] = []  # /docs must work with no internet: nothing is fetched from elsewhere

    def offsite(r) -> None:
        if not r.url.startswith((site.url, "data:")):
            outside.append(r.url)

    with open_page(browser, site.url, request.node.name, on_request=offsite) as pg:
        yield pg
    assert not outside, f"requests off this server: {outside}"


def sign_in(pg, site: Site, user: str, password: str) -> None:
    r = pg.request.post(f"{site.url}/api/v1/auth/login", data={"username": user, "password": password})
    assert r.status == 200, r.text()


def can_log_in(pg, site: Site, user: str, password: str) -> bool:
    ctx = pg.context.browser.new_context()
    try:
        r = ctx.request.post(f"{site.url}/api/v1/auth/login", data={"username": user, "password": password})
        return r.status == 200
    finally:
        ctx.close()


def test_an_admin_adds_disables_resets_and_revokes(page, site: Site) -> None:
    pg = page
    sign_in(pg, site, ADMIN, ADMIN_PW)
    pg.goto("/#/cameras")
    pg.get_by_role("link", name="用户").click()
    expect(pg.get_by_role("heading", name="用户与令牌")).to_be_visible()
    operator_row = pg.locator(f'tr[data-user="{OPERATOR}"]')
    expect(operator_row).to_contain_text("值班员")
    expect(operator_row).to_contain_text("启用")

    # add: the generated password is shown once and works
    pg.get_by_label("用户名", exact=True).fill("new.clerk")
    pg.get_by_label("角色", exact=True).select_option("viewer")
    pg.get_by_role("button", name="添加", exact=True).click()
    notice = pg.locator("#users-secret")
    expect(notice).to_contain_text("new.clerk 的密码：")
    password = re.search(r"密码：(\S+)（", notice.inner_text())[1]
    assert can_log_in(pg, site, "new.clerk", password)
    expect(pg.locator('tr[data-user="new.clerk"]')).to_contain_text("查看员")

    # disable: the state changes on the page, the login stops working, the audit log says who
    operator_row.get_by_role("button", name="停用").click()
    expect(operator_row).to_contain_text("已停用")
    assert not can_log_in(pg, site, OPERATOR, OPERATOR_PW)
    operator_row.get_by_role("button", name="启用").click()
    expect(operator_row.get_by_role("button", name="停用")).to_be_visible()

    # reset: a new password, the old one is refused
    operator_row.get_by_role("button", name="重置密码").click()
    expect(notice).to_contain_text(f"{OPERATOR} 的密码：")
    new_pw = re.search(r"密码：(\S+)（", notice.inner_text())[1]
    assert can_log_in(pg, site, OPERATOR, new_pw) and not can_log_in(pg, site, OPERATOR, OPERATOR_PW)

    # tokens: listed without the secret; revoked, it stops working
    bot = pg.locator('tr[data-token="platform-bot"]')
    expect(bot).to_contain_text("查看员")
    assert site.token not in pg.content()
    headers = {"Authorization": f"Bearer {site.token}"}
    assert pg.request.get(f"{site.url}/api/v1/cameras", headers=headers).status == 200
    bot.get_by_role("button", name="吊销").click()
    expect(bot).to_contain_text("已吊销")
    assert pg.request.get(f"{site.url}/api/v1/cameras", headers=headers).status == 401

    with site.db() as con:
        rows = con.execute(
            "select actor, action, target from audit_log where actor = ? order by id", (ADMIN,)
        ).fetchall()
    assert [r[1:] for r in rows if r[1] != "login"] == [
        ("user.add", "user:new.clerk"),
        ("user.disable", f"user:{OPERATOR}"),
        ("user.enable", f"user:{OPERATOR}"),
        ("user.reset_password", f"user:{OPERATOR}"),
        ("token.revoke", "token:platform-bot"),
    ]


def test_only_admins_have_the_users_page(page, site: Site) -> None:
    pg = page
    sign_in(pg, site, ADMIN, ADMIN_PW)
    pg.goto("/#/cameras")
    expect(pg.get_by_role("link", name="用户")).to_be_visible()
    pg.context.clear_cookies()
    sign_in(pg, site, VIEWER, VIEWER_PW)
    pg.reload()
    expect(pg.get_by_role("link", name="摄像头")).to_be_visible()
    expect(pg.get_by_role("link", name="用户")).to_be_hidden()
    pg.goto("/#/users")
    expect(pg.get_by_role("heading", name="无权限执行此操作")).to_be_visible()
    assert pg.request.get(f"{site.url}/api/v1/users").status == 403


def test_docs_work_from_this_server_alone(page, site: Site) -> None:
    pg = page
    pg.goto("/docs")
    expect(pg.locator(".swagger-ui .info .title")).to_contain_text("GridSight")
    expect(pg.locator(".opblock-tag-section").first).to_be_visible()
