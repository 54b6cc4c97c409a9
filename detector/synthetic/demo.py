"""A deterministic synthetic fixed-camera street video with a known vendor stall.

Why: demos, the benchmark and the tests need a realistic-enough camera clip
with ground truth (when and where a stall stands in a no-vending zone),
without shipping binary fixtures or real footage. The same `StreetSpec`
always gives the same bytes, so files can be cached by a hash of the spec.

The camera looks across and slightly down onto a street: shop facades at the
top, a sidewalk band in front of them, a two-lane road at the bottom. Cars and
pedestrians only pass through; the stall is the one thing that stays.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import av
import cv2
import numpy as np
from numpy.typing import NDArray

#: Bump whenever the drawing or encoding changes, so cached files are regenerated.
_VERSION = 2

#: Normalised polygon of the sidewalk section where vending is forbidden.
DEMO_NO_VENDING_ZONE: list[tuple[float, float]] = [
    (0.40, 0.56),
    (0.85, 0.56),
    (0.85, 0.715),
    (0.40, 0.715),
]

# Layout, in normalised frame coordinates (y grows downwards).
_FACADE_BOTTOM = 0.55  # facades meet the sidewalk here
_CURB_Y = 0.72  # sidewalk ends, curb begins
_ROAD_Y = 0.74  # road begins
_LANE_MARK_Y = 0.87
_LANES = ((0.86, -1, 0.95), (0.985, +1, 1.08))  # (foot y, direction, depth scale)
_STALL_CX, _STALL_FOOT = 0.61, 0.665  # where the stall stands still
_PX_PER_M = 0.079  # pixels per metre as a fraction of frame height (one depth for all)

# Stall geometry in metres (the truth box is derived from the same numbers).
_STALL_HALF_W = 1.3  # canopy half-width: the widest part
_STALL_TOP = 2.25  # canopy apex above the ground
_PUSH_S = 3.0  # pushing the stall in (or out) takes this long
_VENDOR_GAP_M = 1.2  # where the vendor stands while selling: beyond the canopy's edge

BGR = tuple[int, int, int]
#: (frame, t) -> (foot y, painter) items drawn with the street's own, back to front
Painters = Callable[[NDArray[np.uint8], float], list[tuple[float, Callable[[], None]]]]
_CAR_COLOURS: list[BGR] = [
    (40, 40, 200), (235, 235, 235), (35, 35, 35), (190, 190, 185),
    (170, 90, 30), (40, 200, 230), (60, 130, 50), (120, 120, 120),
]  # fmt: skip
_SHIRTS: list[BGR] = [
    (40, 40, 190), (180, 120, 40), (60, 160, 60), (230, 230, 230), (40, 40, 40),
    (50, 170, 220), (140, 60, 140), (120, 120, 200), (90, 90, 90), (200, 170, 120),
]  # fmt: skip
_TROUSERS: list[BGR] = [(90, 50, 30), (30, 30, 30), (110, 160, 180), (100, 100, 100), (60, 60, 80)]
_SKIN: list[BGR] = [(160, 190, 230), (120, 160, 210), (80, 120, 170), (60, 85, 120)]
_HAIR: list[BGR] = [(30, 30, 40), (40, 60, 90), (150, 170, 190), (60, 60, 60)]
_FACADES: list[BGR] = [
    (70, 80, 160), (180, 215, 230), (150, 150, 90), (80, 160, 200), (150, 190, 160), (170, 150, 130),
]  # fmt: skip
_SIGNS: list[BGR] = [(40, 90, 30), (30, 30, 150), (90, 40, 20), (25, 25, 25), (20, 110, 170)]


class VideoSpec:
    """What every generated-video spec shares: size, rate, GOP checks, and the cache key.

    Subclasses are frozen dataclasses with width, height, fps, duration_s and
    gop_s fields and a `version` class variable of their generator.
    """

    __slots__ = ()
    version: ClassVar[int]

    def _check_video(self) -> None:
        if self.width < 64 or self.height < 64 or self.width % 2 or self.height % 2:
            raise ValueError(f"size must be even and >= 64, got {self.width}x{self.height}")
        if self.fps <= 0 or self.duration_s <= 0:
            raise ValueError("fps and duration_s must be positive")
        if self.gop_frames < 1 or abs(self.gop_s * self.fps - self.gop_frames) > 1e-6:
            raise ValueError(f"gop_s * fps must be a whole number of frames, got {self.gop_s * self.fps}")

    @property
    def frame_count(self) -> int:
        return round(self.duration_s * self.fps)

    @property
    def gop_frames(self) -> int:
        return round(self.gop_s * self.fps)

    def key(self) -> str:
        """Short content hash naming cached files (includes the generator version)."""
        blob = json.dumps({**asdict(self), "_v": self.version}, sort_keys=True)
        return hashlib.sha1(blob.encode(), usedforsecurity=False).hexdigest()[:10]


@dataclass(frozen=True, slots=True)
class StreetSpec(VideoSpec):
    """Everything that determines the video; equal specs give identical bytes.

    `stall_arrive_s=None` means no stall; `stall_leave_s=None` means it stays
    to the end. `bitrate=None` encodes at constant quality (crf 28), a number
    in bits/s makes the size predictable for benchmarks. `cloud_s` is the
    middle of one ~30 s dimming event (ignored without `lighting_drift` or
    when past the end).
    """

    seed: int = 0
    width: int = 1280
    height: int = 720
    fps: int = 10
    duration_s: float = 600.0
    gop_s: float = 2.0
    bitrate: int | None = None
    stall_arrive_s: float | None = 90.0
    stall_leave_s: float | None = 450.0
    pedestrians: bool = True
    cars: bool = True
    lighting_drift: bool = True
    cloud_s: float | None = 300.0
    version: ClassVar[int] = _VERSION

    def __post_init__(self) -> None:
        # Floats are coerced so that StreetSpec(duration_s=60) hashes like 60.0.
        for name in ("duration_s", "gop_s", "stall_arrive_s", "stall_leave_s", "cloud_s"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        self._check_video()
        if self.stall_arrive_s is not None and self.stall_leave_s is not None:
            if self.stall_leave_s < self.stall_arrive_s + _PUSH_S:
                raise ValueError(f"stall must stay at least {_PUSH_S} s (pushing in takes that long)")


@dataclass(frozen=True, slots=True)
class DemoTruth:
    """Ground truth of one generated video.

    The stall is pushed in during [arrive_s, arrive_s + push_s], stands still
    at `stall_xyxy` (normalised, canopy to table legs, vendor excluded) until
    `leave_s`, then is pushed out over `push_s`. `leave_s=None`: it stays.
    """

    spec: StreetSpec
    fps: int
    frame_count: int
    stall_xyxy: tuple[float, float, float, float] | None
    arrive_s: float | None
    leave_s: float | None
    push_s: float = _PUSH_S

    def stall_still(self, t: float) -> bool:
        """Whether the stall stands still at `stall_xyxy` at time `t` (seconds)."""
        if self.arrive_s is None:
            return False
        return self.arrive_s + self.push_s <= t and (self.leave_s is None or t <= self.leave_s)


def demo_truth(spec: StreetSpec) -> DemoTruth:
    """The truth `generate_street_video(…, spec)` returns, without encoding anything."""
    box = None
    if spec.stall_arrive_s is not None:
        m = _PX_PER_M * spec.height  # pixels per metre
        hw = _STALL_HALF_W * m / spec.width
        box = (_STALL_CX - hw, _STALL_FOOT - _STALL_TOP * m / spec.height, _STALL_CX + hw, _STALL_FOOT)
    return DemoTruth(
        spec=spec,
        fps=spec.fps,
        frame_count=spec.frame_count,
        stall_xyxy=box,
        arrive_s=spec.stall_arrive_s,
        leave_s=spec.stall_leave_s if spec.stall_arrive_s is not None else None,
    )


def encode_atomically(frames: Iterator[NDArray[np.uint8]], path: Path, spec: StreetSpec) -> None:
    """Encodes `frames` as H.264 MP4 at `path`, replacing it atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temp file in the same directory makes os.replace atomic: readers and
    # racing writers only ever see a complete file.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _encode(frames, tmp, spec)
        tmp.chmod(0o644)  # mkstemp makes 0600; the cache is shared with other processes
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def generate_street_video(path: Path, spec: StreetSpec) -> DemoTruth:
    """Renders and encodes `spec` as H.264 MP4 at `path` (atomically replaced)."""
    encode_atomically(_Scene(spec).frames(), path, spec)
    return demo_truth(spec)


