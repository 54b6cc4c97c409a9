"""Deterministic scenario videos for the haze, night-construction and tamper analyzers.

Why: the dust, night-construction and camera-tamper checks need clips in
which the user-visible event (a dust plume over a building site, a sun → cloud
change, a site working at night, a bumped or sprayed camera) happens at known
times, without shipping footage. Everything is built on the street of
`detector.synthetic.demo` (same look, same walkers and cars for a seed): the right half of
the facades is replaced by a fenced construction site — a concrete frame under
construction, a tower crane, a strip of bare ground with a sand heap, bricks
and a covered pile, an excavator and a dump truck — behind blue-and-white
hoarding along the sidewalk. `SITE_ZONE` is that site as a zone polygon.

Events (all optional, times in seconds of video):

* **dust**: a brownish-grey, textured, drifting plume rises from the excavator,
  builds up over `dust_build_s`, holds `dust_hold_s`, fades over `dust_fade_s`;
* **sun → cloud**: the scene starts in direct sun (warm light, bluish cast
  shadows) and from `cloud_s` the sun goes behind a cloud over `cloud_ramp_s`
  (light drops, shadows vanish, colours flatten);
* **night**: a dark bluish scene lit by a street lamp, shop windows, a small
  security lamp on the site gate and car head/tail lights, with sensor noise;
* **works**: the machinery moves (digging cycle, truck shuttling); at night
  the site floodlights and the machines' lights are on meanwhile;
* **camera bump**: from `bump_s` the whole view is shifted by `bump_px` for good;
* **lens covered**: from `cover_s` the lens is sprayed over with dark paint;
* **defocus**: from `defocus_s` the view is out of focus;
* **view restored**: from `restore_s` the camera is back on its preset, its lens
  clean and in focus (bump, paint and defocus end);
* **stall**: the demo's vendor stall on the sidewalk from `stall_arrive_s` to
  `stall_leave_s` (a problem to find — or not, while the view is off).

`generate_scenario(path, spec)` encodes H.264 MP4 exactly like the demo (PyAV,
libx264, yuv420p, fixed GOP, one x264 thread: same spec, same bytes) and
returns a `ScenarioTruth` with the intervals of each event. `SCENARIOS` names
the specs the tests and the bench use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.synthetic.demo import (
    _FACADE_BOTTOM,
    _LANES,
    _PUSH_S,
    _PX_PER_M,
    BGR,
    StreetSpec,
    VideoSpec,
    _pt,
    _rect,
    _Scene,
    _th,
    encode_atomically,
)

#: Bump whenever drawing or encoding changes, so cached files are regenerated.
_VERSION = 1

#: Normalised polygon of the construction site (purpose `construction_site`).
SITE_ZONE: list[tuple[float, float]] = [(0.53, 0.08), (0.99, 0.08), (0.99, 0.55), (0.53, 0.55)]

# Site layout, normalised (y grows downwards).
_SITE_X0 = 0.52  # the site replaces the facades right of this
_GROUND_Y0, _GROUND_Y1 = 0.40, 0.50  # bare ground visible above the hoarding
_FENCE_Y0 = 0.50  # hoarding from here down to the sidewalk (_FACADE_BOTTOM)
_SITE_SCALE = 0.8  # the site is across the street: things look smaller than on the sidewalk
_EXCAVATOR_X, _EXCAVATOR_FOOT = 0.66, 0.497
_TRUCK_FOOT = 0.478
_TRUCK_X = (0.70, 0.80)  # the truck's rear end shuttles between these while the site works
_LAMP_HEAD = (0.30, 0.715)  # street lamp of the demo: pole x, foot y (head computed from metres)
_FLOOD_POLES = (0.575, 0.955)  # site floodlight poles (x)
_FLOOD_TOP = 0.20
_GATE_LAMP = (0.965, 0.485)  # small security lamp over the site gate
_DUST_SOURCE = (0.70, 0.47)
_DUST_AIR: BGR = (150, 166, 184)  # brownish grey
_PAINT: BGR = (36, 38, 42)  # spray paint on the lens


@dataclass(frozen=True, slots=True)
class ScenarioSpec(VideoSpec):
    """Everything that determines a scenario video; equal specs give identical bytes.

    `start` is the wall-clock time of the first frame (ISO 8601 with offset):
    it only feeds `ScenarioTruth.ts`, which tests use to stamp frames.
    `bump_px` is the permanent shift (x, y) in pixels at this `width`.
    """

    seed: int = 0
    width: int = 640
    height: int = 360
    fps: int = 5
    duration_s: float = 300.0
    gop_s: float = 2.0
    bitrate: int | None = None
    start: str = "2025-06-02T10:00:00+08:00"
    pedestrians: bool = True
    cars: bool = True
    night: bool = False
    sunny: bool = True
    cloud_s: float | None = None
    cloud_ramp_s: float = 40.0
    dust_s: float | None = None
    dust_build_s: float = 60.0
    dust_hold_s: float = 150.0
    dust_fade_s: float = 60.0
    dust_density: float = 0.85
    works: tuple[float, float] | None = None
    bump_s: float | None = None
    bump_px: tuple[int, int] = (14, 8)
    cover_s: float | None = None
    defocus_s: float | None = None
    restore_s: float | None = None
    stall_arrive_s: float | None = None
    stall_leave_s: float | None = None
    version: ClassVar[int] = _VERSION

    def __post_init__(self) -> None:
        for name in ("duration_s", "gop_s", "cloud_s", "cloud_ramp_s", "dust_s", "dust_build_s", "dust_hold_s",
                     "dust_fade_s", "dust_density", "bump_s", "cover_s", "defocus_s", "restore_s", "stall_arrive_s",
                     "stall_leave_s"):  # fmt: skip
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        if self.works is not None:
            object.__setattr__(self, "works", (float(self.works[0]), float(self.works[1])))
        object.__setattr__(self, "bump_px", (int(self.bump_px[0]), int(self.bump_px[1])))
        self._check_video()
        datetime.fromisoformat(self.start)  # raises on a bad start


@dataclass(frozen=True, slots=True)
class ScenarioTruth:
    """Ground truth of one scenario: half-open intervals [a, b) in seconds, per event.

    Events: `dust` (any plume visible), `dust_built` (the plume at full
    strength), `cloud_change` (the sun → cloud ramp), `cloudy` (after it),
    `night`, `works` (machinery moving), `site_lights` (works at night),
    `moved` (the view is shifted), `covered` (lens sprayed over), `defocused`,
    `stall` (the vendor stall stands still on the sidewalk).
    """

    spec: ScenarioSpec
    fps: int
    frame_count: int
    site_zone: tuple[tuple[float, float], ...]
    events: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)

    def active(self, event: str, t: float) -> bool:
        """Whether `event` is going on at `t` seconds."""
        return any(a <= t < b for a, b in self.events.get(event, ()))

    def near(self, event: str, t: float, margin_s: float) -> bool:
        """Whether `t` lies within `margin_s` of an interval of `event` (or inside it)."""
        return any(a - margin_s <= t < b + margin_s for a, b in self.events.get(event, ()))

    def ts(self, t: float) -> datetime:
        """Wall-clock time of video time `t` (aware)."""
        return datetime.fromisoformat(self.spec.start) + timedelta(seconds=t)


#: Named specs used by the tests and the bench (a few minutes each, 640x360 at 5 fps).
SCENARIOS: dict[str, ScenarioSpec] = {
    # sunny; the machines work from 30 s; the plume builds 60..100 s, holds to 220, fades to 260; clear to 320
    "dust": ScenarioSpec(
        seed=11, duration_s=320, works=(30, 280), dust_s=60, dust_build_s=40, dust_hold_s=120, dust_fade_s=40
    ),
    # sunny until 60 s, the sun goes behind a cloud over 40 s, overcast to the end
    "sun_cloud": ScenarioSpec(seed=12, duration_s=180, cloud_s=60),
    # 23:10, the site idle (its security lamp only) until 120 s, then floodlights on and the machines working
    "night_works": ScenarioSpec(
        seed=13, duration_s=240, night=True, works=(120, 240), start="2025-06-02T23:10:00+08:00"
    ),
    # people and cars passing throughout, a cloud at 130..170 s, the camera knocked at 200 s, its lens sprayed at 260 s
    "tamper": ScenarioSpec(seed=15, duration_s=300, cloud_s=130, bump_s=200, cover_s=260),
    # the same street going out of focus at 140 s
    "defocus": ScenarioSpec(seed=16, duration_s=190, defocus_s=140),
}


def scenario_truth(spec: ScenarioSpec) -> ScenarioTruth:
    """The truth `generate_scenario(…, spec)` returns, without rendering anything."""
    end = spec.duration_s
    ev: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, a: float, b: float) -> None:
        a, b = max(0.0, a), min(end, b)
        if b > a:
            ev.setdefault(name, []).append((a, b))

    if spec.dust_s is not None:
        d = spec.dust_s
        add("dust", d, d + spec.dust_build_s + spec.dust_hold_s + spec.dust_fade_s)
        add("dust_built", d + spec.dust_build_s, d + spec.dust_build_s + spec.dust_hold_s)
    if spec.cloud_s is not None and spec.sunny and not spec.night:
        add("cloud_change", spec.cloud_s, spec.cloud_s + spec.cloud_ramp_s)
        add("cloudy", spec.cloud_s + spec.cloud_ramp_s, end)
    if spec.night:
        add("night", 0.0, end)
    if spec.works is not None:
        add("works", *spec.works)
        if spec.night:
            add("site_lights", *spec.works)
    back = end if spec.restore_s is None else spec.restore_s
    if spec.bump_s is not None and spec.bump_px != (0, 0):
        add("moved", spec.bump_s, back)
    if spec.cover_s is not None:
        add("covered", spec.cover_s + _COVER_RAMP_S, back)
    if spec.defocus_s is not None:
        add("defocused", spec.defocus_s + _DEFOCUS_RAMP_S, back)
    if spec.stall_arrive_s is not None:
        add("stall", spec.stall_arrive_s + _PUSH_S, end if spec.stall_leave_s is None else spec.stall_leave_s)
    return ScenarioTruth(
        spec=spec,
        fps=spec.fps,
        frame_count=spec.frame_count,
        site_zone=tuple(SITE_ZONE),
        events={k: tuple(v) for k, v in ev.items()},
    )


def generate_scenario(path: Path, spec: ScenarioSpec) -> ScenarioTruth:
    """Renders and encodes `spec` as H.264 MP4 at `path` (atomically replaced)."""
    encode_atomically(ScenarioRenderer(spec).frames(), path, spec)  # type: ignore[arg-type]  # StreetSpec's fields
    return scenario_truth(spec)


def ensure_scenario(cache_dir: Path, spec: ScenarioSpec) -> tuple[Path, ScenarioTruth]:
    """Path of the cached video for `spec` (generated only when missing) and its truth."""
    path = Path(cache_dir) / f"scenario-{spec.key()}.mp4"
    if not path.exists():
        generate_scenario(path, spec)
    return path, scenario_truth(spec)


# --------------------------------------------------------------------------- rendering

_COVER_RAMP_S = 4.0
_GAIN_ONE = 128.0  # daylight light maps: uint8 multipliers, 128 = 1.0
_NIGHT_ONE = 64.0  # night light maps: 64 = 1.0 (lamp pools may exceed 2x the ambient scene)
_NOISE_OFS = 8
_DEFOCUS_RAMP_S = 5.0
_BUMP_RAMP_S = 0.6
_DIG_PERIOD_S = 16.0
_TRUCK_PERIOD_S = 70.0


def _smooth(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


class ScenarioRenderer:
    """Renders the frames of one spec: the demo street, the site, then light and camera effects."""

    def __init__(self, spec: ScenarioSpec) -> None:
        self.spec = spec
        street = StreetSpec(
            seed=spec.seed,
            width=spec.width,
            height=spec.height,
            fps=spec.fps,
            duration_s=spec.duration_s,
            gop_s=spec.gop_s,
            stall_arrive_s=spec.stall_arrive_s,
            stall_leave_s=spec.stall_leave_s,
            pedestrians=spec.pedestrians,
            cars=spec.cars,
            lighting_drift=False,
            cloud_s=None,
        )
        self.scene = _Scene(street)
        # A separate generator: the street keeps the demo's traffic for the same seed.
        rng = np.random.default_rng([spec.seed, 7919])
        w, h = spec.width, spec.height
        self.m = _PX_PER_M * h * _SITE_SCALE  # pixels per metre on the site
        self.site_bg = _render_site(self.scene.background, rng, spec)
        self.scene.background = self.site_bg.copy()
        qh, qw = max(8, h // 4), max(8, w // 4)
        self._q = (qw, qh)
        self._dust_env = _plume_envelope(qw, qh)
        self._dust_tex = [_noise(rng, (2 * qh, 3 * qw), scale) for scale in (6, 14)]
        air = np.float32(_DUST_AIR) + _noise(rng, (h, w), 40)[..., None] * 10.0  # the dust's colour varies a bit
        self._air = np.clip(air, 0, 255).astype(np.uint8)
        self._sun, self._shade_cloud = _sun_maps(w, h)
        # night sensor noise, offset by +_NOISE_OFS so it fits uint8 (removed with a saturating subtract)
        noise = [rng.normal(_NOISE_OFS, 3.2, (h, w, 3)) for _ in range(4)]
        self._night_noise = [np.clip(n, 0, 2 * _NOISE_OFS).astype(np.uint8) for n in noise]
        self._spray = np.clip(0.9 + 0.08 * _noise(rng, (h, w), 30), 0.0, 0.985).astype(np.float32)
        self._cache: dict[object, NDArray[np.uint8]] = {}

    def frames(self) -> Iterator[NDArray[np.uint8]]:
        for i in range(self.spec.frame_count):
            yield self.render(i)

    # -------------------------------------------------------------- per frame

    def render(self, i: int) -> NDArray[np.uint8]:
        spec = self.spec
        t = i / spec.fps
        bg = self.site_bg.copy()
        working = spec.works is not None and spec.works[0] <= t < spec.works[1]
        lights = working and spec.night
        self._draw_machinery(bg, t, working, lights)
        level = self.dust_level(t)
        if level > 0:
            self._dust(bg, t, level)
        self.scene.background = bg
        img = self.scene.render(i)
        img = self._night(img, t, lights) if spec.night else self._daylight(img, t)
        return self._camera(img, t)

    def dust_level(self, t: float) -> float:
        """Strength of the plume source at `t` (0..1)."""
        s = self.spec
        if s.dust_s is None or t < s.dust_s:
            return 0.0
        u = t - s.dust_s
        if u < s.dust_build_s:
            return _smooth(u / s.dust_build_s)
        u -= s.dust_build_s
        if u < s.dust_hold_s:
            return 1.0
        u -= s.dust_hold_s
        return 1.0 - _smooth(u / s.dust_fade_s) if u < s.dust_fade_s else 0.0

    def cloud_level(self, t: float) -> float:
        s = self.spec
        if not s.sunny:
            return 1.0
        if s.cloud_s is None:
            return 0.0
        return _smooth((t - s.cloud_s) / max(s.cloud_ramp_s, 1e-6))

    def _machine_pose(self, t: float, working: bool) -> tuple[float, float, float]:
        """Boom angle, arm angle (degrees) and truck rear x (normalised)."""
        if not working:
            return 25.0, -95.0, _TRUCK_X[0]
        assert self.spec.works is not None
        u = t - self.spec.works[0]
        ph = 2 * math.pi * u / _DIG_PERIOD_S
        boom = 30.0 + 18.0 * math.sin(ph)
        arm = -80.0 + 35.0 * math.sin(ph + 1.2)
        truck = _TRUCK_X[0] + (_TRUCK_X[1] - _TRUCK_X[0]) * (0.5 - 0.5 * math.cos(2 * math.pi * u / _TRUCK_PERIOD_S))
        return boom, arm, truck

    def _draw_machinery(self, img: NDArray[np.uint8], t: float, working: bool, lights: bool) -> None:
        w, h = self.spec.width, self.spec.height
        boom, arm, truck_x = self._machine_pose(t, working)
        _draw_truck(img, truck_x * w, _TRUCK_FOOT * h, self.m)
        _draw_excavator(img, _EXCAVATOR_X * w, _EXCAVATOR_FOOT * h, self.m, boom, arm)
        # the hoarding hides the machines' lower parts
        img[int(_FENCE_Y0 * h) : int(_FACADE_BOTTOM * h), int(_SITE_X0 * w) :] = self.site_bg[
            int(_FENCE_Y0 * h) : int(_FACADE_BOTTOM * h), int(_SITE_X0 * w) :
        ]

    def _dust(self, img: NDArray[np.uint8], t: float, level: float) -> None:
        """Alpha-blends the textured, drifting plume over the site (and a little beyond)."""
        qw, qh = self._q
        env = self._dust_env
        # the plume's axis sways with gusts: shift the envelope sideways
        sway = 0.04 * math.sin(2 * math.pi * t / 47.0) + 0.02 * math.sin(2 * math.pi * t / 13.0)
        m = np.float32([[1, 0, sway * qw], [0, 1, 0]])
        env = cv2.warpAffine(env, m, (qw, qh), borderMode=cv2.BORDER_CONSTANT)
        tex = np.ones((qh, qw), np.float32)
        for k, (src, vx, vy) in enumerate(zip(self._dust_tex, (2.2, 1.1), (-0.9, -0.4), strict=True)):
            th, tw = src.shape
            ox = (vx * t) % (tw - qw)
            oy = (tw + vy * t) % (th - qh)  # rising
            mm = np.float32([[1, 0, -ox], [0, 1, -oy]])
            layer = cv2.warpAffine(src, mm, (qw, qh), borderMode=cv2.BORDER_WRAP)
            tex += (0.4 if k == 0 else 0.3) * layer
        density = np.clip(env * np.maximum(tex, 0.05) * (level * self.spec.dust_density), 0.0, 0.92)
        alpha = cv2.resize(density, (self.spec.width, self.spec.height), interpolation=cv2.INTER_LINEAR)
        ys, xs = np.nonzero(alpha[::4, ::4] > 0.004)  # blend only where the plume is
        if len(ys):
            y0, y1 = max(0, 4 * int(ys.min()) - 4), min(img.shape[0], 4 * int(ys.max()) + 8)
            x0, x1 = max(0, 4 * int(xs.min()) - 4), min(img.shape[1], 4 * int(xs.max()) + 8)
            a = np.ascontiguousarray(alpha[y0:y1, x0:x1])
            roi = np.ascontiguousarray(img[y0:y1, x0:x1])
            air = np.ascontiguousarray(self._air[y0:y1, x0:x1])
            img[y0:y1, x0:x1] = cv2.blendLinear(roi, air, 1.0 - a, a)

    def _daylight(self, img: NDArray[np.uint8], t: float) -> NDArray[np.uint8]:
        c = round(self.cloud_level(t), 3)
        drift = round(1.0 + 0.04 * math.sin(2 * math.pi * t / 400.0 + self.spec.seed), 3)
        key = ("day", c, drift)
        lm = self._cache.get(key)
        if lm is None:  # light multipliers in 1/_GAIN_ONE steps: integer maths keeps rendering cheap
            f = cv2.addWeighted(self._sun, 1.0 - c, self._shade_cloud, c, 0.0) * np.float32(drift * _GAIN_ONE)
            lm = np.clip(f + 0.5, 0, 255).astype(np.uint8)
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[key] = lm
        out = cv2.multiply(img, lm, scale=1.0 / _GAIN_ONE)
        if c > 0:  # overcast light flattens colours a little
            s = 0.2 * c
            out = cv2.transform(out, np.full((3, 3), s / 3, np.float32) + np.eye(3, dtype=np.float32) * (1 - s))
        return out

    def _night(self, img: NDArray[np.uint8], t: float, lights: bool) -> NDArray[np.uint8]:
        w, h = self.spec.width, self.spec.height
        mph = _PX_PER_M * h
        key = ("night", lights)
        cached = self._cache.get(key)
        if cached is None:
            lm = np.clip(_night_map(w, h, self.m, lights) * _NIGHT_ONE + 0.5, 0, 255).astype(np.uint8)
            col = np.zeros((h, w, 3), np.uint8)  # fixed light sources: lamps, lit windows, floodlights
            lx, lf = _LAMP_HEAD[0] * w, _LAMP_HEAD[1] * h
            _glow(col, (lx + 0.65 * mph, lf - 4.4 * mph), 0.25 * mph, (220, 240, 255), 1.0)
            _glow(col, (_GATE_LAMP[0] * w, _GATE_LAMP[1] * h), 0.12 * mph, (235, 245, 255), 1.0)
            for x0, y0, x1, y1 in _WINDOWS:
                cv2.rectangle(col, _pt(x0 * w, y0 * h), _pt(x1 * w, y1 * h), (70, 150, 200), -1)
            if lights:
                for px in _FLOOD_POLES:
                    _glow(col, (px * w, _FLOOD_TOP * h), 0.35 * mph, (245, 250, 255), 1.0)
            cached = np.stack([lm, col])
            self._cache[key] = cached
        out = cv2.multiply(img, cached[0], scale=1.0 / _NIGHT_ONE)
        cv2.add(out, cached[1], dst=out)
        if lights:  # the machines' work lights, head and tail lights move with them
            boom, _, truck_x = self._machine_pose(t, True)
            ex, ef = _EXCAVATOR_X * w, _EXCAVATOR_FOOT * h
            _glow(out, (ex + 0.55 * self.m, ef - 2.7 * self.m), 0.2 * self.m, (240, 250, 255), 1.0)
            _glow(out, _boom_tip(ex, ef, self.m, boom), 0.15 * self.m, (230, 245, 255), 0.8)
            ty = _TRUCK_FOOT * h - 1.0 * self.m
            _glow(out, (truck_x * w + 6.3 * self.m, ty), 0.25 * self.m, (225, 245, 255), 1.0)
            _glow(out, (truck_x * w + 0.1 * self.m, ty), 0.15 * self.m, (30, 30, 230), 0.9)
        if self.spec.cars:  # head and tail lights, and the beam they throw on the road ahead
            for c in self.scene.cars:
                if c.t0 <= t <= c.t1:
                    foot, direction, scale = _LANES[c.lane]
                    x = (c.x0 + c.vx * (t - c.t0)) * w  # the same geometry as demo._draw_car
                    length, height = c.length_m * mph * scale, c.height_m * mph * scale
                    y = foot * h - 0.48 * height
                    front, rear = (x + length, x) if direction > 0 else (x, x + length)
                    _beam(out, (front + direction * 0.9 * length, foot * h), 0.8 * length, 0.12 * height)
                    _glow(out, (front, y), 0.09 * height + 2, (230, 245, 255), 1.0)
                    _glow(out, (rear, y), 0.07 * height + 2, (30, 30, 220), 0.9)
        cv2.add(out, self._night_noise[int(round(t * self.spec.fps)) % len(self._night_noise)], dst=out)
        cv2.subtract(out, (_NOISE_OFS, _NOISE_OFS, _NOISE_OFS, 0), dst=out)
        return out

    def _camera(self, img: NDArray[np.uint8], t: float) -> NDArray[np.uint8]:
        s = self.spec
        w, h = s.width, s.height
        if s.restore_s is not None and t >= s.restore_s:
            return img  # back on its preset, the lens cleaned and focused
        if s.defocus_s is not None and t >= s.defocus_s:
            sigma = 0.0055 * w * _smooth((t - s.defocus_s) / _DEFOCUS_RAMP_S)
            if sigma > 0.3:
                img = cv2.GaussianBlur(img, (0, 0), sigma)
        if s.bump_s is not None and t >= s.bump_s:
            u = (t - s.bump_s) / _BUMP_RAMP_S
            k = 1.0 if u >= 1 else _smooth(u) * (1.0 + 0.3 * math.sin(math.pi * u))  # a knock, a little overshoot
            dx, dy = s.bump_px[0] * k, s.bump_px[1] * k
            img = cv2.warpAffine(img, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REFLECT)
        if s.cover_s is not None and t >= s.cover_s:
            u = _smooth((t - s.cover_s) / _COVER_RAMP_S)
            alpha = self._spray * u
            small = cv2.resize(img, (max(8, w // 8), max(8, h // 8)), interpolation=cv2.INTER_AREA)
            behind = cv2.resize(cv2.GaussianBlur(small, (0, 0), 0.004 * w), (w, h), interpolation=cv2.INTER_LINEAR)
            behind = cv2.addWeighted(img, 1.0 - u, behind, u, 0.0)  # the paint smears the view as it comes
            paint = np.empty_like(img)
            paint[:] = _PAINT
            img = cv2.blendLinear(behind, paint, 1.0 - alpha, alpha)
        return img


# ------------------------------------------------------------------- static pieces

# Lit upper-floor windows at night (normalised rectangles, left shops only).
_WINDOWS: list[tuple[float, float, float, float]] = [
    (0.05, 0.17, 0.08, 0.22), (0.17, 0.24, 0.20, 0.29), (0.33, 0.15, 0.36, 0.20), (0.41, 0.24, 0.44, 0.29),
]  # fmt: skip


def _noise(rng: np.random.Generator, shape: tuple[int, int], scale: int) -> NDArray[np.float32]:
    """Smooth zero-mean noise of unit-ish amplitude, features about `scale` pixels wide."""
    h, w = shape
    small = rng.normal(0.0, 1.0, (max(2, h // scale + 2), max(2, w // scale + 2))).astype(np.float32)
    big = cv2.resize(small, (w + 2 * scale, h + 2 * scale), interpolation=cv2.INTER_CUBIC)
    out = big[scale : scale + h, scale : scale + w]
    return (out / max(float(out.std()), 1e-6)).astype(np.float32)


def _plume_envelope(qw: int, qh: int) -> NDArray[np.float32]:
    """Mean plume density at quarter size: rises from the source, widens, bends downwind."""
    ys, xs = np.mgrid[0:qh, 0:qw].astype(np.float32)
    x, y = xs / qw, ys / qh
    sx, sy = _DUST_SOURCE
    u = np.maximum(sy - y, 0.0)  # height above the source
    centre = sx + 0.55 * u + 0.6 * u * u  # the wind blows it to the right as it rises
    sigma = 0.06 + 0.5 * u
    across = np.exp(-0.5 * ((x - centre) / sigma) ** 2)
    vertical = np.where(y <= sy, np.exp(-((u / 0.36) ** 2)), np.exp(-(((y - sy) / 0.035) ** 2)))
    return (across * vertical).astype(np.float32)


def _sun_maps(
    w: int, h: int, shadows: list[list[tuple[float, float]]] | None = None
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per-pixel BGR light multipliers: direct sun with cast shadows (normalised polygons), and overcast."""
    lit = np.ones((h, w), np.float32)
    shadows = shadows or [
        [(0.0, 0.80), (0.42, 0.80), (0.30, 1.0), (0.0, 1.0)],  # a building behind the camera, on the road
        [(0.0, 0.04), (0.20, 0.04), (0.09, 0.46), (0.0, 0.46)],  # neighbour's shadow on the left facades
        [(0.52, 0.55), (1.0, 0.55), (1.0, 0.578), (0.52, 0.578)],  # the hoarding's shadow on the sidewalk
        [(0.61, 0.40), (0.80, 0.40), (0.86, 0.50), (0.67, 0.50)],  # the concrete frame's shadow on the ground
        [(0.88, 0.10), (0.96, 0.10), (0.92, 0.40), (0.84, 0.40)],  # the crane/scaffold shadow on the frame
        [(0.40, 0.56), (0.47, 0.56), (0.44, 0.72), (0.37, 0.72)],  # the lamp post's wide shadow... a tree's
    ]
    for poly in shadows:
        pts = np.round(np.asarray(poly) * [w, h]).astype(np.int32)
        cv2.fillPoly(lit, [pts], 0.0)
    lit = cv2.GaussianBlur(lit, (0, 0), max(1.0, 0.004 * w))[..., None]
    sunlit = np.float32([0.93, 1.0, 1.07]) * 1.12  # warm direct light
    shade = np.float32([1.08, 1.0, 0.9]) * 0.52  # bluish skylight
    sun = lit * sunlit + (1.0 - lit) * shade
    cloud = np.empty((h, w, 3), np.float32)
    cloud[:] = np.float32([1.03, 1.0, 0.97]) * 0.68
    return sun.astype(np.float32), cloud


