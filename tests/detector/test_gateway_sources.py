"""Cameras taken through a media gateway (ZLMediaKit / SRS / wvp in front of a GB/T 28181
platform): HTTP-FLV, live HLS and snapshot URLs from a real HTTP server on 127.0.0.1, and
20-digit channel ids as camera ids."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from detector.config import load_config
from detector.ingest.health import CameraHealth, CameraState
from detector.ingest.sources import ReaderOptions, SnapshotReader
from tests.conftest import street_camera, write_config
from tests.detector.test_sources import Collector, reader, wait_for
from tests.support.media_gateway import MediaGateway

CHANNEL = "34020000001320000001"  # 3402000000 (centre, industry) · 132 (IP camera) · 0 · 000001


@pytest.fixture
def gateway(short_street: Path, tmp_path: Path):
    with MediaGateway({CHANNEL: short_street}, tmp_path / "gateway") as gw:
        yield gw


@pytest.mark.parametrize("kind", ["flv", "hls"])
def test_a_gateway_stream_goes_live_stalls_when_the_gateway_restarts_and_comes_back(gateway, kind: str) -> None:
    r, sink = reader(gateway.url(kind, CHANNEL), cadence=1.0)
    r.start()
    try:
        assert wait_for(lambda: r.health.state is CameraState.LIVE and sink.count() >= 2, 20), r.health.last_error
        assert sink.frames[-1].image.shape == (360, 640, 3)
        gateway.stop()
        assert wait_for(lambda: r.health.state in (CameraState.STALLED, CameraState.FAILED), 20)
        gateway.start()
        assert wait_for(lambda: r.health.state is CameraState.LIVE, 30), r.health.last_error
        after = sink.count()
        assert wait_for(lambda: sink.count() >= after + 2, 15)
        assert r.health.reconnects >= 1
    finally:
        r.stop()
        r.join(10)


def test_the_gateway_snapshot_url_is_a_camera_and_an_offline_channel_says_so(gateway) -> None:
    opts = ReaderOptions(cadence_s=0.5, open_timeout_s=2, read_timeout_s=2, backoff_min_s=0.2, backoff_max_s=1)
    sink = Collector()
    snap = SnapshotReader(CHANNEL, gateway.url("snap", CHANNEL), sink, CameraHealth(CHANNEL), opts)
    dead = SnapshotReader("other", gateway.url("snap", "34020000001320000099"), Collector(), CameraHealth("o"), opts)
    for r in (snap, dead):
        r.start()
    try:
        assert wait_for(lambda: sink.count() >= 2, 10)
        assert sink.frames[0].image.shape == (360, 640, 3)
        assert wait_for(lambda: dead.health.state is CameraState.FAILED, 10)
        assert "HTTP 404" in (dead.health.last_error or "")
    finally:
        for r in (snap, dead):
            r.stop()
            r.join(5)


def test_a_channel_id_is_a_camera_id_and_another_device_type_is_refused(tmp_path: Path, short_street: Path) -> None:
    sip_server = "34020000002000000001"  # pasted from the platform's device tree by mistake
    cfg = write_config(tmp_path, [street_camera(short_street, CHANNEL), street_camera(short_street, sip_server)])
    loaded = load_config(cfg)
    assert [c.id for c in loaded.cameras] == [CHANNEL]
    [error] = loaded.errors
    assert error.field == "cameras.1.id" and "type 200" in error.message and "SIP server" in error.message


@pytest.mark.slow
def test_gridsight_run_on_a_gateways_live_hls_opens_the_stall_under_its_channel_id(
    gateway, tmp_path: Path, short_street: Path
) -> None:
    cam = street_camera(short_street, CHANNEL, cadence_s=2)
    cam["source"] = {"url": gateway.url("hls", CHANNEL)}
    cam["rules"] = {"09006": {"persistence": {"k": 2, "n": 3, "minutes": 0.2}, "clear_minutes": 0.5}}
    cfg = write_config(tmp_path, [cam])
    # the stall stands in the picture from 20 s to 100 s of the gateway's loop
    out = subprocess.run(
        [sys.executable, "-m", "detector.cli", "run", "--config", str(cfg), "--for", "55"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    with sqlite3.connect(tmp_path / "gridsight.db") as con:
        rows = con.execute("SELECT camera_id, problem_code FROM incidents").fetchall()
    assert (CHANNEL, "09006") in rows, f"incidents {rows}; gateway requests {gateway.requests[-5:]}"
    assert any(p.endswith(".ts") for p in gateway.requests)  # it read the segments, not a file
