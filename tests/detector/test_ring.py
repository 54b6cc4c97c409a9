"""The clip ring keeps what a clip can still ask for: `pre` before the oldest frame waiting, capped by its span."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av

from detector.ingest.ring import PacketRing

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FPS, GOP = 10, 20  # a keyframe every 2 s


def feed(ring: PacketRing, start_s: float, end_s: float) -> None:
    for i in range(round(start_s * FPS), round(end_s * FPS)):
        p = av.Packet(b"\x00" * 64)
        p.pts, p.time_base, p.is_keyframe = i, Fraction(1, FPS), i % GOP == 0
        ring.add(p, T0 + timedelta(seconds=i / FPS))


def held(ring: PacketRing) -> tuple[float, float]:
    """Seconds of the oldest and newest packet held."""
    ts = [p.ts for p in ring.packets]
    return (ts[0] - T0).total_seconds(), (ts[-1] - T0).total_seconds()


def test_with_nothing_waiting_the_ring_holds_pre_and_one_gop() -> None:
    ring = PacketRing(seconds=40, pre_s=5)
    feed(ring, 0, 60)
    first, last = held(ring)
    assert ring.packets[0].keyframe
    assert 60 - 5 - 1 - 2 <= first <= 60 - 5 - 1  # the keyframe at or before now - pre (- the reorder margin)
    assert last > 59.8


def test_a_frame_waiting_for_analysis_keeps_its_pre_until_analysed() -> None:
    ring = PacketRing(seconds=40, pre_s=5)
    feed(ring, 0, 20)
    ring.expect(T0 + timedelta(seconds=20))
    feed(ring, 20, 35)  # the analysis is 15 s late
    assert held(ring)[0] <= 20 - 5
    ring.analysed(T0 + timedelta(seconds=20))
    feed(ring, 35, 36)
    assert held(ring)[0] >= 36 - 5 - 1 - 2


def test_a_pending_clip_request_keeps_its_start(tmp_path: Path) -> None:
    ring = PacketRing(seconds=40, pre_s=5)
    feed(ring, 0, 12)
    ring.request(T0 + timedelta(seconds=7), T0 + timedelta(seconds=30), tmp_path / "clip.mp4")
    feed(ring, 12, 30)
    assert held(ring)[0] <= 7


def test_the_span_caps_a_frame_that_is_never_analysed() -> None:
    ring = PacketRing(seconds=40, pre_s=5)
    ring.expect(T0 + timedelta(seconds=1))
    feed(ring, 0, 100)
    assert 100 - 40 - 2 <= held(ring)[0]