def ensure_demo_video(cache_dir: Path, spec: StreetSpec = StreetSpec()) -> Path:
    """Path of the cached video for `spec`, generating it only when missing."""
    path = Path(cache_dir) / f"street-{spec.key()}.mp4"
    if not path.exists():
        generate_street_video(path, spec)
    return path


def _encode(frames: Iterator[NDArray[np.uint8]], path: Path, spec: StreetSpec) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        cc = stream.codec_context
        # x264's bitstream depends on its thread count, and "auto" depends on the
        # machine; one thread keeps bytes identical everywhere (and is fast enough).
        cc.thread_count = 1
        g = spec.gop_frames
        cc.gop_size = g
        # Fixed GOP without scene-cut keyframes: seeking and benchmarks rely on it.
        options = {"preset": "ultrafast", "x264-params": f"keyint={g}:min-keyint={g}:scenecut=0"}
        if spec.bitrate is None:
            options["crf"] = "28"
        else:
            cc.bit_rate = spec.bitrate
        stream.options = options
        time_base = Fraction(1, spec.fps)
        for i, image in enumerate(frames):
            # OpenCV's I420 conversion is BT.601 limited range, like the decoder's default.
            vf = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
            vf.pts, vf.time_base = i, time_base
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))


@dataclass(frozen=True, slots=True)
class _Walker:
    """One pedestrian crossing the frame along the sidewalk."""

    t0: float
    t1: float
    x0: float  # normalised x of the feet at t0
    vx: float  # normalised x per second (sign = direction)
    foot_y: float
    height_m: float
    colours: tuple[BGR, BGR, BGR, BGR]  # shirt, trousers, skin, hair


