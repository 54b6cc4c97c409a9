"""The synthetic street video: deterministic, well-formed, and its truth holds."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from detector.synthetic import demo
from detector.synthetic.demo import (
    DEMO_NO_VENDING_ZONE,
    StreetSpec,
    demo_truth,
    ensure_demo_video,
    generate_street_video,
)

# Small and short so real encodes stay cheap; the stall stands still 8..20 s.
SPEC = StreetSpec(width=320, height=180, duration_s=30.0, stall_arrive_s=5.0, stall_leave_s=20.0)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _decode(path: Path) -> list[NDArray[np.uint8]]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("demo")
    out = {"stall": d / "stall.mp4", "again": d / "again.mp4", "empty": d / "empty.mp4"}
    generate_street_video(out["stall"], SPEC)
    generate_street_video(out["again"], SPEC)
    generate_street_video(out["empty"], replace(SPEC, stall_arrive_s=None, stall_leave_s=None))
    return out


def test_same_spec_gives_identical_bytes(videos: dict[str, Path]) -> None:
    assert _sha256(videos["stall"]) == _sha256(videos["again"])
    assert _sha256(videos["stall"]) != _sha256(videos["empty"])


def test_stream_has_expected_frames_fps_and_gop(videos: dict[str, Path]) -> None:
    with av.open(str(videos["stall"])) as c:
        stream = c.streams.video[0]
        assert stream.average_rate == SPEC.fps
        assert (stream.codec_context.width, stream.codec_context.height) == (SPEC.width, SPEC.height)
        key_frames = [round(float(p.pts * p.time_base) * SPEC.fps) for p in c.demux(stream) if p.size and p.is_keyframe]
    assert abs(len(_decode(videos["stall"])) - SPEC.frame_count) <= 1
    assert key_frames[0] == 0
    assert set(np.diff(key_frames)) == {SPEC.gop_frames}


def test_stall_visible_only_while_present(videos: dict[str, Path]) -> None:
    truth = demo_truth(SPEC)
    assert truth.stall_xyxy is not None
    x0, y0, x1, y1 = truth.stall_xyxy
    box = np.s_[int(y0 * SPEC.height) : int(y1 * SPEC.height), int(x0 * SPEC.width) : int(x1 * SPEC.width)]
    stall, empty = _decode(videos["stall"]), _decode(videos["empty"])

    def diff(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
        return float(np.abs(a[box].astype(np.int16) - b[box].astype(np.int16)).mean())

    at = {t: round(t * SPEC.fps) for t in (2.0, 12.0, 25.0)}
    # Same seed → same traffic and lighting, so the empty render isolates the stall.
    assert diff(stall[at[12.0]], empty[at[12.0]]) > 25
    assert diff(stall[at[2.0]], empty[at[2.0]]) < 3
    assert diff(stall[at[25.0]], empty[at[25.0]]) < 3
    # And within the one video the spot clearly changes when the stall arrives.
    assert diff(stall[at[12.0]], stall[at[2.0]]) > 25
    assert [truth.stall_still(t) for t in at] == [False, True, False]


def test_stall_stands_in_the_no_vending_zone() -> None:
    for spec in (SPEC, StreetSpec(), StreetSpec(width=1920, height=1080, fps=25)):
        box = demo_truth(spec).stall_xyxy
        assert box is not None
        assert 0.10 <= box[2] - box[0] <= 0.14  # roughly 10–14% of the frame width
        zone = np.array(DEMO_NO_VENDING_ZONE, np.float32)
        assert cv2.pointPolygonTest(zone, ((box[0] + box[2]) / 2, box[3]), False) > 0


def test_truth_without_stall_and_without_leave() -> None:
    none = demo_truth(replace(SPEC, stall_arrive_s=None))
    assert none.stall_xyxy is None and none.arrive_s is None and not none.stall_still(10.0)
    stays = demo_truth(replace(SPEC, stall_leave_s=None))
    assert stays.leave_s is None and stays.stall_still(SPEC.duration_s)
    with pytest.raises(ValueError):
        replace(SPEC, stall_leave_s=6.0)  # shorter than pushing it in


def test_ensure_demo_video_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = replace(SPEC, duration_s=3.0, stall_arrive_s=None)
    first = ensure_demo_video(tmp_path, spec)
    assert first.name == f"street-{spec.key()}.mp4"
    mtime = first.stat().st_mtime_ns

    def fail(path: Path, spec: StreetSpec) -> None:
        raise AssertionError("regenerated a cached video")

    monkeypatch.setattr(demo, "generate_street_video", fail)
    assert ensure_demo_video(tmp_path, spec) == first
    assert first.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temp files left behind
    assert replace(spec, seed=1).key() != spec.key()
    assert StreetSpec(duration_s=60).key() == StreetSpec(duration_s=60.0).key()


def test_bitrate_mode_encodes(tmp_path: Path) -> None:
    spec = replace(SPEC, duration_s=4.0, fps=25, bitrate=300_000)
    truth = generate_street_video(tmp_path / "b.mp4", spec)
    with av.open(str(tmp_path / "b.mp4")) as c:
        assert c.streams.video[0].average_rate == 25
        assert abs(sum(1 for _ in c.decode(video=0)) - truth.frame_count) <= 1