def _night_map(w: int, h: int, m_site: float, site_lights: bool) -> NDArray[np.float32]:
    """Per-pixel BGR light multipliers at night: bluish ambient plus pools of lamp light."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = xs / w, ys / h
    amb = np.float32([0.15, 0.12, 0.10])
    pools = np.zeros((h, w), np.float32)
    warm = np.zeros((h, w), np.float32)
    # street lamp: a pool on the sidewalk and road under its head
    lx = _LAMP_HEAD[0] + 0.65 * _PX_PER_M * h / w
    pools += 0.85 * np.exp(-(((x - lx) / 0.13) ** 2 + ((y - 0.68) / 0.10) ** 2))
    # lit shop windows spill light onto the left sidewalk
    warm += 0.30 * np.exp(-(((y - 0.52) / 0.06) ** 2)) * (x < _SITE_X0) * (0.6 + 0.4 * np.cos(9 * x) ** 2)
    # the site's security lamp: a small pool at the gate
    pools += 0.45 * np.exp(-(((x - _GATE_LAMP[0]) / 0.035) ** 2 + ((y - _GATE_LAMP[1] - 0.03) / 0.05) ** 2))
    if site_lights:  # floodlights wash the ground, the machines and the lower floors
        for px in _FLOOD_POLES:
            d = ((x - (px + 0.5 * (0.76 - px))) / 0.22) ** 2 + ((y - 0.44) / 0.10) ** 2
            pools += 0.75 * np.exp(-d) * (x > _SITE_X0) * (y < _FACADE_BOTTOM)
    light = amb + pools[..., None] * np.float32([0.8, 0.92, 1.0]) + warm[..., None] * np.float32([0.5, 0.8, 1.0])
    return light.astype(np.float32)


def _glow(
    img: NDArray[np.uint8], c: tuple[float, float], r: float, colour: tuple[int, int, int], strength: float
) -> None:
    """Adds a light source in place (saturating): a bright core and a soft halo."""
    h, w = img.shape[:2]
    r = max(r, 1.0)
    x0, x1 = max(0, int(c[0] - 5 * r)), min(w, int(c[0] + 5 * r) + 1)
    y0, y1 = max(0, int(c[1] - 5 * r)), min(h, int(c[1] + 5 * r) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.ogrid[y0:y1, x0:x1]
    d2 = ((xs - c[0]) ** 2 + (ys - c[1]) ** 2).astype(np.float32) / np.float32(r * r)
    k = strength * (np.exp(-d2) * 1.6 + 0.35 * np.exp(-d2 / 6.0))
    add = np.clip(k[..., None] * np.float32(colour), 0, 255).astype(np.uint8)
    roi = img[y0:y1, x0:x1]
    cv2.add(roi, add, dst=roi)


def _beam(img: NDArray[np.uint8], c: tuple[float, float], rx: float, ry: float) -> None:
    """Headlight beam on the road: brightens what it falls on by up to a third, softly."""
    h, w = img.shape[:2]
    x0, x1 = max(0, int(c[0] - 1.5 * rx)), min(w, int(c[0] + 1.5 * rx) + 1)
    y0, y1 = max(0, int(c[1] - 3 * ry)), min(h, int(c[1] + 3 * ry) + 1)
    if x0 >= x1 or y0 >= y1 or rx < 1 or ry < 1:
        return
    ys, xs = np.ogrid[y0:y1, x0:x1]
    d2 = ((xs - c[0]) / rx) ** 2 + ((ys - c[1]) / ry) ** 2
    gain = (1.0 + 0.35 * np.exp(-d2 * 1.5)).astype(np.float32)
    roi = img[y0:y1, x0:x1]
    roi[:] = cv2.convertScaleAbs(roi.astype(np.float32) * gain[..., None])


def _render_site(street: NDArray[np.uint8], rng: np.random.Generator, spec: ScenarioSpec) -> NDArray[np.uint8]:
    """The street with the right-hand facades replaced by the construction site (static parts)."""
    img = street.copy()
    w, h = spec.width, spec.height
    x0 = _SITE_X0 * w
    # sky, and hazy distant blocks behind the site
    sky_rows = int(_GROUND_Y0 * h)
    ramp = np.linspace(0.0, 1.0, sky_rows)[:, None]
    sky = np.array([225, 185, 140]) * (1 - ramp) + np.array([240, 225, 205]) * ramp
    img[:sky_rows, int(x0) :] = sky[:, None, :].astype(np.uint8)
    for bx0, bx1, top in ((0.52, 0.62, 0.24), (0.62, 0.70, 0.18), (0.90, 1.0, 0.21)):
        _rect(img, bx0 * w, top * h, bx1 * w, _GROUND_Y0 * h, (190, 180, 170))
        for wy in np.arange(top + 0.02, _GROUND_Y0 - 0.02, 0.035):
            for wx in np.arange(bx0 + 0.01, bx1 - 0.015, 0.02):
                _rect(img, wx * w, wy * h, (wx + 0.008) * w, (wy + 0.014) * h, (165, 155, 150))
    # bare ground
    _rect(img, x0, _GROUND_Y0 * h, w, _FENCE_Y0 * h, (78, 104, 128))
    # the concrete frame under construction: slabs, columns, dark openings, a green safety net
    fx0, fx1, ftop = 0.62 * w, 0.90 * w, 0.10 * h
    floors = np.linspace(ftop, _GROUND_Y0 * h + 0.01 * h, 6)
    _rect(img, fx0, ftop, fx1, _GROUND_Y0 * h, (62, 64, 70))
    n_cols = 7
    for k in range(n_cols + 1):
        cx = fx0 + (fx1 - fx0) * k / n_cols
        _rect(img, cx - 0.004 * w, ftop, cx + 0.004 * w, _GROUND_Y0 * h, (168, 170, 172))
    for fy in floors:
        _rect(img, fx0 - 0.006 * w, fy - 0.006 * h, fx1 + 0.006 * w, fy + 0.006 * h, (188, 190, 192))
    for fy in floors[1:]:  # things stored on the floors
        for _ in range(3):
            bx = float(rng.uniform(fx0 + 5, fx1 - 25))
            _rect(img, bx, fy - 0.02 * h, bx + float(rng.uniform(8, 22)), fy - 0.006 * h, (120, 140, 160))
    net = img[int(ftop) : int(floors[3]), int(fx1 - 0.07 * w) : int(fx1 + 0.006 * w)].astype(np.float32)
    net = net * 0.35 + np.float32([55, 125, 60]) * 0.65
    img[int(ftop) : int(floors[3]), int(fx1 - 0.07 * w) : int(fx1 + 0.006 * w)] = net.astype(np.uint8)
    for sx in np.arange(fx0 - 0.02 * w, fx0 + 0.001, 0.01 * w):  # scaffolding on the left side
        cv2.line(img, _pt(sx, ftop + 0.03 * h), _pt(sx, _GROUND_Y0 * h), (70, 130, 170), 1)
    for sy in np.arange(ftop + 0.03 * h, _GROUND_Y0 * h, 0.03 * h):
        cv2.line(img, _pt(fx0 - 0.022 * w, sy), _pt(fx0, sy), (70, 130, 170), 1)
    # the tower crane: lattice mast, jib, counter-jib with weights, hook
    yellow: BGR = (20, 185, 230)
    cxm, mast_w = 0.565 * w, 0.012 * w
    for e in (cxm - mast_w / 2, cxm + mast_w / 2):
        cv2.line(img, _pt(e, 0.04 * h), _pt(e, _GROUND_Y0 * h), yellow, _th(0.003 * h))
    for zy in np.arange(0.05 * h, _GROUND_Y0 * h, 0.02 * h):
        cv2.line(img, _pt(cxm - mast_w / 2, zy), _pt(cxm + mast_w / 2, zy + 0.02 * h), yellow, 1)
    cv2.line(img, _pt(0.53 * w, 0.05 * h), _pt(0.985 * w, 0.05 * h), yellow, _th(0.005 * h))
    cv2.line(img, _pt(cxm, 0.02 * h), _pt(0.93 * w, 0.05 * h), yellow, 1)
    _rect(img, 0.535 * w, 0.05 * h, 0.55 * w, 0.075 * h, (110, 110, 115))
    cv2.line(img, _pt(0.80 * w, 0.05 * h), _pt(0.80 * w, 0.22 * h), (40, 40, 40), 1)
    _rect(img, 0.795 * w, 0.22 * h, 0.806 * w, 0.235 * h, yellow)
    # materials: a sand heap, brick pallets, rebar bundles, a pile under a blue tarp
    gy = _FENCE_Y0 * h
    cv2.fillPoly(img, [np.array([_pt(0.54 * w, gy), _pt(0.585 * w, 0.43 * h), _pt(0.62 * w, gy)])], (120, 170, 205))
    for k in range(3):
        bx = 0.90 * w + k * 0.028 * w
        _rect(img, bx, 0.455 * h, bx + 0.024 * w, gy, (55, 70, 160))
        for ly in np.arange(0.458 * h, gy, 0.008 * h):
            cv2.line(img, _pt(bx, ly), _pt(bx + 0.024 * w, ly), (150, 160, 175), 1)
    for k in range(6):
        ry = 0.44 * h + k * 0.004 * h
        cv2.line(img, _pt(0.83 * w, ry), _pt(0.89 * w, ry + 0.003 * h), (50, 60, 80), 1)
    tarp = np.array([_pt(0.62 * w, gy), _pt(0.64 * w, 0.445 * h), _pt(0.68 * w, 0.44 * h), _pt(0.70 * w, gy)])
    cv2.fillPoly(img, [tarp], (160, 95, 35))
    # floodlight poles (the lamps only light up when the site works at night)
    for px in _FLOOD_POLES:
        cv2.line(img, _pt(px * w, _FLOOD_TOP * h), _pt(px * w, gy), (80, 80, 85), _th(0.004 * h))
        _rect(img, px * w - 0.012 * w, _FLOOD_TOP * h - 0.012 * h, px * w + 0.012 * w, _FLOOD_TOP * h + 0.006 * h,
              (95, 95, 100))  # fmt: skip
    # grain and blotches on everything new, like the demo's background
    yb = int(_FENCE_Y0 * h)
    region = img[:yb, int(x0) :].astype(np.float32)
    hh, ww = region.shape[:2]
    region += (_noise(rng, (hh, ww), 8) * 5.0 + rng.normal(0.0, 1.5, (hh, ww)).astype(np.float32))[..., None]
    gr = region[int(_GROUND_Y0 * h) : int(_FENCE_Y0 * h)]
    gr += _noise(rng, gr.shape[:2], 4)[..., None] * 10.0  # clods and tracks on the ground
    img[:yb, int(x0) :] = np.clip(region, 0, 255).astype(np.uint8)
    # the hoarding: blue and white panels with a darker cap and posts
    panel = 0.04 * w
    for k, px in enumerate(np.arange(x0, w, panel)):
        _rect(img, px, _FENCE_Y0 * h, px + panel, _FACADE_BOTTOM * h, (175, 115, 35) if k % 2 == 0 else (232, 232, 228))
        cv2.line(img, _pt(px, _FENCE_Y0 * h), _pt(px, _FACADE_BOTTOM * h), (120, 120, 120), 1)
    _rect(img, x0, _FENCE_Y0 * h, w, _FENCE_Y0 * h + 0.006 * h, (140, 90, 30))
    # a gate with the security lamp
    _rect(img, (_GATE_LAMP[0] - 0.03) * w, _FENCE_Y0 * h, w, _FACADE_BOTTOM * h, (90, 95, 100))
    _rect(img, _GATE_LAMP[0] * w - 3, _GATE_LAMP[1] * h - 2, _GATE_LAMP[0] * w + 3, _GATE_LAMP[1] * h + 2, (60, 60, 60))
    return img


def _boom_tip(x: float, foot: float, m: float, boom: float) -> tuple[float, float]:
    px, py = x + 1.0 * m, foot - 1.5 * m
    a = math.radians(boom)
    return px + 3.2 * m * math.cos(a), py - 3.2 * m * math.sin(a)


def _draw_excavator(img: NDArray[np.uint8], x: float, foot: float, m: float, boom: float, arm: float) -> None:
    """A tracked excavator facing right; `boom`/`arm` in degrees (arm relative to the boom)."""
    yellow: BGR = (20, 170, 235)
    _rect(img, x - 1.6 * m, foot - 0.75 * m, x + 1.6 * m, foot, (40, 40, 42))
    for k in range(5):
        cv2.circle(img, _pt(x - 1.3 * m + k * 0.65 * m, foot - 0.37 * m), _th(0.22 * m), (90, 90, 90), -1)
    _rect(img, x - 1.4 * m, foot - 1.65 * m, x + 1.1 * m, foot - 0.75 * m, yellow)
    _rect(img, x - 1.5 * m, foot - 1.5 * m, x - 1.1 * m, foot - 0.8 * m, (30, 120, 170))  # counterweight
    _rect(img, x + 0.05 * m, foot - 2.65 * m, x + 1.0 * m, foot - 1.6 * m, yellow)
    _rect(img, x + 0.2 * m, foot - 2.5 * m, x + 0.9 * m, foot - 1.9 * m, (95, 75, 60))  # cab glass
    px, py = x + 1.0 * m, foot - 1.5 * m
    bx, by = _boom_tip(x, foot, m, boom)
    cv2.line(img, _pt(px, py), _pt(bx, by), yellow, _th(0.42 * m))
    a2 = math.radians(boom + arm)
    ax, ay = bx + 2.4 * m * math.cos(a2), by - 2.4 * m * math.sin(a2)
    cv2.line(img, _pt(bx, by), _pt(ax, ay), yellow, _th(0.3 * m))
    corners = ((-0.4, -0.1), (0.45, -0.2), (0.3, 0.5), (-0.3, 0.4))
    bucket = np.array([_pt(ax + u * m, ay + v * m) for u, v in corners])
    cv2.fillPoly(img, [bucket], (50, 55, 60))


def _draw_truck(img: NDArray[np.uint8], x: float, foot: float, m: float) -> None:
    """A dump truck facing right; `x` is its rear end."""
    L = 6.5 * m
    _rect(img, x, foot - 1.1 * m, x + L, foot - 0.6 * m, (40, 40, 45))  # chassis
    _rect(img, x, foot - 2.6 * m, x + 0.68 * L, foot - 1.1 * m, (30, 85, 200))  # dump box
    for k in range(4):
        cv2.line(img, _pt(x + 0.1 * L * (k + 1.5), foot - 2.6 * m), _pt(x + 0.1 * L * (k + 1.5), foot - 1.1 * m),
                 (25, 65, 160), 1)  # fmt: skip
    _rect(img, x + 0.72 * L, foot - 2.7 * m, x + L, foot - 0.9 * m, (200, 200, 195))  # cab
    _rect(img, x + 0.8 * L, foot - 2.5 * m, x + 0.97 * L, foot - 1.8 * m, (95, 75, 60))
    for wx in (x + 0.15 * L, x + 0.35 * L, x + 0.85 * L):
        cv2.circle(img, _pt(wx, foot - 0.5 * m), _th(0.5 * m), (25, 25, 25), -1)
        cv2.circle(img, _pt(wx, foot - 0.5 * m), _th(0.22 * m), (140, 140, 145), -1)