@dataclass(frozen=True, slots=True)
class _Car:
    t0: float
    t1: float
    x0: float  # normalised x of the rear end at t0
    vx: float
    lane: int
    length_m: float
    height_m: float
    colour: BGR


@dataclass(slots=True)
class _Scene:
    """Pre-renders the static street once; per frame it only draws what moves."""

    spec: StreetSpec
    background: NDArray[np.uint8] = field(init=False)
    walkers: list[_Walker] = field(init=False)
    cars: list[_Car] = field(init=False)
    noise: list[NDArray[np.uint8]] = field(init=False)
    drift_phase: float = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.spec.seed)
        # Fixed draw order from one generator: the stall draws no randomness, so
        # the same seed gives the same traffic with and without a stall.
        self.background = _render_background(self.spec, rng)
        self.cars = _schedule_cars(self.spec, rng)
        self.walkers = _schedule_walkers(self.spec, rng)
        # A few pre-made noise tiles cycled: real sensor noise at no per-frame cost.
        h, w = self.spec.height, self.spec.width
        self.noise = [np.clip(rng.normal(4.0, 1.8, (h, w, 3)), 0, 8).astype(np.uint8) for _ in range(5)]
        self.drift_phase = float(rng.uniform(0, 2 * math.pi))

    def frames(self) -> Iterator[NDArray[np.uint8]]:
        for i in range(self.spec.frame_count):
            yield self.render(i)

    def render(self, i: int, more: Painters | None = None) -> NDArray[np.uint8]:
        """Frame `i`; `more(img, t)` adds (foot y, painter) items of other scenes' things."""
        spec, t = self.spec, i / self.spec.fps
        w, h = spec.width, spec.height
        m = _PX_PER_M * h
        img = self.background.copy()
        # (foot y, painter): painting back to front gives correct occlusion.
        items: list[tuple[float, Callable[[], None]]] = [] if more is None else more(img, t)
        if spec.pedestrians:
            for p in self.walkers:
                if p.t0 <= t <= p.t1:
                    x = (p.x0 + p.vx * (t - p.t0)) * w
                    ph = (t - p.t0) * 2 * math.pi * 1.8  # ~1.8 strides per second
                    hp = p.height_m * m * _depth(p.foot_y)
                    items.append((p.foot_y, _bind(_draw_person, img, x, p.foot_y * h, hp, p.colours, ph, 1.0)))
        if spec.cars:
            for c in self.cars:
                if c.t0 <= t <= c.t1:
                    foot, direction, scale = _LANES[c.lane]
                    x = (c.x0 + c.vx * (t - c.t0)) * w
                    args = (img, x, foot * h, c.length_m * m * scale, c.height_m * m * scale, c.colour, direction)
                    items.append((foot, _bind(_draw_car, *args)))
        offset = _stall_offset(spec, t)
        if offset is not None:
            cx = (_STALL_CX + offset) * w
            items.append((_STALL_FOOT, _bind(_draw_stall, img, cx, _STALL_FOOT * h, m)))
            # The vendor pushes from the right, then stands a step beside it (where buyers are
            # served: a person lingering by the stall is what tells it from a pile), shifting a little.
            moving = _stall_moving(spec, t)
            sway = 0.0 if moving else 0.15 * math.sin(t * 2 * math.pi / 9.0)
            vendor_x = cx + (_STALL_HALF_W + _vendor_gap(spec, t) + sway) * m
            vendor_foot = _STALL_FOOT + 0.006  # just in front of the stall
            phase = t * 2 * math.pi * 1.8 if moving else math.pi / 2
            swing = 1.0 if moving else 0.3 * math.sin(t * 2 * math.pi / 5.0)
            colours = ((40, 120, 200), (60, 60, 60), _SKIN[1], _HAIR[0])
            paint = _bind(_draw_person, img, vendor_x, vendor_foot * h, 1.72 * m, colours, phase, swing)
            items.append((vendor_foot, paint))
        for _, paint in sorted(items, key=lambda it: it[0]):
            paint()
        cv2.add(img, self.noise[i % len(self.noise)], dst=img)
        # One LUT applies the noise offset and the lighting gain in a single pass.
        lut = np.clip((np.arange(256) - 4.0) * self.gain(t), 0, 255).astype(np.uint8)
        return cv2.LUT(img, lut)

    def gain(self, t: float) -> float:
        """Global lighting: slow ±10% drift plus one ~30 s cloud dimming by 15%."""
        if not self.spec.lighting_drift:
            return 1.0
        g = 1.0 + 0.07 * math.sin(2 * math.pi * t / 420 + self.drift_phase) + 0.03 * math.sin(2 * math.pi * t / 170)
        if self.spec.cloud_s is not None:
            d = abs(t - self.spec.cloud_s)  # 8 s ramps around a 14 s plateau
            if d < 15.0:
                g *= 1.0 - 0.15 * (1.0 if d < 7.0 else 0.5 + 0.5 * math.cos(math.pi * (d - 7.0) / 8.0))
        return g


