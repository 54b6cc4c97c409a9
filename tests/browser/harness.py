"""What every browser test needs: the real app as a subprocess, users made with the real CLI, and
a page of Debian's Chromium that fails the test on an uncaught script error or a CSP violation."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CSP_WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def gridsight_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("gridsight")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "detector.cli"]


def add_user(cfg: Path, name: str, role: str, password: str) -> None:
    r = subprocess.run(
        [*gridsight_cmd(), "user", "add", name, "--role", role, "--password-stdin", "--config", str(cfg)],
        input=password + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, f"gridsight user add failed: {r.stdout}{r.stderr}"


@contextmanager
def running_app(cfg: Path, root: Path) -> Iterator[str]:
    """`gridsight run` on `cfg` (log in root/log.txt); yields its URL, stops it with SIGTERM."""
    log = (root / "log.txt").open("a")
    proc = subprocess.Popen(
        [*gridsight_cmd(), "run", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=log, text=True
    )
    try:
        lines: list[str] = []
        while not (m := re.search(r"(http://127\.0\.0\.1:\d+)", lines[-1] if lines else "")) and len(lines) < 5:
            lines.append(proc.stdout.readline())
        assert m, f"no API line in {lines!r}; log: {(root / 'log.txt').read_text()[-2000:]}"
        yield m.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@contextmanager
def open_page(
    browser, url: str, name: str, *, height: int = 900, on_request: Callable[[object], None] | None = None
) -> Iterator[object]:
    """A fresh context and page on `url`; at the end a screenshot (ARTIFACTS/<name>-end.png) and
    the checks that no script error and no Content-Security-Policy violation happened."""
    ctx = browser.new_context(base_url=url, viewport={"width": 1440, "height": height}, locale="zh-CN")
    pg = ctx.new_page()
    pg.add_init_script(CSP_WATCH)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    if on_request is not None:
        pg.on("request", on_request)
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{name}-end.png"), full_page=True)
        csp = pg.evaluate("window.__csp || []")
    finally:
        ctx.close()
    assert not errors, f"uncaught errors in the page: {errors}"
    assert not csp, f"Content-Security-Policy violations: {csp}"


def shot(pg, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"))
