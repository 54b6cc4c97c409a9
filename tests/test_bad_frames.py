"""Black frames and corrupt packets, through the whole pipeline with every analyzer on: no incident at all.

A camera's stream has gaps (black or grey frames while the encoder restarts)
and damaged packets (lost or garbled bytes on the way). Neither is a problem
in the street, so neither may open an incident — not a stall, not goods, not a
poster, not dust or night works, not a covered lens.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray

from detector.synthetic.demo import _encode
from detector.synthetic.street_scenes import NO_VENDING_ZONE, SHOP_FRONT_ZONE, StreetSceneRenderer, StreetSceneSpec
from tests.conftest import write_config
from tests.support.replay import replay

pytestmark = pytest.mark.slow

SPEC = StreetSceneSpec(seed=31, duration_s=360, crowds=((200, 230),), cloud_s=None)
#: [a, b) seconds of black (0) or grey (128) frames: one frame, a second, eight seconds, a grey stretch
GAPS = [(60.0, 60.2, 0), (100.0, 101.0, 0), (150.0, 158.0, 0), (250.0, 254.0, 128)]
WALL = [(0.02, 0.30), (0.98, 0.30), (0.98, 0.40), (0.02, 0.40)]  # the shop signs: text that was always there
SITE = [(0.02, 0.02), (0.98, 0.02), (0.98, 0.30), (0.02, 0.30)]  # the upper floors, as a "construction site"


def with_gaps(path: Path) -> None:
    """The street of `SPEC` with the frames of `GAPS` replaced by flat black or grey."""

    def frames() -> Iterator[NDArray[np.uint8]]:
        for i, image in enumerate(StreetSceneRenderer(SPEC).frames()):
            t = i / SPEC.fps
            level = next((v for a, b, v in GAPS if a <= t < b), None)
            yield image if level is None else np.full_like(image, level)

    _encode(frames(), path, SPEC)  # type: ignore[arg-type]  # same fields as StreetSpec


def corrupt(src: Path, dst: Path, seed: int = 7) -> int:
    """Remuxes `src` with a third of the payload of one packet in six (keyframes included) garbled."""
    rng = np.random.default_rng(seed)
    garbled = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            data = bytes(packet)
            if rng.random() < 1 / 6 and len(data) > 64:
                buf = bytearray(data)
                start = int(rng.integers(16, len(buf) // 2))
                end = min(len(buf), start + len(buf) // 3)
                buf[start:end] = rng.integers(0, 256, end - start, dtype=np.uint8).tobytes()
                data = bytes(buf)
                garbled += 1
            copy = av.Packet(data)
            copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
            copy.is_keyframe = packet.is_keyframe
            copy.stream = vout
            out.mux(copy)
    return garbled


def test_black_frames_and_corrupt_packets_open_no_incident(tmp_path: Path) -> None:
    gapped = tmp_path / "gaps.mp4"
    with_gaps(gapped)
    damaged = tmp_path / "damaged.mp4"
    assert corrupt(gapped, damaged) > 100
    zones = {
        purpose: [list(p) for p in poly]
        for purpose, poly in (
            ("no_vending", NO_VENDING_ZONE),
            ("shop_front", SHOP_FRONT_ZONE),
            ("wall", WALL),
            ("construction_site", SITE),
        )
    }
    fast = {"persistence": {"k": 3, "n": 5, "minutes": 1}, "clear_minutes": 1}  # quick to open: strict
    problems = ["09006", "09005", "07001", "08004", "08001"]
    cameras = [
        {
            "id": name,
            "name": name,
            "source": {"url": str(video), "loop": False, "start_time": SPEC.start},
            "cadence_s": 5,
            "zones": [{"name": p.replace("_", "-"), "purpose": p, "polygon": poly} for p, poly in zones.items()],
            "problems": problems,
            "rules": dict.fromkeys(problems, fast),
        }
        for name, video in (("gaps", gapped), ("damaged", damaged))
    ]
    cfg = write_config(tmp_path, cameras, log_level="WARNING")

    run = replay(cfg, timeout_s=900)

    assert run.frames["gaps"] >= 60 and run.frames["damaged"] >= 40  # the streams were read through
    assert run.blank["gaps"] + run.paused["gaps"] >= 3  # the black and grey frames were seen, and skipped
    with sqlite3.connect(tmp_path / "gridsight.db") as con:
        assert con.execute("select camera_id, problem_code, zone, opened_at from incidents").fetchall() == []