def _bind(fn: Callable[..., None], *args: object) -> Callable[[], None]:
    return lambda: fn(*args)


def _depth(foot_y: float) -> float:
    """Things nearer the camera (lower in the frame) look a little bigger."""
    return 0.92 + 0.16 * (foot_y - 0.57) / (_CURB_Y - 0.57)


def _stall_moving(spec: StreetSpec, t: float) -> bool:
    a, leave = spec.stall_arrive_s, spec.stall_leave_s
    return a is not None and (a <= t < a + _PUSH_S or (leave is not None and leave <= t))


def _vendor_gap(spec: StreetSpec, t: float) -> float:
    """Metres between the canopy's edge and the vendor: close while pushing, a step away while selling."""
    a, leave = spec.stall_arrive_s, spec.stall_leave_s
    if a is None or _stall_moving(spec, t):
        return 0.35
    u = min(1.0, (t - a - _PUSH_S) / 2.0, math.inf if leave is None else (leave - t) / 2.0)
    return 0.35 + (_VENDOR_GAP_M - 0.35) * (0.5 - 0.5 * math.cos(math.pi * max(u, 0.0)))


def _stall_offset(spec: StreetSpec, t: float) -> float | None:
    """Normalised x offset of the stall from its spot at `t`; None when not in view.

    It is pushed in from beyond the right edge with an ease-in-out and leaves
    the same way, so arrival looks like motion, not like a cut.
    """
    a, leave = spec.stall_arrive_s, spec.stall_leave_s
    if a is None or t < a:
        return None
    far = 1.0 + 0.12 - _STALL_CX + 0.1  # stall and vendor fully outside the frame
    if t < a + _PUSH_S:
        u = (t - a) / _PUSH_S
        return far * (1.0 - (0.5 - 0.5 * math.cos(math.pi * u)))
    if leave is None or t <= leave:
        return 0.0
    if t < leave + _PUSH_S:
        u = (t - leave) / _PUSH_S
        return far * (0.5 - 0.5 * math.cos(math.pi * u))
    return None


def _schedule_cars(spec: StreetSpec, rng: np.random.Generator) -> list[_Car]:
    cars: list[_Car] = []
    t = float(rng.uniform(2.0, 15.0))
    aspect = spec.height / spec.width
    while t < spec.duration_s:
        lane = int(rng.integers(0, 2))
        length, height = float(rng.uniform(3.9, 5.0)), float(rng.uniform(1.35, 1.65))
        speed = float(rng.uniform(7.0, 13.0)) * _PX_PER_M * aspect  # m/s → frame widths/s
        colour = _CAR_COLOURS[int(rng.integers(len(_CAR_COLOURS)))]
        span = length * _PX_PER_M * aspect * _LANES[lane][2]  # car length in frame widths
        direction = _LANES[lane][1]
        x0 = -span if direction > 0 else 1.0
        cars.append(_Car(t, t + (1.0 + span) / speed, x0, direction * speed, lane, length, height, colour))
        t += float(rng.uniform(10.0, 30.0))
    return cars


