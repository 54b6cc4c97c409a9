"""TextDetector: new posters and their phone numbers on the wall/pole zones.

Two layers: the baseline, cadence, grouping and state logic with a scripted
OCR engine (fast), and the real RapidOCR engine on generated 1920x1080 wall
scenes (tests/support/posters.py): faded, tilted, JPEG-compressed posters with
characters 9-18 px high, a permanent shop sign with a phone number on the wall,
and ads outside the wall zones.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detector.analysis.text import LABEL, TextDetector, TextParams
from detector.types import Frame, Observations

T0 = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)


def _frame(image: np.ndarray, t: datetime, i: int = 0) -> Frame:
    return Frame("cam", i, t, image)


# ---------------------------------------------------------------- scripted engine


@dataclass
class Line:
    box: tuple[float, float, float, float]  # fractions of the tile the detector sees
    text: str
    score: float = 0.95


class ScriptedEngine:
    """Detects the scripted lines wherever it is asked, reads their scripted text."""

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.detect_calls = 0

    def detect(self, image, thresh, box_thresh):
        self.detect_calls += 1
        h, w = image.shape[:2]
        out = []
        for ln in self.lines:
            x0, y0, x1, y1 = ln.box
            q = np.float32([[x0 * w, y0 * h], [x1 * w, y0 * h], [x1 * w, y1 * h], [x0 * w, y1 * h]])
            out.append((q, 0.9))
        return out

    def recognize(self, crops):
        assert len(crops) == len(self.lines)
        return [(ln.text, ln.score) for ln in self.lines]


# a 640x384 frame (the zone crop is one tile); the zone is its left half
ZONE = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
BLANK = np.random.default_rng(0).integers(0, 256, (384, 640, 3), dtype=np.uint8)  # "ink" everywhere
SIGN = Line((0.1, 0.05, 0.9, 0.12), "幸福超市 TEL 010-62345678")
AD = Line((0.2, 0.5, 0.7, 0.55), "疏通下水道 138-1234-5678")
AD2 = Line((0.2, 0.58, 0.6, 0.63), "专业 价格优惠")


def _scripted(params: TextParams | None = None) -> tuple[TextDetector, ScriptedEngine]:
    eng = ScriptedEngine()
    return TextDetector([ZONE], params or TextParams(), engine=eng), eng


def _warm(det: TextDetector, eng: ScriptedEngine, lines: list[Line], start: datetime = T0) -> datetime:
    """Runs the baseline analyses with `lines` on the wall; returns the time after them."""
    eng.lines = list(lines)
    t = start
    for _ in range(det.params.baseline_analyses):
        assert len(det.analyze(_frame(BLANK, t))) == 0
        t += timedelta(seconds=det.params.every_s)
    assert not det.learning
    return t


def test_nothing_is_reported_while_learning_and_permanent_text_never() -> None:
    det, eng = _scripted()
    t = _warm(det, eng, [SIGN, AD])  # a sign and an old poster, there from the start
    for _ in range(3):
        assert len(det.analyze(_frame(BLANK, t))) == 0
        t += timedelta(minutes=1)


def test_new_text_is_one_poster_with_its_phone() -> None:
    det, eng = _scripted()
    t = _warm(det, eng, [SIGN])
    eng.lines = [SIGN, AD, AD2]
    obs = det.analyze(_frame(BLANK, t))
    assert obs.labels == (LABEL,)
    assert obs.extras[0]["phones"] == ["13812345678"]
    assert obs.extras[0]["text"] == "疏通下水道 138-1234-5678\n专业 价格优惠"
    x0, y0, x1, y1 = obs.xyxy[0]
    assert 0.05 < x0 < x1 <= 0.5 and 0.45 < y0 < y1 < 0.7  # both lines, in frame coordinates
    assert 0.9 < obs.scores[0] <= 1.0


def test_lines_far_apart_are_separate_posters() -> None:
    det, eng = _scripted()
    t = _warm(det, eng, [])
    eng.lines = [Line((0.05, 0.3, 0.4, 0.34), "招聘 13912345678"), Line((0.6, 0.8, 0.95, 0.84), "办证 4001234567")]
    obs = det.analyze(_frame(BLANK, t))
    assert sorted(e["phones"][0] for e in obs.extras) == ["13912345678", "4001234567"]


def test_runs_at_its_cadence_or_when_requested() -> None:
    det, eng = _scripted(TextParams(every_s=60, baseline_analyses=0))
    eng.lines = [AD]
    first = det.analyze(_frame(BLANK, T0))
    assert eng.detect_calls == 1 and len(first) == 1
    assert det.analyze(_frame(BLANK, T0 + timedelta(seconds=30))) is first  # not due: the last result stands
    assert eng.detect_calls == 1
    det.request()
    det.analyze(_frame(BLANK, T0 + timedelta(seconds=31)))
    assert eng.detect_calls == 2
    det.analyze(_frame(BLANK, T0 + timedelta(seconds=60)))
    assert eng.detect_calls == 2
    det.analyze(_frame(BLANK, T0 + timedelta(seconds=91)))
    assert eng.detect_calls == 3
    assert TextDetector.gated is True


def test_new_text_that_stays_for_days_joins_the_baseline() -> None:
    det, eng = _scripted(TextParams(baseline_hours=72))
    t = _warm(det, eng, [])
    eng.lines = [Line((0.2, 0.3, 0.8, 0.36), "新店开业 欢迎光临")]  # a new shop sign
    for _ in range(4 * 24):
        obs = det.analyze(_frame(BLANK, t))
        t += timedelta(hours=1)
    assert len(obs) == 0  # absorbed after 72 h
    eng.lines.append(AD)
    assert [e["phones"] for e in det.analyze(_frame(BLANK, t)).extras] == [["13812345678"]]


def test_a_misread_keeps_the_number_read_before() -> None:
    det, eng = _scripted(TextParams(baseline_analyses=0))
    eng.lines = [AD]
    for k in range(2):
        det.analyze(_frame(BLANK, T0 + timedelta(minutes=k)))
    eng.lines = [Line(AD.box, "疏通下水道 138-1234-567B8")]  # no valid number this time
    obs = det.analyze(_frame(BLANK, T0 + timedelta(minutes=2)))
    assert obs.extras[0]["phones"] == ["13812345678"]


def test_text_outside_the_zone_is_ignored() -> None:
    tri = [(0.0, 0.0), (0.5, 0.0), (0.0, 1.0)]  # the crop is a rectangle; its lower right is not the zone
    eng = ScriptedEngine()
    det = TextDetector([tri], TextParams(baseline_analyses=0), engine=eng)
    eng.lines = [Line((0.6, 0.8, 0.95, 0.85), "办证 13912345678")]
    assert len(det.analyze(_frame(BLANK, T0))) == 0
    assert len(TextDetector([], TextParams(baseline_analyses=0), engine=eng).analyze(_frame(BLANK, T0))) == 0


def test_state_keeps_the_baseline() -> None:
    det, eng = _scripted()
    t = _warm(det, eng, [SIGN])
    blob = det.state()
    assert blob is not None
    det2, eng2 = _scripted()
    det2.load_state(blob)
    assert not det2.learning
    eng2.lines = [SIGN, AD]
    obs = det2.analyze(_frame(BLANK, t))
    assert [e["phones"] for e in obs.extras] == [["13812345678"]]


def test_load_state_ignores_foreign_and_corrupt_blobs() -> None:
    det, _ = _scripted()
    buf = io.BytesIO()
    np.savez_compressed(buf, version=np.int32(1), bg=np.zeros((4, 4, 3), np.uint8))  # occupancy's state
    for blob in (buf.getvalue(), b"", b"GSTEXT1\nnot zlib", b"\x00" * 10):
        det.load_state(blob)
        assert det.learning
    assert det.state() is None


# ---------------------------------------------------------------- the real OCR on generated walls

posters = pytest.importorskip("tests.support.posters")


@pytest.fixture(scope="module")
def engine():
    pytest.importorskip("rapidocr")
    from detector.analysis.text import shared_engine

    return shared_engine(2)


@pytest.fixture(scope="module")
def warm_state(engine) -> bytes:
    """The baseline of the empty street (sign, bus-stop board), learned from 3 frames."""
    det = TextDetector([posters.WALL, posters.POLE], engine=engine)
    for i in range(det.params.baseline_analyses):
        img = posters.scene(0, rng=np.random.default_rng(100 + i))
        assert len(det.analyze(_frame(img, T0 + timedelta(minutes=i), i))) == 0
    sign = [e for e in det._entries if e.permanent]
    assert any("62345678" in e.text for e in sign), sign  # the sign was read, and is permanent
    blob = det.state()
    assert blob is not None
    return blob


def _warm_detector(engine, warm_state: bytes) -> TextDetector:
    det = TextDetector([posters.WALL, posters.POLE], engine=engine)
    det.load_state(warm_state)
    return det


def _found(obs: Observations, box: tuple[int, int, int, int]) -> list[dict]:
    """Extras of the posters whose centre lies on `box` (px)."""
    x0, y0, x1, y1 = box
    out = []
    for b, e in zip(obs.xyxy, obs.extras, strict=True):
        cx, cy = (b[0] + b[2]) / 2 * posters.W, (b[1] + b[3]) / 2 * posters.H
        if x0 - 10 <= cx <= x1 + 10 and y0 - 10 <= cy <= y1 + 10:
            out.append(e)
    return out


def test_poster_on_the_wall_is_found_and_text_off_the_wall_ignored(engine, warm_state) -> None:
    rng = np.random.default_rng(3)
    printed, phone = "139 2468 1357", "13924681357"
    wall_img, wall_alpha = posters.render_poster(rng, 11, printed)
    road_img, road_alpha = posters.render_poster(rng, 16, "186-0000-1111")
    wx, wy = 420, 330
    img = posters.scene(
        0, [(wall_img, wall_alpha, wx, wy), (road_img, road_alpha, 1100, 860)], rng=np.random.default_rng(5)
    )
    det = _warm_detector(engine, warm_state)
    obs = det.analyze(_frame(img, T0 + timedelta(hours=1)))
    assert obs.labels == (LABEL,)  # one poster: not the sign, not the bus-stop board, not the road
    assert obs.extras[0]["phones"] == [phone]
    x0, y0, x1, y1 = obs.xyxy[0] * [posters.W, posters.H, posters.W, posters.H]
    h, w = wall_img.shape[:2]
    assert wx - 15 <= x0 < x1 <= wx + w + 15 and wy - 15 <= y0 < y1 <= wy + h + 15
    assert 9 <= obs.extras[0]["char_px"] <= 13

    # small tiles: lines cut by tile borders (the sign, the poster's) are joined again
    tiled = TextDetector([posters.WALL, posters.POLE], TextParams(tile_px=512, tile_overlap_px=64), engine=engine)
    tiled.load_state(warm_state)
    obs = tiled.analyze(_frame(img, T0 + timedelta(hours=1)))
    assert [e["phones"] for e in obs.extras] == [[phone]]


def test_characters_too_small_give_no_number(engine, warm_state) -> None:
    """5 px digits are misread into valid-looking numbers: such posters are text, never a phone."""
    ((img, _),) = posters.poster_scenes(13, [5.0, 5.5, 5.0, 5.5, 5.2])
    det = _warm_detector(engine, warm_state)
    obs = det.analyze(_frame(img, T0 + timedelta(hours=1)))
    assert len(obs) >= 2  # the ads are still seen
    assert [e["phones"] for e in obs.extras if e["phones"]] == []


def test_phone_exact_match_rate_on_generated_posters(engine, warm_state, record_property) -> None:
    """>= 20 posters, 9-18 px characters (a quarter at 9 px): the numbers read exactly, none invented."""
    rng = np.random.default_rng(2026)
    sizes = [9.0] * 6 + [float(v) for v in rng.uniform(9, 18, 18).round(1)]
    rng.shuffle(sizes)
    frames = posters.poster_scenes(77, sizes)
    det = _warm_detector(engine, warm_state)
    exact, wrong, times, misses = 0, [], [], []
    t = T0 + timedelta(hours=3)
    for img, placed in frames:
        det.request()
        started = time.perf_counter()
        obs = det.analyze(_frame(img, t))
        times.append(time.perf_counter() - started)
        t += timedelta(minutes=1)
        for p in placed:
            phones = [ph for e in _found(obs, p.box) for ph in e["phones"]]
            exact += phones == [p.phone]
            wrong += [(p.char_px, p.phone, ph) for ph in phones if ph != p.phone]
            if phones != [p.phone]:
                misses.append((p.char_px, p.phone, phones))
    n = sum(len(placed) for _, placed in frames)
    rate = exact / n
    ms = 1000 * float(np.median(times))
    record_property("phone_exact_match_rate", rate)
    record_property("ms_per_analysis", ms)
    print(f"\nphone exact-match {exact}/{n} = {rate:.3f}; {ms:.0f} ms per 1080p analysis (median); misses {misses}")
    assert n >= 20 and sum(1 for _, pl in frames for p in pl if p.char_px == 9) >= 6
    assert wrong == []  # never a wrong number
    assert rate >= 0.9
