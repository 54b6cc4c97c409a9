"""Frame sources on real files, a real RTSP server, and broken inputs."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import av
import pytest

from detector.config import Source
from detector.ingest.health import CameraHealth, CameraState
from detector.ingest.ring import PacketRing
from detector.ingest.sources import (
    DEFAULT_FILE_START,
    ReaderOptions,
    StreamReader,
    _DueDecoder,
    camera_phase,
    redact,
    resolve_url,
)
from detector.types import Frame
from tests.support.rtsp import RtspServer, rtsp_available


class Collector:
    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.lock = threading.Lock()

    def __call__(self, frame: Frame) -> None:
        with self.lock:
            self.frames.append(frame)

    def count(self) -> int:
        with self.lock:
            return len(self.frames)


def reader(
    url: str, cadence: float = 5.0, ring: PacketRing | None = None, **src: object
) -> tuple[StreamReader, Collector]:
    sink = Collector()
    opts = ReaderOptions(cadence_s=cadence, open_timeout_s=2, read_timeout_s=2, backoff_min_s=0.2, backoff_max_s=1)
    source = Source(url=url, **{"loop": False, **src})
    return StreamReader("cam", source, url, sink, CameraHealth("cam"), opts, ring=ring), sink


def wait_for(cond: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def offsets(sink: Collector) -> list[float]:
    return [round((f.ts - DEFAULT_FILE_START).total_seconds(), 2) for f in sink.frames]


class CountingDecodes:
    """Counts packets handed to the decoder (the expensive part) while a reader runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from detector.ingest import sources

        self.n = 0
        original = sources._DueDecoder._decode

        def counted(dec, packet, ctx):
            self.n += 1
            return original(dec, packet, ctx)

        monkeypatch.setattr(sources._DueDecoder, "_decode", counted)


def test_short_gop_decodes_only_the_first_keyframe_after_each_due_time(short_street: Path, monkeypatch) -> None:
    decodes = CountingDecodes(monkeypatch)
    r, sink = reader(str(short_street), cadence=5.0)  # GOP 2 s ≤ cadence 5 s
    r.start()
    r.join(60)
    assert r.health.state is CameraState.ENDED
    got = offsets(sink)
    assert got[:6] == [0.0, 6.0, 10.0, 16.0, 20.0, 26.0]  # first keyframe at/after 0, 5, 10, 15, 20, 25 s
    assert len(got) == 24 and decodes.n == 24  # 1200 packets demuxed, 24 decoded


def test_live_cameras_are_due_at_their_own_phase_of_the_cadence(short_street: Path) -> None:
    # cameras started together would otherwise all decode in the same second
    phases = [camera_phase(f"cam-{i}", 10.0) for i in range(100)]
    assert phases == [camera_phase(f"cam-{i}", 10.0) for i in range(100)]  # stable across restarts
    assert {int(p) for p in phases} == set(range(10))  # spread over the whole cadence
    dec = _DueDecoder(5.0, phase=3.0)
    got = []
    with av.open(str(short_street)) as c:
        ctx = c.streams.video[0].codec_context
        for packet in c.demux(c.streams.video[0]):
            got += [round(t, 2) for _, t in dec.feed(packet, ctx)]
    assert got[:4] == [4.0, 8.0, 14.0, 18.0]  # first keyframe at/after 3, 8, 13, 18 s (GOP 2 s)


def test_long_gop_decodes_forward_to_the_due_frame(shared_video, monkeypatch) -> None:
    decodes = CountingDecodes(monkeypatch)
    r, sink = reader(str(shared_video("car-detection.mp4")), cadence=2.0)  # GOP 4.8 s > cadence 2 s
    r.start()
    r.join(60)
    got = offsets(sink)
    gaps = [b - a for a, b in itertools.pairwise(got[2:])]
    assert gaps and all(abs(g - 2.0) < 0.05 for g in gaps)  # once the GOP is known: every 2 s
    with av.open(str(shared_video("car-detection.mp4"))) as c:
        total = c.streams.video[0].frames
    assert decodes.n < total * 0.75  # packets after the last due frame of each GOP are never decoded


def test_file_clock_maps_pts_to_start_time_and_loops_forward(short_street: Path) -> None:
    r, sink = reader(str(short_street), cadence=30.0, loop=True, start_time="2026-03-02T10:00:00+08:00")
    r.start()
    assert wait_for(lambda: sink.count() >= 6, 30)
    r.stop()
    r.join(10)
    ts = [f.ts for f in sink.frames]
    assert ts[0].isoformat() == "2026-03-02T10:00:00+08:00"
    assert all(b - a >= timedelta(seconds=29) for a, b in itertools.pairwise(ts))  # never backwards at the loop
    assert ts[-1] - ts[0] >= timedelta(seconds=150)  # 2-minute file, so it looped