def _schedule_walkers(spec: StreetSpec, rng: np.random.Generator) -> list[_Walker]:
    walkers: list[_Walker] = []
    t = float(rng.uniform(0.0, 3.0))
    margin = 0.04
    while t < spec.duration_s:
        direction = 1 if rng.random() < 0.5 else -1
        speed = float(rng.uniform(0.16, 0.30))  # frame widths/s: each is in view for a few seconds
        foot_y = float(rng.uniform(0.575, 0.71))
        colours = (
            _SHIRTS[int(rng.integers(len(_SHIRTS)))],
            _TROUSERS[int(rng.integers(len(_TROUSERS)))],
            _SKIN[int(rng.integers(len(_SKIN)))],
            _HAIR[int(rng.integers(len(_HAIR)))],
        )
        x0 = -margin if direction > 0 else 1.0 + margin
        dur = (1.0 + 2 * margin) / speed
        walkers.append(_Walker(t, t + dur, x0, direction * speed, foot_y, float(rng.uniform(1.55, 1.9)), colours))
        t += float(rng.uniform(1.5, 5.0))
    return walkers


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x)), int(round(y))


def _th(px: float) -> int:
    """Line thickness that stays visible at small frame sizes."""
    return max(1, int(round(px)))


def _shade(c: BGR, k: float) -> BGR:
    return (min(255, int(c[0] * k)), min(255, int(c[1] * k)), min(255, int(c[2] * k)))


def _rect(img: NDArray[np.uint8], x0: float, y0: float, x1: float, y1: float, c: BGR) -> None:
    cv2.rectangle(img, _pt(x0, y0), _pt(x1, y1), c, -1)


