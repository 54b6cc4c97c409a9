"""Deterministic street scenes for the vendor and stall rules (09006, 09001, 09005).

Why: telling a stall from a pile, goods put out of a shop from a trolley
passing, and a stall that stays from one that leaves early needs clips in which
those things happen at known times and places, without shipping footage. The
scenes are the street of `detector.synthetic.demo` (same look, same walkers and cars for a
seed) in sunlight with cast shadows, plus things that arrive, stand and leave:

* **stall** — the demo's umbrella stall, pushed in from the nearer edge; its
  vendor stands a step beside it, and passers stop at it now and then (buyers);
* **cart** — a vendor's tricycle cart with a parasol (游商), vendor beside it,
  buyers stopping;
* **goods** — crates and boxes carried out of a shop one by one and left on the
  pavement in front of it (店外经营), then carried back in;
* **trolley** — a hand trolley with boxes pushed along the pavement: it passes
  through, or stops for a while and goes on;

and, as negatives, **crowds** (bursts of walkers in groups) and the sun going
behind a **cloud** (cast shadows vanish, light drops). `Thing.arrive_s` is when
a thing comes to rest and `leave_s` when it starts moving away (None: it stays);
moving in and out happens around those times (stalls and carts are pushed in
from the right, their vendor stays on their right). `NO_VENDING_ZONE`,
`SHOP_FRONT_ZONE` and `KERB_ZONE` are the zones the tests and the bench configure.

`generate_street_scene(path, spec)` encodes like the demo (same spec, same
bytes) and returns a `StreetTruth` with each thing's box and time at rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.synthetic.demo import (
    _HAIR,
    _PUSH_S,
    _PX_PER_M,
    _SHIRTS,
    _SKIN,
    _STALL_HALF_W,
    _STALL_TOP,
    _TROUSERS,
    BGR,
    DEMO_NO_VENDING_ZONE,
    StreetSpec,
    VideoSpec,
    _bind,
    _draw_person,
    _draw_stall,
    _pt,
    _rect,
    _Scene,
    _shade,
    _th,
    encode_atomically,
)
from detector.synthetic.scenarios import _GAIN_ONE, _smooth, _sun_maps

#: Bump whenever drawing or encoding changes, so cached files are regenerated.
_VERSION = 1

#: The stretch of pavement where vending is forbidden (purpose `no_vending`), as in the demo.
NO_VENDING_ZONE: list[tuple[float, float]] = list(DEMO_NO_VENDING_ZONE)
#: The pavement strip in front of the rightmost shop (purpose `shop_front`).
SHOP_FRONT_ZONE: list[tuple[float, float]] = [(0.86, 0.48), (0.99, 0.48), (0.99, 0.64), (0.86, 0.64)]
#: The kerb side of the pavement left of the no-vending stretch (purpose `sidewalk`: mobile vendors, 09001).
KERB_ZONE: list[tuple[float, float]] = [(0.02, 0.64), (0.38, 0.64), (0.38, 0.72), (0.02, 0.72)]

Kind = Literal["stall", "cart", "goods", "trolley"]

# Extents of each kind in metres around its x (left, right) and its height; the truth box.
_EXTENT: dict[str, tuple[float, float, float]] = {
    "stall": (-_STALL_HALF_W, _STALL_HALF_W, _STALL_TOP),
    "cart": (-1.1, 0.95, 2.1),
    "goods": (-1.2, 1.15, 1.3),
    "trolley": (-0.32, 0.32, 1.3),
}
# Cast shadows in the sun (normalised polygons); they vanish when the cloud comes.
_SHADOWS: list[list[tuple[float, float]]] = [
    [(0.0, 0.80), (0.42, 0.80), (0.30, 1.0), (0.0, 1.0)],  # a building behind the camera, on the road
    [(0.0, 0.04), (0.20, 0.04), (0.09, 0.46), (0.0, 0.46)],  # a neighbour's shadow on the left facades
    [(0.66, 0.02), (0.80, 0.02), (0.74, 0.36), (0.60, 0.36)],  # a chimney's on the right facades
    [(0.03, 0.60), (0.12, 0.60), (0.11, 0.72), (0.0, 0.72)],  # a street tree's on the pavement
    [(0.50, 0.74), (1.0, 0.74), (1.0, 0.78), (0.46, 0.78)],  # parked cars' on the kerb
]
_WALK_MPS = 1.1  # walking pace of vendors pushing, buyers and trolley pushers
_CARRY_S = 3.0  # a shopkeeper carries one piece of goods out (or in) in this long
_VENDOR_GAP_M = 1.2  # the vendor stands this far beyond the edge of the stall or cart


@dataclass(frozen=True, slots=True)
class Thing:
    """Something that comes to rest on the pavement at (`x`, `foot`) from `arrive_s` until `leave_s`."""

    kind: Kind
    arrive_s: float
    leave_s: float | None = None
    x: float = 0.6  # normalised x of its centre while at rest
    foot: float = 0.665  # normalised y of its foot line

    def __post_init__(self) -> None:
        object.__setattr__(self, "arrive_s", float(self.arrive_s))
        object.__setattr__(self, "x", float(self.x))
        object.__setattr__(self, "foot", float(self.foot))
        if self.leave_s is not None:
            object.__setattr__(self, "leave_s", float(self.leave_s))
            if self.leave_s < self.arrive_s:
                raise ValueError(f"{self.kind}: leave_s before arrive_s")


@dataclass(frozen=True, slots=True)
class StreetSceneSpec(VideoSpec):
    """Everything that determines a street scene video; equal specs give identical bytes."""

    seed: int = 0
    width: int = 640
    height: int = 360
    fps: int = 5
    duration_s: float = 600.0
    gop_s: float = 2.0
    bitrate: int | None = None
    start: str = "2026-03-02T10:00:00+08:00"  # a Monday, 10:00 Beijing time
    pedestrians: bool = True
    cars: bool = True
    things: tuple[Thing, ...] = ()
    crowds: tuple[tuple[float, float], ...] = ()  # intervals [a, b) with groups of walkers passing
    buyers: bool = True  # passers stop at stalls and carts
    sunny: bool = True
    cloud_s: float | None = None
    cloud_ramp_s: float = 40.0
    version: ClassVar[int] = _VERSION

    def __post_init__(self) -> None:
        for name in ("duration_s", "gop_s", "cloud_s", "cloud_ramp_s"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        object.__setattr__(self, "things", tuple(self.things))
        object.__setattr__(self, "crowds", tuple((float(a), float(b)) for a, b in self.crowds))
        self._check_video()
        datetime.fromisoformat(self.start)


@dataclass(frozen=True, slots=True)
class ThingTruth:
    thing: Thing
    box: tuple[float, float, float, float]  # normalised xyxy while at rest
    rest: tuple[float, float]  # [arrive_s, leave_s or the end of the video)

    @property
    def rest_s(self) -> float:
        return self.rest[1] - self.rest[0]


@dataclass(frozen=True, slots=True)
class StreetTruth:
    spec: StreetSceneSpec
    things: tuple[ThingTruth, ...]
    events: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)  # crowd, cloud_change

    def ts(self, t: float) -> datetime:
        """Wall-clock time of video time `t` (aware)."""
        return datetime.fromisoformat(self.spec.start) + timedelta(seconds=t)


def thing_box(thing: Thing, width: int, height: int) -> tuple[float, float, float, float]:
    """The normalised box of `thing` at rest."""
    left, right, top = _EXTENT[thing.kind]
    m = _PX_PER_M * height
    return (
        thing.x + left * m / width,
        thing.foot - top * m / height,
        thing.x + right * m / width,
        thing.foot,
    )


def street_truth(spec: StreetSceneSpec) -> StreetTruth:
    """The truth `generate_street_scene(…, spec)` returns, without rendering anything."""
    things = tuple(
        ThingTruth(
            th,
            thing_box(th, spec.width, spec.height),
            (th.arrive_s, min(spec.duration_s, th.leave_s if th.leave_s is not None else spec.duration_s)),
        )
        for th in spec.things
    )
    events: dict[str, tuple[tuple[float, float], ...]] = {"crowd": spec.crowds}
    if spec.sunny and spec.cloud_s is not None:
        events["cloud_change"] = ((spec.cloud_s, spec.cloud_s + spec.cloud_ramp_s),)
    return StreetTruth(spec, things, events)


def generate_street_scene(path: Path, spec: StreetSceneSpec) -> StreetTruth:
    """Renders and encodes `spec` as H.264 MP4 at `path` (atomically replaced)."""
    encode_atomically(StreetSceneRenderer(spec).frames(), path, spec)  # type: ignore[arg-type]  # same fields
    return street_truth(spec)


def ensure_street_scene(cache_dir: Path, spec: StreetSceneSpec) -> tuple[Path, StreetTruth]:
    """Path of the cached video for `spec` (generated only when missing) and its truth."""
    path = Path(cache_dir) / f"street-scene-{spec.key()}.mp4"
    if not path.exists():
        generate_street_scene(path, spec)
    return path, street_truth(spec)


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True, slots=True)
class _Mover:
    """A person walking along the pavement at `foot`, optionally stopping at `x_stop` for `dwell` s."""

    t0: float  # when it reaches x_stop (or passes it)
    dwell: float
    x_stop: float
    vx: float  # normalised x per second, sign = direction
    foot: float
    height_m: float
    colours: tuple[BGR, BGR, BGR, BGR]

    def x(self, t: float) -> float:
        if t < self.t0:
            return self.x_stop - self.vx * (self.t0 - t)
        if t < self.t0 + self.dwell:
            return self.x_stop
        return self.x_stop + self.vx * (t - self.t0 - self.dwell)

    def walking(self, t: float) -> bool:
        return not self.t0 <= t < self.t0 + self.dwell


class StreetSceneRenderer:
    """The demo street (its walkers and cars) plus the spec's things, buyers, crowds and sunlight."""

    def __init__(self, spec: StreetSceneSpec) -> None:
        self.spec = spec
        street = StreetSpec(
            seed=spec.seed, width=spec.width, height=spec.height, fps=spec.fps, duration_s=spec.duration_s,
            gop_s=spec.gop_s, stall_arrive_s=None, stall_leave_s=None, pedestrians=spec.pedestrians,
            cars=spec.cars, lighting_drift=False, cloud_s=None,
        )  # fmt: skip
        self.scene = _Scene(street)
        self.m = _PX_PER_M * spec.height  # pixels per metre
        self.aspect = spec.height / spec.width
        rng = np.random.default_rng([spec.seed, 104729])  # its own: the street keeps the demo's traffic
        self.movers: list[_Mover] = []
        for th in spec.things:
            if th.kind in ("stall", "cart") and spec.buyers:
                self.movers += self._buyers(th, rng)
        for a, b in spec.crowds:
            self.movers += self._crowd(a, b, rng)
        self._sun, self._cloud = _sun_maps(spec.width, spec.height, _SHADOWS)
        self._light: dict[float, NDArray[np.uint8]] = {}

    def frames(self) -> Iterator[NDArray[np.uint8]]:
        for i in range(self.spec.frame_count):
            yield self.render(i)

    def render(self, i: int) -> NDArray[np.uint8]:
        img = self.scene.render(i, self._painters)
        return self._daylight(img, i / self.spec.fps)

    # -------------------------------------------------------------- per frame

    def _painters(self, img: NDArray[np.uint8], t: float) -> list[tuple[float, Callable[[], None]]]:
        h, w, m = self.spec.height, self.spec.width, self.m
        items: list[tuple[float, Callable[[], None]]] = []
        for k, th in enumerate(self.spec.things):
            items += self._thing(img, th, t, k)
        for p in self.movers:
            x = p.x(t)
            if -0.05 <= x <= 1.05:
                walking = p.walking(t)
                phase = t * 2 * math.pi * 1.8 if walking else math.pi / 2
                swing = 1.0 if walking else 0.25 * math.sin(t * 2 * math.pi / 6.0)
                items.append(
                    (p.foot, _bind(_draw_person, img, x * w, p.foot * h, p.height_m * m, p.colours, phase, swing))
                )
        return items

    def _thing(self, img: NDArray[np.uint8], th: Thing, t: float, k: int) -> list[tuple[float, Callable[[], None]]]:
        h, w, m = self.spec.height, self.spec.width, self.m
        foot_px = th.foot * h
        vendor = ((40, 120, 200), (60, 60, 60), _SKIN[(k + 1) % len(_SKIN)], _HAIR[k % len(_HAIR)])
        if th.kind == "goods":
            return self._goods(img, th, t, vendor)
        if th.kind == "trolley":
            return self._trolley(img, th, t, vendor)
        x, moving = self._pushed(th, t)
        if x is None:
            return []
        draw = _draw_stall if th.kind == "stall" else _draw_cart
        items = [(th.foot, _bind(draw, img, x * w, foot_px, m))]
        # the vendor pushes from the right, then stands a step beyond the edge while selling
        gap = 0.35 if moving else self._settle(th, t) * (_VENDOR_GAP_M - 0.35) + 0.35
        sway = 0.0 if moving else 0.15 * math.sin(t * 2 * math.pi / 9.0 + k)
        vx = x * w + (_EXTENT[th.kind][1] + gap + sway) * m
        phase = t * 2 * math.pi * 1.8 if moving else math.pi / 2
        swing = 1.0 if moving else 0.3 * math.sin(t * 2 * math.pi / 5.0 + k)
        vfoot = th.foot + 0.006
        items.append((vfoot, _bind(_draw_person, img, vx, vfoot * h, 1.72 * m, vendor, phase, swing)))
        return items

    def _pushed(self, th: Thing, t: float) -> tuple[float | None, bool]:
        """x of a pushed stall or cart (None: out of view) and whether it is moving."""
        far = 1.25 - th.x  # fully outside the frame on the right, with its vendor
        a, leave = th.arrive_s, th.leave_s
        if t < a - _PUSH_S or (leave is not None and t > leave + _PUSH_S):
            return None, False
        if t < a:
            u = (a - t) / _PUSH_S
            return th.x + far * (0.5 - 0.5 * math.cos(math.pi * u)), True
        if leave is None or t <= leave:
            return th.x, False
        u = (t - leave) / _PUSH_S
        return th.x + far * (0.5 - 0.5 * math.cos(math.pi * u)), True

    @staticmethod
    def _settle(th: Thing, t: float) -> float:
        """0 → 1 as the vendor steps from the handle to the selling spot (and back before leaving)."""
        u = min(1.0, (t - th.arrive_s) / 2.0, math.inf if th.leave_s is None else (th.leave_s - t) / 2.0)
        return 0.5 - 0.5 * math.cos(math.pi * max(u, 0.0))

    def _goods(
        self, img: NDArray[np.uint8], th: Thing, t: float, keeper: tuple[BGR, BGR, BGR, BGR]
    ) -> list[tuple[float, Callable[[], None]]]:
        """Pieces carried out one by one before `arrive_s`, in again from `leave_s`; the shopkeeper meanwhile."""
        h, w, m = self.spec.height, self.spec.width, self.m
        n = len(_GOODS)
        carry = n * _CARRY_S
        if t < th.arrive_s - carry:
            return []
        if th.leave_s is None or t < th.leave_s:
            shown = min(n, int((t - (th.arrive_s - carry)) / _CARRY_S) + 1)
            busy = t < th.arrive_s
        else:
            shown = n - int((t - th.leave_s) / _CARRY_S) - 1
            busy = shown > 0
            if shown <= 0:
                return []
        items: list[tuple[float, Callable[[], None]]] = [
            (th.foot, _bind(_draw_goods, img, th.x * w, th.foot * h, m, shown))
        ]
        if busy:  # the shopkeeper stands beside the pile, towards the shop door
            kx = (th.x * w) + (_EXTENT["goods"][1] + 0.45) * m
            kfoot = th.foot + 0.012
            sway = math.sin(t * 2 * math.pi / 3.0)
            items.append((kfoot, _bind(_draw_person, img, kx, kfoot * h, 1.68 * m, keeper, sway, 0.6)))
        return items

    def _trolley(
        self, img: NDArray[np.uint8], th: Thing, t: float, pusher: tuple[BGR, BGR, BGR, BGR]
    ) -> list[tuple[float, Callable[[], None]]]:
        """Pushed left to right at walking pace, at rest in [arrive_s, leave_s)."""
        h, w, m = self.spec.height, self.spec.width, self.m
        v = _WALK_MPS * _PX_PER_M * self.aspect  # frame widths per second
        leave = th.arrive_s if th.leave_s is None else th.leave_s
        if t < th.arrive_s:
            x, walking = th.x - v * (th.arrive_s - t), True
        elif th.leave_s is None or t < leave:
            x, walking = th.x, False
        else:
            x, walking = th.x + v * (t - leave), True
        if not -0.1 <= x <= 1.1:
            return []
        px = x * w - 0.7 * m  # the pusher walks behind it
        phase = t * 2 * math.pi * 1.8 if walking else math.pi / 2
        return [
            (th.foot, _bind(_draw_trolley, img, x * w, th.foot * h, m)),
            (th.foot + 0.004, _bind(_draw_person, img, px, (th.foot + 0.004) * h, 1.75 * m, pusher, phase,
                                    1.0 if walking else 0.2)),
        ]  # fmt: skip

    def _daylight(self, img: NDArray[np.uint8], t: float) -> NDArray[np.uint8]:
        s = self.spec
        if not s.sunny:
            c = 1.0
        elif s.cloud_s is None:
            c = 0.0
        else:
            c = _smooth((t - s.cloud_s) / max(s.cloud_ramp_s, 1e-6))
        c = round(c, 3)
        lm = self._light.get(c)
        if lm is None:  # uint8 light multipliers in 1/_GAIN_ONE steps: integer maths keeps rendering cheap
            f = cv2.addWeighted(self._sun, 1.0 - c, self._cloud, c, 0.0) * np.float32(_GAIN_ONE)
            lm = np.clip(f + 0.5, 0, 255).astype(np.uint8)
            if len(self._light) > 16:
                self._light.clear()
            self._light[c] = lm
        out = cv2.multiply(img, lm, scale=1.0 / _GAIN_ONE)
        if c > 0:  # overcast light flattens colours a little
            k = 0.2 * c
            out = cv2.transform(out, np.full((3, 3), k / 3, np.float32) + np.eye(3, dtype=np.float32) * (1 - k))
        return out

    # -------------------------------------------------------------- schedules

    def _buyers(self, th: Thing, rng: np.random.Generator) -> list[_Mover]:
        """Passers who stop at a stall or cart for 10-40 s, every 25-70 s while it stands."""
        out: list[_Mover] = []
        end = self.spec.duration_s if th.leave_s is None else th.leave_s
        t = th.arrive_s + float(rng.uniform(10, 40))
        left, right, _ = _EXTENT[th.kind]
        while t < end - 10:
            dwell = float(min(rng.uniform(10, 40), end - t))
            before = rng.random() < 0.6  # in front of the table, or at its far side
            at_m = float(rng.uniform(left, right)) * 0.6 if before else left - 0.6
            x_stop = th.x + at_m * self.m / self.spec.width
            vx = float(rng.uniform(0.16, 0.26)) * (1.0 if rng.random() < 0.5 else -1.0)
            foot = th.foot + (0.02 if before else 0.004)
            out.append(_Mover(t, dwell, x_stop, vx, foot, float(rng.uniform(1.55, 1.85)), _colours(rng)))
            t += dwell + float(rng.uniform(25, 70))
        return out

    def _crowd(self, a: float, b: float, rng: np.random.Generator) -> list[_Mover]:
        """Groups of 3-7 walkers, one every 2-5 s, all along the pavement."""
        out: list[_Mover] = []
        t = a
        while t < b:
            direction = 1.0 if rng.random() < 0.5 else -1.0
            speed = float(rng.uniform(0.1, 0.16))
            foot = float(rng.uniform(0.59, 0.69))
            for _ in range(int(rng.integers(3, 8))):
                t0, x_mid = t + float(rng.uniform(0, 1.5)), 0.5 + float(rng.uniform(-0.05, 0.05))
                y = foot + float(rng.uniform(-0.025, 0.025))
                out.append(_Mover(t0, 0.0, x_mid, direction * speed, y, float(rng.uniform(1.5, 1.9)), _colours(rng)))
            t += float(rng.uniform(2, 5))
        return out


