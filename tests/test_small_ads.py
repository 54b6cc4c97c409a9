"""Small ads end to end: a poster appears on a camera's wall; `gridsight run` opens 07001 with its phone number."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import av
import pytest

from tests.conftest import write_config
from tests.support.posters import POLE, WALL, poster_scene, scene
from tests.test_run import api_url, start

pytestmark = pytest.mark.slow

POSTER_AT_S = 240  # the first minutes teach the view its permanent text (shop signs)
DURATION_S = 480


def wall_video(path: Path) -> str:
    """1 fps 1080p: the empty street, then the same street with one poster on the wall."""
    empty = scene(3)
    with_poster, [placed] = poster_scene(3, [12.0])
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "g": "10"}
        for t in range(DURATION_S):
            image = with_poster if t >= POSTER_AT_S else empty
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return placed.phone


def test_a_new_poster_on_the_wall_opens_an_incident_with_its_phone_number(tmp_path: Path) -> None:
    video = tmp_path / "wall.mp4"
    phone = wall_video(video)
    cam = {
        "id": "wall-1",
        "name": "幸福路围墙",
        "source": {"url": str(video), "loop": False},
        "cadence_s": 20,
        "zones": [
            {"name": "wall", "purpose": "wall", "polygon": [list(p) for p in WALL]},
            {"name": "pole", "purpose": "pole", "polygon": [list(p) for p in POLE]},
        ],
        "problems": ["07001"],
        "rules": {"07001": {"persistence": {"k": 2, "n": 3, "minutes": 1}}},
    }
    cfg = write_config(tmp_path, [cam])
    proc = start(cfg, 40, tmp_path)
    api_url(proc)
    assert proc.wait(120) == 0
    rows = sqlite3.connect(tmp_path / "gridsight.db").execute("select problem_code, zone, details from incidents")
    [(code, zone, details)] = rows.fetchall()
    assert (code, zone) == ("07001", "wall")
    assert json.loads(details)["extras"]["phones"] == [phone]  # the number read off the poster, exactly
