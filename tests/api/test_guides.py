"""The guides in docs/ as console pages: rendered, linked to each other, anchors that exist."""

from __future__ import annotations

import re
from urllib.parse import unquote

from fastapi.testclient import TestClient

from api.guides import GUIDES


def test_each_guide_renders_with_its_tables_and_the_links_between_guides_land(shared_api) -> None:
    client = TestClient(shared_api.app)
    pages = {}
    for page in GUIDES:
        r = client.get(f"/help/{page}")  # no login: the guides hold no data
        assert r.status_code == 200, page
        pages[page] = r.text
    assert "<h1 id=" in pages["operators"] and "值班员手册" in pages["operators"]
    assert "<table>" in pages["operators"] and "<kbd>" not in pages["operators"]
    links = {(p, m) for text in pages.values() for p, m in re.findall(r'href="/help/([\w-]+)#([^"]+)"', text)}
    assert ("platform-api", "the-case-lifecycle") in links
    for page, anchor in links:  # browsers match the fragment percent-decoded too
        assert f'id="{unquote(anchor)}"' in pages[page], f"/help/{page}#{unquote(anchor)}: no such heading"
    assert not re.search(r'href="[\w-]+\.md', "".join(pages.values())), "a guide links to a .md file"


def test_an_unknown_guide_is_a_404_naming_the_guides(shared_api) -> None:
    r = TestClient(shared_api.app).get("/help/nope")
    assert r.status_code == 404 and "operators" in r.json()["detail"]


def test_the_console_links_to_the_guides(shared_api) -> None:
    client = TestClient(shared_api.app)
    assert 'href="/help' in client.get("/").text
    assert "/help/operators" in client.get("/static/review.js").text
