"""Snapshot cameras: a still-image URL polled at the cadence, from a real HTTP server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from detector.ingest.health import CameraHealth, CameraState
from detector.ingest.sources import ReaderOptions, SnapshotReader
from detector.types import Frame

JPEG = cv2.imencode(".jpg", np.full((120, 160, 3), 128, np.uint8))[1].tobytes()


class Camera(BaseHTTPRequestHandler):
    mode = "ok"  # ok | error | garbage

    def do_GET(self) -> None:
        if self.mode == "error":
            self.send_error(500, "camera busy")
            return
        body = JPEG if self.mode == "ok" else b"<html>login</html>"
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()
    Camera.mode = "ok"


def test_snapshot_camera_polls_reports_errors_and_recovers(server: ThreadingHTTPServer) -> None:
    frames: list[Frame] = []
    url = f"http://127.0.0.1:{server.server_address[1]}/snap.jpg"
    opts = ReaderOptions(cadence_s=0.2, open_timeout_s=1, read_timeout_s=1, backoff_min_s=0.1, backoff_max_s=0.2)
    r = SnapshotReader("snap", url, frames.append, CameraHealth("snap"), opts)
    r.start()
    try:
        time.sleep(1.0)
        assert r.health.state is CameraState.LIVE and len(frames) >= 3
        assert frames[0].image.shape == (120, 160, 3)
        Camera.mode = "garbage"
        time.sleep(0.8)
        assert r.health.state is CameraState.FAILED and "decodable image" in (r.health.last_error or "")
        Camera.mode = "error"
        time.sleep(0.8)
        assert "HTTP 500" in (r.health.last_error or "")
        Camera.mode = "ok"
        n = len(frames)
        time.sleep(1.0)
        assert r.health.state is CameraState.LIVE and len(frames) > n
    finally:
        r.stop()
        r.join(5)
