"""Camera error texts as a caller may see them: admins get them whole, everyone else without the source.

A source URL can hold credentials (in its user info, or in the query of a snapshot URL) and a
file path shows the server's layout, so a viewer's copy names only "the source". Admins wrote
the URLs themselves and need them to mend a camera.
"""

from __future__ import annotations

import re

from api.accounts import Principal
from detector.config import Camera
from detector.ingest.sources import redact

SOURCE = "<source>"
_URL = re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s'\"<>]+", re.IGNORECASE)


def camera_error(who: Principal, cam: Camera, error: str | None) -> str | None:
    if error is None or who.can("admin"):
        return error
    for src in (cam.source, cam.record):
        if src is None:
            continue
        # longest first, so a URL is not left half-replaced by its own path
        for text in sorted({src.url, redact(src.url), src.url.removeprefix("file://")}, key=len, reverse=True):
            error = error.replace(text, SOURCE)
    return _URL.sub(SOURCE, error)