def test_clip_is_remuxed_from_the_ring_without_reencoding(short_street: Path, tmp_path: Path) -> None:
    ring = PacketRing(seconds=20)
    r, _ = reader(str(short_street), cadence=5.0, ring=ring)
    start = DEFAULT_FILE_START + timedelta(seconds=30)
    done = ring.request(start - timedelta(seconds=3), start + timedelta(seconds=3), tmp_path / "clip.mp4")
    r.start()
    r.join(60)
    path = done.result(timeout=5)
    assert path == tmp_path / "clip.mp4"
    with av.open(str(path)) as clip, av.open(str(short_street)) as src:
        packets = [bytes(p) for p in clip.demux(clip.streams.video[0]) if p.size]
        source = [bytes(p) for p in src.demux(src.streams.video[0]) if p.size]
    assert 60 <= len(packets) <= 81  # from the keyframe at 26 s to 33 s, at 10 fps
    first = source.index(packets[0])
    assert source[first : first + len(packets)] == packets  # byte-identical: no re-encode
    with av.open(str(path)) as clip:
        assert sum(1 for _ in clip.decode(video=0)) == len(packets)


def test_corrupt_and_truncated_files_fail_clearly(short_street: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 400)
    r, sink = reader(str(junk))
    r.start()
    assert wait_for(lambda: r.health.state is CameraState.FAILED, 10)
    assert r.health.last_error and "junk.mp4" in r.health.last_error
    r.stop()
    r.join(5)
    assert sink.count() == 0

    data = short_street.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    r, sink = reader(str(cut))
    r.start()
    assert wait_for(lambda: r.health.state in (CameraState.FAILED, CameraState.ENDED), 20)
    r.stop()
    r.join(5)
    assert r.health.last_error or sink.count() > 0


def test_a_url_that_never_answers_is_failed_with_an_error_and_retried() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (kernel backlog), never says a word
    port = silent.getsockname()[1]
    try:
        r, sink = reader(f"rtsp://127.0.0.1:{port}/never")
        r.start()
        assert wait_for(lambda: r.health.state is CameraState.FAILED and r.health.reconnects >= 2, 20)
        assert "127.0.0.1" in (r.health.last_error or "")
        r.stop()
        r.join(10)
        assert not r.alive and sink.count() == 0
    finally:
        silent.close()


def test_credentials_come_from_the_environment_and_never_show(monkeypatch) -> None:
    monkeypatch.setenv("CAM_USER", "admin")
    monkeypatch.setenv("CAM_PASS", "p@ss:word")
    src = Source(url="rtsp://10.1.2.3:554/Streaming/101", username_env="CAM_USER", password_env="CAM_PASS")
    url = resolve_url(src, Path("/tmp"))
    assert url == "rtsp://admin:p%40ss%3Aword@10.1.2.3:554/Streaming/101"
    assert redact(url) == "rtsp://10.1.2.3:554/Streaming/101"
    monkeypatch.delenv("CAM_PASS")
    with pytest.raises(Exception, match="CAM_PASS"):
        resolve_url(src, Path("/tmp"))


@pytest.mark.rtsp
def test_rtsp_camera_stalls_reconnects_and_goes_live_while_others_keep_running(short_street: Path) -> None:
    if reason := rtsp_available():
        pytest.skip(reason)
    with RtspServer({"cam": short_street}) as server:
        rtsp, rtsp_sink = reader(server.url("cam"), cadence=1.0)
        other, other_sink = reader(str(short_street), cadence=1.0, speed=1.0, loop=True)
        rtsp.start()
        other.start()
        try:
            assert wait_for(lambda: rtsp.health.state is CameraState.LIVE and rtsp_sink.count() >= 2, 20)
            server.stop()
            assert wait_for(lambda: rtsp.health.state is CameraState.STALLED, 15)
            during = other_sink.count()
            time.sleep(2)
            assert other_sink.count() >= during + 1  # the file camera never paused
            server.start()
            assert wait_for(lambda: rtsp.health.state is CameraState.LIVE, 30)
            after = rtsp_sink.count()
            assert wait_for(lambda: rtsp_sink.count() > after, 15)
            assert rtsp.health.reconnects >= 1
        finally:
            for r in (rtsp, other):
                r.stop()
                r.join(10)
