"""What a PTZ camera shows: one video per preset, a pan between them while it moves.

`PresetGateway` builds on the media gateway: its one live channel is drawn frame by frame from
a `picture()` callable (the ONVIF simulator's view at this moment), served as an endless
HTTP-FLV stream (encoded live, so the picture switches mid-stream as the camera turns) and as
a snapshot URL. `view_video` writes a small distinct video for a preset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from tests.support.media_gateway import MediaGateway

Image = NDArray[np.uint8]
SIZE = (320, 180)  # width, height of every view
FPS = 5
GOP_CACHE_S = 10.0


def view_video(path: Path, seed: int, seconds: float = 10.0) -> Path:
    """A preset's view: a texture of its own (neighbouring presets look nothing alike) with a
    small square drifting across it, so the view is live but its frames differ only a little.

    The square crosses once per loop and never comes back within it: with a short loop (it was
    2 s) it was back at the same places at every analysis of a 1 s cadence (the loop an exact
    multiple of the cadence), so the occupancy analyzer's short-term median held it, a
    stationary object, and 核实 answered a pile at an empty preset."""
    w, h = SIZE
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (h // 6, w // 6, 3), dtype=np.uint8), SIZE, interpolation=cv2.INTER_NEAREST)
    cv2.putText(base, f"P{seed}", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 3)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "g": str(FPS)})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * FPS)):
            img = base.copy()
            x = 100 + 4 * i
            cv2.rectangle(img, (x, 120), (x + 12, 132), (0, 255, 255), -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def decode(path: Path) -> list[Image]:
    """Every frame of a view video, at SIZE."""
    with av.open(str(path)) as src:
        return [cv2.resize(f.to_ndarray(format="bgr24"), SIZE) for f in src.decode(video=0)]


def pan(src: Image, dst: Image, progress: float) -> Image:
    """The picture part-way through a turn from `src` to `dst` (0..1): the one slides out as the other slides in."""
    w = src.shape[1]
    x = int(round(min(max(progress, 0.0), 1.0) * w))
    return np.ascontiguousarray(np.hstack([src, dst])[:, x : x + w])


def shifted(img: Image, fraction: float) -> Image:
    """A view turned away by `fraction` of its width (an operator's manual move off a preset)."""
    return np.roll(img, int(round(fraction * img.shape[1])), axis=1)


class PresetGateway(MediaGateway):
    """A media gateway whose channel `channel` is whatever `picture()` returns at the moment."""

    def __init__(self, channel: str, picture: Callable[[], Image], work: Path) -> None:
        super().__init__({}, work)
        self.live_channel = channel
        self.picture = picture

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        if parts.path == f"/live/{self.live_channel}.live.flv":
            return self._live_flv(h)
        if parts.path == "/index/api/getSnap" and parse_qs(parts.query).get("stream") == [self.live_channel]:
            return self._send(h, 200, cv2.imencode(".jpg", self.picture())[1].tobytes(), "image/jpeg")
        return super()._serve(h)

    def _live_flv(self, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "video/x-flv")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        w, ht = SIZE
        try:
            # every packet sent as it is made: small live frames would otherwise wait in a 32 KB buffer
            with av.open(h.wfile, "w", format="flv", container_options={"flush_packets": "1"}) as out:
                # a keyframe a second: a reader joining mid-stream sees the picture within a second
                opts = {"preset": "ultrafast", "tune": "zerolatency", "g": str(FPS)}
                stream = out.add_stream("libx264", rate=FPS, options=opts)
                stream.width, stream.height, stream.pix_fmt = w, ht, "yuv420p"
                # the first GOP_CACHE_S go out at once, as gateways send their GOP cache: FFmpeg's probe
                # (5 s of stream) is then done at connect, not seconds later
                started, i = time.monotonic() - GOP_CACHE_S, 0
                while not self._closing.is_set():
                    frame = av.VideoFrame.from_ndarray(self.picture(), format="bgr24")
                    frame.pts = i
                    for packet in stream.encode(frame):
                        out.mux(packet)
                    i += 1
                    if (lag := started + i / FPS - time.monotonic()) > 0:
                        time.sleep(lag)
        except (BrokenPipeError, ConnectionResetError, ValueError, av.FFmpegError):
            pass  # the reader went away, or stop() closed the socket