def _colours(rng: np.random.Generator) -> tuple[BGR, BGR, BGR, BGR]:
    return (
        _SHIRTS[int(rng.integers(len(_SHIRTS)))],
        _TROUSERS[int(rng.integers(len(_TROUSERS)))],
        _SKIN[int(rng.integers(len(_SKIN)))],
        _HAIR[int(rng.integers(len(_HAIR)))],
    )


# ------------------------------------------------------------------- drawing

# Goods in front of a shop, in the order carried out: (x0, x1, bottom, top) in metres, colour, crate?
_GOODS: list[tuple[float, float, float, float, BGR, bool]] = [
    (-1.2, -0.5, 0.0, 0.65, (70, 140, 185), True),
    (-0.45, 0.3, 0.0, 0.6, (120, 160, 200), False),
    (0.35, 1.15, 0.0, 0.7, (60, 110, 60), True),
    (-1.15, -0.55, 0.65, 1.3, (40, 90, 170), False),
    (0.45, 1.1, 0.7, 1.2, (150, 120, 90), False),
]


def _draw_goods(img: NDArray[np.uint8], x: float, foot: float, m: float, shown: int) -> None:
    """The first `shown` pieces of `_GOODS`: crates of produce and cardboard boxes."""
    cv2.ellipse(img, _pt(x, foot - 0.02 * m), (_th(1.25 * m), _th(0.05 * m)), 0, 0, 360, (120, 122, 125), -1)
    for x0, x1, y0, y1, colour, crate in _GOODS[:shown]:
        _rect(img, x + x0 * m, foot - y1 * m, x + x1 * m, foot - y0 * m, colour)
        if crate:  # slats and the produce heaped on top
            for k in range(1, 4):
                yy = foot - (y0 + (y1 - y0) * k / 4) * m
                cv2.line(img, _pt(x + x0 * m, yy), _pt(x + x1 * m, yy), _shade(colour, 0.7), _th(0.03 * m))
            for f in (0.2, 0.5, 0.8):
                cv2.circle(img, _pt(x + (x0 + (x1 - x0) * f) * m, foot - y1 * m), _th(0.08 * m), (30, 60, 220), -1)
        else:  # a taped cardboard box
            mid = x + (x0 + x1) / 2 * m
            cv2.line(img, _pt(mid, foot - y1 * m), _pt(mid, foot - y0 * m), (200, 200, 190), _th(0.04 * m))
            cv2.rectangle(img, _pt(x + x0 * m, foot - y1 * m), _pt(x + x1 * m, foot - y0 * m),
                          _shade(colour, 0.75), _th(0.02 * m))  # fmt: skip


