"""/docs works with no internet: the page names only this server's files, and they are served."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_page_uses_only_local_assets_and_they_are_served(shared_api) -> None:
    c = TestClient(shared_api.app)
    page = c.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(refs) == 4 and all(r.startswith("/") and not r.startswith("//") for r in refs), refs
    assert "<script>" not in page.text  # no inline script: the CSP (script-src 'self') would refuse it
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    served = {ref.rsplit("/", 1)[1]: c.get(ref) for ref in refs}
    assert all(r.status_code == 200 for r in served.values()), {k: r.status_code for k, r in served.items()}
    assert "text/css" in served["swagger-ui.css"].headers["content-type"]
    assert (
        "SwaggerUIBundle" in served["swagger-ui-bundle.js"].text and len(served["swagger-ui-bundle.js"].content) > 10**6
    )
    assert "/openapi.json" in served["init.js"].text
    assert c.get("/openapi.json").json()["info"]["title"] == "GridSight"
    assert c.get("/redoc").status_code == 404  # it would load from a CDN
