"""The guides in docs/ as web pages that the console links to (no login: they hold no data)."""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: page → title, in the order the index lists them: the three users first
GUIDES = {
    "operators": "值班员手册 · Operators",
    "cameras": "摄像头配置 · Setting up cameras",
    "trainers": "模型训练 · Trainers",
    "platform-api": "平台接口 · Platform API",
    "mqtt": "事件推送 · MQTT events",
    "architecture": "架构 · Architecture",
}
router = APIRouter(include_in_schema=False)


def slug(text: str) -> str:
    """GitHub's heading anchors: lower case, punctuation dropped (CJK kept), spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _link(href: str) -> str:
    """`cameras.md#zones` in a guide becomes the page `/help/cameras#zones`."""
    page, sep, anchor = href.partition("#")
    stem = Path(page).stem
    if not page.endswith(".md") or "/" in page or stem not in GUIDES:
        return href
    return f"/help/{stem}{sep}{anchor}"


@cache
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark").enable("table")

    def anchors_and_links(state) -> None:
        for i, tok in enumerate(state.tokens):
            if tok.type == "heading_open":
                tok.attrSet("id", slug(state.tokens[i + 1].content))
            for child in tok.children or ():
                if child.type == "link_open":
                    child.attrSet("href", _link(str(child.attrGet("href") or "")))

    md.core.ruler.push("gridsight_anchors", anchors_and_links)
    return md


def _page(title: str, body: str) -> HTMLResponse:
    nav = "".join(f'<li><a href="/help/{p}">{html.escape(t)}</a></li>' for p, t in GUIDES.items())
    return HTMLResponse(
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        f'<link rel="stylesheet" href="/static/app.css"></head><body class="guide-page">'
        f'<nav class="guide-nav" aria-label="帮助"><a href="/">← GridSight</a><ul>{nav}</ul></nav>'
        f'<main class="guide">{body}</main></body></html>'
    )


@router.get("/help")
def help_index() -> HTMLResponse:
    items = "".join(f'<li><a href="/help/{p}">{html.escape(t)}</a></li>' for p, t in GUIDES.items())
    return _page("GridSight 帮助 · Help", f"<h1>GridSight 帮助 · Help</h1><ul>{items}</ul>")


@router.get("/help/{page}")
def help_page(page: str) -> HTMLResponse:
    path = DOCS / f"{page}.md"
    if page not in GUIDES or not path.is_file():
        raise HTTPException(404, f"no guide {page!r}; the guides are: {', '.join(GUIDES)}")
    return _page(GUIDES[page], _markdown().render(path.read_text(encoding="utf-8")))
