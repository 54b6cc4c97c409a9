"""The RTSP test server really streams, stops, restarts and loops (read with PyAV)."""

from __future__ import annotations

import itertools
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from .rtsp import RtspServer, rtsp_available

av = pytest.importorskip("av")

pytestmark = pytest.mark.rtsp

# The repo's sibling ``shared`` folder holds the datasets (not in git).
VIDEOS = Path(__file__).resolve().parents[3] / "shared/datasets/videos"
CAR = VIDEOS / "car-detection.mp4"


@pytest.fixture(autouse=True, scope="module")
def _need_rtsp_server():
    reason = rtsp_available()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def car_video() -> Path:
    if not CAR.is_file():
        pytest.skip(f"test video missing: {CAR} (expected in the repo's sibling shared/datasets/videos)")
    return CAR


def open_rtsp(url: str, transport: str = "tcp"):
    return av.open(url, options={"rtsp_transport": transport}, timeout=(5, 5))


def read_packets(container, seconds: float) -> list[tuple[float | None, bool]]:
    """Demux until `seconds` of stream time have passed; (pts in s | None, keyframe) per packet.

    FFmpeg's RTP depacketizer leaves the very first packet without a pts, so
    pts can be None.
    """
    stream = container.streams.video[0]
    tb: Fraction = stream.time_base
    out: list[tuple[float | None, bool]] = []
    first = None
    for pkt in container.demux(stream):
        if pkt.size == 0:  # flush packet at end of stream
            continue
        pts = None if pkt.pts is None else float(pkt.pts * tb)
        out.append((pts, pkt.is_keyframe))
        if pts is not None:
            first = pts if first is None else first
            if pts - first >= seconds:
                break
    return out


def assert_live_h264(packets, min_seconds: float) -> None:
    assert any(key for _, key in packets), "no keyframe received"
    pts = [p for p, _ in packets if p is not None]
    assert pts and pts[-1] - pts[0] >= min_seconds, f"stream ended early: {len(pts)} packets"
    # The test clips have no B-frames, so pts must strictly increase.
    bad = [(a, b) for a, b in itertools.pairwise(pts) if b <= a]
    assert not bad, f"pts not increasing: {bad[:5]}"


def read_until_failure(container, within: float) -> float:
    """Keep demuxing; return seconds until the read raised or hit EOF."""
    t0 = time.monotonic()
    try:
        for pkt in container.demux(container.streams.video[0]):
            if pkt.size == 0:
                break
            if time.monotonic() - t0 > within:
                pytest.fail(f"client still receiving packets {within}s after the server stopped")
    except (av.error.FFmpegError, OSError):
        pass
    return time.monotonic() - t0


def make_clip(path: Path, seconds: int = 3, fps: int = 10, size=(160, 120), gop: int = 10) -> Path:
    """A small H.264 MP4 with a moving bar (no B-frames, keyframe every `gop`)."""
    w, h = size
    with av.open(str(path), "w") as out:
        # Fixed GOP (no scene-cut keyframes), no B-frames.
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0"
        stream = out.add_stream("libx264", rate=fps, options={"x264-params": params})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(seconds * fps):
            img = np.full((h, w, 3), 40, np.uint8)
            x = (i * 7) % (w - 16)
            img[:, x : x + 16] = (255, 200, 0)
            for pkt in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return path


def test_stream_stop_and_restart_on_same_port(car_video):
    with RtspServer({"car": car_video}) as server:
        url = server.url("car")
        assert url == f"rtsp://127.0.0.1:{server.port}/car"

        with open_rtsp(url) as c:
            assert c.streams.video[0].codec_context.name == "h264"
            assert_live_h264(read_packets(c, 3.0), 3.0)

            # A stopped server must make the client fail promptly, not hang.
            port = server.port
            server.stop()
            assert read_until_failure(c, within=8.0) < 8.0

        server.start()  # same port, immediately
        assert server.port == port
        with open_rtsp(url) as c:
            assert_live_h264(read_packets(c, 3.0), 3.0)


def test_udp_transport(car_video):
    with RtspServer({"car": car_video}) as server, open_rtsp(server.url("car"), "udp") as c:
        assert_live_h264(read_packets(c, 1.0), 1.0)


def test_loops_forever_with_increasing_timestamps(tmp_path):
    clip = make_clip(tmp_path / "short.mp4")  # 3 s: 8 s of stream crosses the loop twice
    with RtspServer({"short": clip}) as server:
        t0 = time.monotonic()  # before open: FFmpeg's probing already consumes packets
        with open_rtsp(server.url("short")) as c:
            packets = read_packets(c, 8.0)
        wall = time.monotonic() - t0
    assert_live_h264(packets, 8.0)
    pts = [p for p, _ in packets if p is not None]
    # Gapless: one packet per frame (10 fps), no jump at the loop point.
    assert max(b - a for a, b in itertools.pairwise(pts)) < 0.25
    assert len(pts) >= 0.9 * 10 * (pts[-1] - pts[0])
    # Live pace, not a file dump (new clients get at most one cached GOP = 1 s early).
    assert wall >= 8.0 - 1.5, f"8 s of stream arrived in {wall:.1f}s"