def _render_background(spec: StreetSpec, rng: np.random.Generator) -> NDArray[np.uint8]:
    """The static street, drawn once: sky, shop fronts, sidewalk, road, furniture."""
    w, h = spec.width, spec.height
    m = _PX_PER_M * h
    img = np.zeros((h, w, 3), np.uint8)
    sky_rows = int(0.2 * h)
    ramp = np.linspace(0.0, 1.0, sky_rows)[:, None]
    sky = np.array([225, 185, 140]) * (1 - ramp) + np.array([240, 225, 205]) * ramp
    img[:sky_rows] = sky[:, None, :].astype(np.uint8)

    edges = [0.0, 0.25, 0.5, 0.75, 1.0]
    edges[1:4] = [e + float(rng.uniform(-0.03, 0.03)) for e in edges[1:4]]
    facades = rng.permutation(len(_FACADES))
    signs = rng.permutation(len(_SIGNS))
    awning_shop = int(rng.integers(0, 4))
    for i in range(4):
        x0, x1 = edges[i] * w, edges[i + 1] * w
        _draw_shop(img, rng, x0, x1, _FACADES[facades[i]], _SIGNS[signs[i]], i, i == awning_shop)
    for e in edges[1:4]:  # pilasters between shops
        _rect(img, e * w - 0.004 * w, 0.1 * h, e * w + 0.004 * w, _FACADE_BOTTOM * h, (150, 155, 160))

    # Sidewalk: staggered paving slabs.
    y0, y1 = _FACADE_BOTTOM * h, _CURB_Y * h
    _rect(img, 0, y0, w, y1, (178, 181, 184))
    joint = (158, 160, 164)
    rows = np.linspace(y0, y1, 6)
    for r, (ra, rb) in enumerate(itertools.pairwise(rows)):
        cv2.line(img, _pt(0, ra), _pt(w, ra), joint, _th(0.0015 * h))
        step = 0.055 * w
        for x in np.arange((r % 2) * step / 2, w, step):
            cv2.line(img, _pt(x, ra), _pt(x, rb), joint, _th(0.0015 * h))
    _rect(img, 0, y0, w, y0 + 0.006 * h, (120, 122, 125))  # shadow at the foot of the facades
    # Curb and road.
    _rect(img, 0, y1, w, _ROAD_Y * h, (205, 205, 205))
    cv2.line(img, _pt(0, _ROAD_Y * h), _pt(w, _ROAD_Y * h), (95, 95, 95), _th(0.004 * h))
    _rect(img, 0, _ROAD_Y * h + 0.002 * h, w, h, (78, 78, 80))
    cv2.line(img, _pt(0, 0.752 * h), _pt(w, 0.752 * h), (215, 215, 215), _th(0.004 * h))
    for x in np.arange(0.02 * w, w, 0.11 * w):
        _rect(img, x, (_LANE_MARK_Y - 0.004) * h, x + 0.06 * w, (_LANE_MARK_Y + 0.004) * h, (225, 225, 225))

    # Street furniture, static from the first frame (must not count as "new").
    lx, lf = 0.30 * w, 0.715 * h
    _rect(img, lx - 0.07 * m, lf - 4.6 * m, lx + 0.07 * m, lf, (60, 62, 64))
    _rect(img, lx - 0.07 * m, lf - 4.6 * m, lx + 0.7 * m, lf - 4.5 * m, (60, 62, 64))
    _rect(img, lx + 0.45 * m, lf - 4.5 * m, lx + 0.85 * m, lf - 4.3 * m, (170, 215, 230))
    bx, bf = 0.08 * w, 0.70 * h
    _rect(img, bx - 0.25 * m, bf - 0.9 * m, bx + 0.25 * m, bf, (50, 100, 40))
    _rect(img, bx - 0.28 * m, bf - 0.95 * m, bx + 0.28 * m, bf - 0.85 * m, (40, 80, 30))

    # Low-frequency shading and fine grain, so surfaces are not perfectly flat.
    low = cv2.resize(rng.normal(0.0, 4.0, (max(2, h // 48), max(2, w // 48))), (w, h), interpolation=cv2.INTER_LINEAR)
    grain = rng.normal(0.0, 1.2, (h, w))
    out = img.astype(np.float32) + (low + grain)[:, :, None].astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _draw_shop(
    img: NDArray[np.uint8],
    rng: np.random.Generator,
    x0: float,
    x1: float,
    colour: BGR,
    sign: BGR,
    index: int,
    awning: bool,
) -> None:
    """One shop front: facade, upper windows, a signboard with blocky text, window and door."""
    h = img.shape[0]
    roof = float(rng.uniform(0.03, 0.12)) * h
    bw = x1 - x0
    _rect(img, x0, roof, x1, _FACADE_BOTTOM * h, colour)
    _rect(img, x0, roof, x1, roof + 0.015 * h, _shade(colour, 0.7))  # cornice
    # Upper-floor windows.
    top, bottom = roof + 0.04 * h, 0.32 * h
    n_rows = 3 if bottom - top > 0.17 * h else 2
    n_cols = max(2, int(bw / (0.065 * img.shape[1])))
    cell_h, cell_w = (bottom - top) / n_rows, bw / n_cols
    for r in range(n_rows):
        for c in range(n_cols):
            wx0, wy0 = x0 + c * cell_w + 0.25 * cell_w, top + r * cell_h + 0.15 * cell_h
            wx1, wy1 = wx0 + 0.5 * cell_w, wy0 + 0.65 * cell_h
            _rect(img, wx0 - 2, wy0 - 2, wx1 + 2, wy1 + 2, (225, 228, 230))
            _rect(img, wx0, wy0, wx1, wy1, (95, 80, 70) if rng.random() < 0.7 else (150, 180, 200))
            _rect(img, wx0, wy0, wx0 + 0.2 * (wx1 - wx0), wy1, (125, 112, 100))  # reflection
    # Signboard with blocky "letters" (random 3x5 bitmaps).
    sx0, sx1, sy0, sy1 = x0 + 0.06 * bw, x1 - 0.06 * bw, 0.34 * h, 0.40 * h
    _rect(img, sx0, sy0, sx1, sy1, sign)
    cv2.rectangle(img, _pt(sx0, sy0), _pt(sx1, sy1), (215, 220, 225), _th(0.003 * h))
    letter_h = 0.6 * (sy1 - sy0)
    block = letter_h / 5
    n_letters = int(rng.integers(4, 9))
    text_w = n_letters * 4 * block - block
    lx = (sx0 + sx1) / 2 - text_w / 2
    ly = (sy0 + sy1) / 2 - letter_h / 2
    ink: BGR = (240, 245, 250) if sum(sign) < 400 else (20, 20, 20)
    for k in range(n_letters):
        bitmap = rng.random((5, 3)) < 0.6
        for r, c in zip(*np.nonzero(bitmap), strict=True):
            bx, by = lx + (4 * k + c) * block, ly + r * block
            _rect(img, bx, by, bx + block - 1, by + block - 1, ink)
    # Ground floor: a shop window and a door, swapped on alternate shops.
    gy0, gy1 = 0.42 * h, _FACADE_BOTTOM * h
    win = (0.06, 0.6) if index % 2 == 0 else (0.4, 0.94)
    door = (0.7, 0.88) if index % 2 == 0 else (0.12, 0.3)
    wx0, wx1 = x0 + win[0] * bw, x0 + win[1] * bw
    _rect(img, wx0 - 3, gy0 - 3, wx1 + 3, gy1 - 0.01 * h, (60, 60, 60))
    _rect(img, wx0, gy0, wx1, gy1 - 0.013 * h, (150, 128, 110))
    pts = np.array([_pt(wx0 + 0.1 * (wx1 - wx0), gy1 - 0.013 * h), _pt(wx0 + 0.3 * (wx1 - wx0), gy0),
                    _pt(wx0 + 0.42 * (wx1 - wx0), gy0), _pt(wx0 + 0.22 * (wx1 - wx0), gy1 - 0.013 * h)])  # fmt: skip
    cv2.fillPoly(img, [pts], (185, 170, 158))  # glare on the glass
    dx0, dx1 = x0 + door[0] * bw, x0 + door[1] * bw
    _rect(img, dx0, gy0 + 0.005 * h, dx1, gy1, (40, 60, 85))
    _rect(img, dx0 + 0.15 * (dx1 - dx0), gy0 + 0.015 * h, dx1 - 0.15 * (dx1 - dx0), gy0 + 0.06 * h, (120, 110, 100))
    cv2.circle(img, _pt(dx1 - 0.15 * (dx1 - dx0), (gy0 + gy1) / 2 + 0.01 * h), _th(0.004 * h), (0, 190, 230), -1)
    if awning:  # a fixed striped shop awning: a static look-alike of the stall's canopy
        ay0, ay1 = 0.402 * h, 0.43 * h
        n = 8
        for k in range(n):
            ax0 = wx0 + (wx1 - wx0) * k / n
            ax1 = wx0 + (wx1 - wx0) * (k + 1) / n
            _rect(img, ax0, ay0, ax1, ay1, (60, 130, 40) if k % 2 == 0 else (230, 235, 235))


def _draw_person(
    img: NDArray[np.uint8],
    x: float,
    foot: float,
    height: float,
    colours: tuple[BGR, BGR, BGR, BGR],
    phase: float,
    swing: float,
) -> None:
    """A simple walker: legs and arms swing with `phase`; `swing` scales the motion."""
    shirt, trousers, skin, hair = colours
    s = height
    lw = _th(0.085 * s)
    cv2.ellipse(img, _pt(x, foot), (_th(0.14 * s), _th(0.025 * s)), 0, 0, 360, (110, 112, 115), -1)  # shadow
    hip = foot - 0.47 * s
    stride = 0.13 * s * swing * math.sin(phase) + 0.04 * s  # + a stance, so standing legs part
    cv2.line(img, _pt(x, hip), _pt(x + stride, foot), _shade(trousers, 0.8), lw)
    cv2.line(img, _pt(x, hip), _pt(x - stride, foot), trousers, lw)
    shoulder = foot - 0.8 * s
    arm = 0.1 * s * swing * math.sin(phase)
    cv2.line(img, _pt(x, shoulder), _pt(x - arm, hip + 0.03 * s), _shade(shirt, 0.8), _th(0.055 * s))
    cv2.ellipse(img, _pt(x, (shoulder + hip) / 2), (_th(0.13 * s), _th((hip - shoulder) / 2 + 0.03 * s)),
                0, 0, 360, shirt, -1)  # fmt: skip
    cv2.line(img, _pt(x, shoulder), _pt(x + arm, hip + 0.03 * s), shirt, _th(0.055 * s))
    r = 0.07 * s
    head = foot - s + r
    cv2.circle(img, _pt(x, head), _th(r), skin, -1, cv2.LINE_AA)
    cv2.ellipse(img, _pt(x, head - 0.25 * r), (_th(r), _th(0.8 * r)), 0, 180, 360, hair, -1, cv2.LINE_AA)


def _draw_car(
    img: NDArray[np.uint8], x: float, foot: float, length: float, height: float, colour: BGR, direction: int
) -> None:
    """A side view of a car; `x` is its left end, `direction` where it faces."""
    L, H = length, height
    x1 = x + L
    cv2.ellipse(img, _pt(x + L / 2, foot), (_th(0.52 * L), _th(0.06 * H)), 0, 0, 360, (45, 45, 47), -1)  # shadow
    body_top, body_bottom = foot - 0.58 * H, foot - 0.14 * H
    _rect(img, x, body_top, x1, body_bottom, colour)
    _rect(img, x, body_bottom - 0.12 * H, x1, body_bottom, _shade(colour, 0.75))  # sill
    # Cabin, drawn facing right (windscreen sloping to the front), mirrored for left.
    top = foot - H
    cabin = np.array([_pt(x + 0.08 * L, body_top), _pt(x + 0.25 * L, top),
                      _pt(x1 - 0.38 * L, top), _pt(x1 - 0.14 * L, body_top)])  # fmt: skip
    if direction < 0:
        cabin[:, 0] = int(round(2 * x + L)) - cabin[:, 0]
    cv2.fillPoly(img, [cabin], colour, cv2.LINE_AA)
    glass = cabin.astype(np.float32)
    centre = glass.mean(axis=0)
    glass = (centre + (glass - centre) * np.array([0.86, 0.72])).astype(np.int32)
    cv2.fillPoly(img, [glass], (95, 75, 60), cv2.LINE_AA)
    cv2.line(img, _pt(centre[0], top + 0.08 * H), _pt(centre[0], body_top), colour, _th(0.04 * H))  # B-pillar
    # Lights and wheels.
    front, rear = (x1, x) if direction > 0 else (x, x1)
    lw = 0.05 * L
    _rect(img, front - lw if direction > 0 else front, body_top + 0.06 * H,
          front if direction > 0 else front + lw, body_top + 0.14 * H, (180, 235, 250))  # fmt: skip
    _rect(img, rear if direction > 0 else rear - lw, body_top + 0.06 * H,
          rear + lw if direction > 0 else rear, body_top + 0.14 * H, (30, 30, 200))  # fmt: skip
    r = 0.2 * H
    for wx in (x + 0.2 * L, x + 0.8 * L):
        cv2.circle(img, _pt(wx, foot - r), _th(r), (25, 25, 25), -1, cv2.LINE_AA)
        cv2.circle(img, _pt(wx, foot - r), _th(0.5 * r), (160, 160, 165), -1, cv2.LINE_AA)


def _draw_stall(img: NDArray[np.uint8], cx: float, foot: float, m: float) -> None:
    """A market stall: table with crates of produce under a striped umbrella.

    Everything stays within ±_STALL_HALF_W m of `cx` and below _STALL_TOP m,
    which is what `demo_truth` reports as the box.
    """
    cv2.ellipse(img, _pt(cx, foot - 0.04 * m), (_th(1.1 * m), _th(0.04 * m)), 0, 0, 360, (120, 122, 125), -1)
    top = foot - 0.8 * m
    for lx in (cx - 0.85 * m, cx + 0.8 * m):  # table legs
        _rect(img, lx, top, lx + 0.06 * m, foot, (40, 55, 75))
    _rect(img, cx - 0.95 * m, top - 0.06 * m, cx + 0.95 * m, top, (60, 90, 130))  # table top
    # A cloth hanging in front of the table, in two colours.
    cloth_bottom = foot - 0.28 * m
    for k in range(6):
        c0 = cx - 0.95 * m + k * (1.9 * m / 6)
        _rect(img, c0, top, c0 + 1.9 * m / 6, cloth_bottom, (160, 60, 30) if k % 2 == 0 else (210, 200, 190))
    # Crates heaped with produce of several colours.
    produce: list[BGR] = [(30, 30, 210), (20, 140, 245), (30, 210, 230), (40, 170, 60), (120, 40, 110)]
    crate_w = 1.8 * m / 5
    for k, colour in enumerate(produce):
        c0 = cx - 0.9 * m + k * crate_w
        crate_top = top - 0.06 * m - 0.22 * m
        _rect(img, c0 + 1, crate_top, c0 + crate_w - 1, top - 0.06 * m, (70, 140, 185))
        fr = 0.07 * m
        for y, xs in ((crate_top - 0.3 * fr, (0.2, 0.5, 0.8)), (crate_top - 1.5 * fr, (0.35, 0.65))):
            for f in xs:
                cv2.circle(img, _pt(c0 + f * crate_w, y), _th(fr), colour, -1, cv2.LINE_AA)
    # Umbrella: pole, striped canopy (wedges from the apex) and a valance.
    apex, rim = foot - _STALL_TOP * m, foot - 1.9 * m
    _rect(img, cx - 0.04 * m, apex, cx + 0.04 * m, top - 0.06 * m, (90, 90, 95))
    n = 8
    hw = _STALL_HALF_W * m
    for k in range(n):
        a, b = cx - hw + 2 * hw * k / n, cx - hw + 2 * hw * (k + 1) / n
        colour = (40, 40, 210) if k % 2 == 0 else (235, 240, 240)
        cv2.fillPoly(img, [np.array([_pt(cx, apex), _pt(a, rim), _pt(b, rim)])], colour, cv2.LINE_AA)
        _rect(img, a, rim, b, rim + 0.12 * m, _shade(colour, 0.85))