def _draw_cart(img: NDArray[np.uint8], cx: float, foot: float, m: float) -> None:
    """A vendor's tricycle cart with produce and a parasol, facing right (within `_EXTENT['cart']`)."""
    cv2.ellipse(img, _pt(cx - 0.1 * m, foot - 0.03 * m), (_th(1.0 * m), _th(0.04 * m)), 0, 0, 360, (120, 122, 125), -1)
    for wx in (cx - 0.6 * m, cx + 0.15 * m, cx + 0.75 * m):
        cv2.circle(img, _pt(wx, foot - 0.28 * m), _th(0.28 * m), (30, 30, 30), _th(0.06 * m))
        cv2.circle(img, _pt(wx, foot - 0.28 * m), _th(0.05 * m), (150, 150, 150), -1)
    cv2.line(img, _pt(cx + 0.15 * m, foot - 0.28 * m), _pt(cx + 0.75 * m, foot - 0.28 * m), (50, 50, 60), _th(0.05 * m))
    cv2.line(img, _pt(cx + 0.75 * m, foot - 0.28 * m), _pt(cx + 0.85 * m, foot - 1.05 * m), (50, 50, 60), _th(0.05 * m))
    _rect(img, cx + 0.7 * m, foot - 1.1 * m, cx + 0.95 * m, foot - 1.03 * m, (40, 40, 40))  # handlebar
    _rect(img, cx + 0.35 * m, foot - 0.85 * m, cx + 0.6 * m, foot - 0.78 * m, (30, 30, 30))  # saddle
    _rect(img, cx - 0.95 * m, foot - 1.0 * m, cx + 0.3 * m, foot - 0.45 * m, (45, 120, 40))  # the box
    _rect(img, cx - 0.95 * m, foot - 1.0 * m, cx + 0.3 * m, foot - 0.92 * m, (230, 230, 230))
    produce: list[BGR] = [(30, 200, 240), (30, 40, 200), (40, 160, 60), (20, 130, 240)]
    for k in range(8):
        colour = produce[k % len(produce)]
        cv2.circle(img, _pt(cx - 0.85 * m + k * 0.15 * m, foot - 1.06 * m), _th(0.08 * m), colour, -1, cv2.LINE_AA)
    # parasol: pole, striped canopy
    _rect(img, cx - 0.23 * m, foot - 2.1 * m, cx - 0.17 * m, foot - 1.0 * m, (90, 90, 95))
    apex, rim, hw = foot - 2.1 * m, foot - 1.8 * m, 0.88 * m
    n = 6
    for k in range(n):
        a, b = cx - 0.2 * m - hw + 2 * hw * k / n, cx - 0.2 * m - hw + 2 * hw * (k + 1) / n
        colour = (20, 150, 240) if k % 2 == 0 else (240, 240, 240)
        cv2.fillPoly(img, [np.array([_pt(cx - 0.2 * m, apex), _pt(a, rim), _pt(b, rim)])], colour, cv2.LINE_AA)


def _draw_trolley(img: NDArray[np.uint8], x: float, foot: float, m: float) -> None:
    """A hand trolley with three stacked boxes (within `_EXTENT['trolley']`)."""
    frame: BGR = (60, 60, 70)
    cv2.line(img, _pt(x - 0.3 * m, foot - 0.1 * m), _pt(x - 0.3 * m, foot - 1.3 * m), frame, _th(0.05 * m))
    cv2.line(img, _pt(x - 0.3 * m, foot - 0.05 * m), _pt(x + 0.3 * m, foot - 0.05 * m), frame, _th(0.05 * m))
    cv2.circle(img, _pt(x - 0.22 * m, foot - 0.1 * m), _th(0.1 * m), (25, 25, 25), -1)
    for k, colour in enumerate(((120, 160, 200), (100, 140, 180), (130, 170, 205))):
        y0, y1 = foot - 0.07 * m - (k + 1) * 0.38 * m, foot - 0.07 * m - k * 0.38 * m
        _rect(img, x - 0.26 * m, y0, x + 0.3 * m, y1, colour)
        cv2.rectangle(img, _pt(x - 0.26 * m, y0), _pt(x + 0.3 * m, y1), _shade(colour, 0.7), _th(0.02 * m))
