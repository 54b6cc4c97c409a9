"""A camera's error, as FFmpeg words it, names the source URL: viewers get it without, admins whole."""

from __future__ import annotations

from datetime import UTC, datetime

import av
import pytest
from fastapi.testclient import TestClient

from detector.config import Camera
from detector.ingest.health import CameraHealth, CameraState
from detector.store.db import CameraHealthEvent

URL = "rtsp://127.0.0.1:9/cam1?user=admin&pwd=s3cret"  # snapshot-style credentials in the query
RECORD = "rtsp://127.0.0.1:9/main"


def ffmpeg_error(url: str) -> str:
    """What the reader stores when the camera refuses the connection (port 9: nothing listens)."""
    try:
        av.open(url, timeout=3)
    except (av.FFmpegError, OSError) as e:
        return str(e)
    raise AssertionError("port 9 answered")


@pytest.fixture
def failing(api):
    cam = Camera.model_validate(
        {"id": "c9", "name": "北门", "source": {"url": URL}, "record": {"url": RECORD}, "problems": ["09006"]}
    )
    ctx = api.app.state.ctx
    ctx.cameras = {**ctx.cameras, "c9": cam}
    error = ffmpeg_error(URL)
    assert "s3cret" in error  # the premise: FFmpeg repeats the URL
    health = CameraHealth("c9")
    health.set_state(CameraState.FAILED, error)
    ctx.health = lambda cid: health.snapshot() if cid == "c9" else None
    with api.sessions.begin() as s:
        s.add(CameraHealthEvent(camera_id="c9", ts=datetime.now(UTC), state="failed", error=error))
        s.add(CameraHealthEvent(camera_id="c9", ts=datetime.now(UTC), state="failed", error=f"{RECORD}: 404 Not Found"))
    return api


def errors_seen(api, role: str) -> list[str]:
    c = TestClient(api.app, headers=api.headers(role))
    listed = [cam["last_error"] for cam in c.get("/api/v1/cameras").json() if cam["id"] == "c9"]
    one = c.get("/api/v1/cameras/c9").json()["last_error"]
    history = [e["error"] for e in c.get("/api/v1/cameras/c9/health").json()]
    return [*listed, one, *history]


@pytest.mark.parametrize("role", ["viewer", "operator", "trainer"])
def test_viewers_see_the_error_without_the_source(failing, role: str) -> None:
    seen = errors_seen(failing, role)
    assert len(seen) == 4
    for text in seen:
        assert "rtsp://" not in text and "s3cret" not in text and "127.0.0.1" not in text
        assert "<source>" in text
    assert "Connection refused" in seen[0] and "404 Not Found" in seen[2]  # the reason is kept


def test_admins_see_the_source_to_mend_the_camera(failing) -> None:
    seen = errors_seen(failing, "admin")
    assert URL in seen[0] and URL in seen[1] and seen[2] == f"{RECORD}: 404 Not Found"
