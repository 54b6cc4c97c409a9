"""Haze: dust over construction sites (工地扬尘), and site activity at night (施工扰民).

Dust between the camera and a scene acts like fog: each pixel becomes
``I = t·J + (1 − t)·A`` with transmission ``t < 1`` and a brownish-grey airlight
``A``. Three things happen to a block of the view, whatever it shows:

* its **local contrast** (mean gradient magnitude ÷ mean luma) drops;
* its **colour spread** (standard deviation of the opponent chroma ÷ mean luma)
  drops — the spread, not the saturation itself, because mixing with a coloured
  airlight shrinks every chroma difference by ``t`` but may make grey concrete
  *more* saturated;
* its **airlight floor** rises: the dark channel (the minimum of B, G, R,
  eroded over a few pixels) relative to the block's mean luma goes up.

All three are ratios to the block's own luma, so a global lighting gain cancels
out. Each `construction_site` zone is cut into blocks of the analysed copy, and
every block is compared with its own **baseline**: a short-term reference (an
exponential average over ~10 minutes of pipeline time) and, once it holds enough
analyses, the exponential average for the **same hour of the day**, so slow
sun-position changes and nights are compared like with like. Both are updated
only while the zone looks clear (a plume is not learned), unless the haze lasts
longer than `max_hazy_minutes` (the view itself changed).

Lighting changes that do not cancel (a cloud removes cast shadows, which lowers
contrast everywhere) are measured in a **reference region** — the frame outside
every site zone, with a margin — and divided out: the zone's changes count only
beyond what the reference region saw. The haze index of a zone is the mean over
its textured blocks of the per-block evidence (contrast loss weighted most); a
zone above `threshold` emits "haze:dust" with the zone's bounding box, so an
incident is keyed by the zone, not by the plume's shape. Persistence (k of n
analyses over minutes) is the rules' job.

At night there is too little signal to see dust: below `min_ref_luma` (the
reference region) or `min_zone_luma` (the zone) nothing is evaluated and
nothing is emitted. Instead the analyzer looks for **activity**: bright light
sources in the site zone *and* frame-to-frame change of lit pixels against the
previous analysed frame ("activity:construction"; the 22:00–06:00 window is the
rules' schedule). In daylight a larger share of changed pixels is required.

A view that moved (camera knocked, PTZ off its preset) is skipped: a shift
found by phase correlation against the reference image suspends evaluation,
and when it persists the baselines are re-learned from the new view. A shift
of a few pixels is sway (a pole in the wind): the frame is shifted back by
whole pixels (interpolation would blur it, and blur reads as haze) and analysed.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.analysis.base import Analyzer
from detector.analysis.zones import polygon_mask
from detector.types import Frame, Observations

DUST = "haze:dust"
ACTIVITY = "activity:construction"
_STATE_KIND = "haze"
_STATE_VERSION = 1

F32 = NDArray[np.float32]
Polygon = Sequence[tuple[float, float]]

# Feature planes of the per-block arrays.
_Y, _C, _S, _A, _T = range(5)  # luma, rel. contrast, rel. colour spread, airlight floor, abs. texture
_NF = 5


@dataclass(frozen=True, slots=True)
class HazeParams:
    """Tuning of `HazeAnalyzer`; grey levels on the 0..255 scale."""

    #: width of the analysed copy
    work_width: int = 320
    #: block size (pixels of the analysed copy) of the per-block baselines
    block_px: int = 16
    #: time constant of the short-term reference, seconds
    tau_short_s: float = 600.0
    #: a change of the reference region's luma by this factor (vs the short-term reference) is a lighting
    #: event (sun ↔ cloud): for `adapt_s` after it every block is learned with `tau_fast_s`, hazy or not,
    #: so shadows that came or went stop counting
    lighting_step: float = 0.12
    adapt_s: float = 180.0
    tau_fast_s: float = 45.0
    #: after a gap this long (restart, outage) the short-term reference restarts from the hour's average
    gap_s: float = 1800.0
    #: effective number of analyses in an hour-of-day average (its exponential window)
    bucket_samples: int = 2000
    #: analyses an hour-of-day average needs before it is used
    min_bucket_samples: int = 60
    #: time zone of the hour-of-day buckets
    tz: str = "Asia/Shanghai"
    #: haze index at which "haze:dust" is emitted
    threshold: float = 0.25
    #: a zone is not learned while its index is at or above this
    learn_below: float = 0.2
    #: a hazy zone is learned anyway after this long (the view changed, not the air)
    max_hazy_minutes: float = 90.0
    #: below these mean lumas (reference region / zone) dust is not evaluated (night)
    min_ref_luma: float = 50.0
    min_zone_luma: float = 45.0
    #: blocks darker than this (baseline or now), or flatter than `min_texture`, carry no evidence
    min_block_luma: float = 25.0
    min_texture: float = 1.5
    #: evidence scales: a ratio of 1 − span (or an airlight rise of span) is full evidence
    contrast_span: float = 0.55
    colour_span: float = 0.55
    airlight_span: float = 0.30
    #: weights of contrast, colour and airlight evidence in a block
    weights: tuple[float, float, float] = (0.5, 0.25, 0.25)
    #: margin around the zones excluded from the reference region (fraction of the frame)
    ref_margin: float = 0.05
    #: the reference region needs this many textured blocks to normalise lighting
    min_ref_blocks: int = 6
    #: the scene counts as dark (night: activity by lights) below this reference-region luma
    night_luma: float = 60.0
    #: a pixel at or above this luma is a light source (at night)
    light_level: float = 215.0
    #: share of the zone that light sources must cover (at night)
    min_light_frac: float = 0.001
    #: luma change (after global gain correction) that counts as motion
    motion_level: float = 22.0
    #: a changed pixel is "lit" when either frame is at least this bright (at night)
    lit_level: float = 70.0
    #: share of the zone that lit motion must cover at night / any motion in daylight
    min_motion_frac: float = 0.004
    day_motion_frac: float = 0.03
    #: motion over this share of the reference region is a global change (blur, shake, exposure), not work
    global_motion_frac: float = 0.3
    #: motion is measured only against an analysed frame at most this old, seconds
    max_motion_gap_s: float = 60.0
    #: a global shift above this (pixels of the analysed copy) suspends evaluation; 0 = off
    max_shift_px: float = 1.5
    #: ... unless it is at most this: sway, shifted back and analysed (skipping it would drop
    #: half the analyses of a camera on a pole in the wind)
    sway_px: float = 4.0
    #: this many shifted analyses in a row re-learn the view
    shift_relearn: int = 3


@dataclass(slots=True)
class _Zone:
    name: str
    polygon: NDArray[np.float32]
    box: tuple[float, float, float, float]
    weight: F32 | None = None  # per-block share inside the zone
    pixels: NDArray[np.bool_] | None = None  # pixel mask at work size
    hazy_since: float | None = None


class HazeAnalyzer(Analyzer):
    """Dust ("haze:dust") and night activity ("activity:construction") in construction-site zones.

    `zones` maps zone names to normalised polygons (the camera's zones with
    purpose `construction_site`).
    """

    name = "haze"
    gated = False  # baselines learn from every due frame, and motion needs consecutive analyses

    def __init__(self, zones: Mapping[str, Polygon], params: HazeParams | None = None) -> None:
        self.params = params or HazeParams()
        p = self.params
        if p.block_px < 4 or p.work_width < 8 * p.block_px:
            raise ValueError("work_width must hold at least 8 blocks of >= 4 px")
        self._tz: tzinfo = ZoneInfo(p.tz)
        self._zones: list[_Zone] = []
        for name, poly in zones.items():
            pts = np.asarray(poly, np.float32).reshape(-1, 2)
            if len(pts) < 3:
                raise ValueError(f"zone {name!r} needs at least 3 points")
            lo, hi = np.clip(pts.min(axis=0), 0, 1), np.clip(pts.max(axis=0), 0, 1)
            self._zones.append(_Zone(name, pts, (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))))
        self._shape: tuple[int, int] | None = None  # (h, w) of the analysed copy
        self._grid: tuple[int, int] | None = None  # (gh, gw)
        self._ref_blocks: NDArray[np.bool_] | None = None
        self._ref_pixels: NDArray[np.bool_] | None = None
        self._short: F32 | None = None  # (_NF, gh, gw)
        self._short_ts: float | None = None
        self._buckets: F32 | None = None  # (24, _NF, gh, gw)
        self._counts = np.zeros(24, np.int64)
        self._view: F32 | None = None  # reference grey image for shift checks
        self._prev: F32 | None = None  # previous analysed grey (strongly blurred), for motion
        self._prev_ts: float | None = None
        self._shifts = 0
        self._hann: F32 | None = None
        self._adapt_until = -math.inf
        #: diagnostics of the last analysis, per zone (tests, bench, logs)
        self.last: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ API

    def analyze(self, frame: Frame) -> Observations:
        p = self.params
        self.last = {}
        if not self._zones:
            return Observations()
        small = self._prepare(frame.image)
        now = frame.ts.timestamp()
        hour = frame.ts.astimezone(self._tz).hour
        h, w = small.shape[:2]
        if self._shape != (h, w):
            self._setup(h, w)
        blurred, coarse, feats = self._derived(small)

        if self._short is None or self._view is None:
            self._short, self._short_ts, self._view = feats.copy(), now, blurred.copy()
            self._prev, self._prev_ts = coarse, now
            self._learn_bucket(hour, feats, None)
            return Observations()

        mature = self._buckets is not None and self._counts[hour] >= p.min_bucket_samples
        if self._short_ts is not None and now - self._short_ts > p.gap_s:  # restart or outage: what is usual now
            self._short = self._buckets[hour].copy() if mature and self._buckets is not None else feats.copy()
            self._short_ts = now
            self._adapt_until = -math.inf

        if p.max_shift_px > 0:
            sway = self._sway(blurred)
            if sway is None:  # moved: skipped (and, if it persists, re-learned)
                self._prev, self._prev_ts = coarse, now
                return Observations()
            if sway != (0, 0):
                back = np.float32([[1, 0, -sway[0]], [0, 1, -sway[1]]])
                small = cv2.warpAffine(small, back, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
                blurred, coarse, feats = self._derived(small)

        boxes: list[tuple[float, float, float, float]] = []
        scores: list[float] = []
        labels: list[str] = []
        extras: list[dict[str, Any]] = []
        frozen = np.zeros(self._grid or (1, 1), bool)  # blocks not to learn (hazy zones)

        ref_luma = self._ref_luma(feats)
        dark = ref_luma < p.night_luma
        step = self._lighting_change(feats)
        if abs(math.log(step)) >= math.log1p(p.lighting_step):
            self._adapt_until = now + p.adapt_s
        bucket = self._buckets[hour] if mature and self._buckets is not None else None
        for z in self._zones:
            assert z.weight is not None
            diag: dict[str, Any] = {"ref_luma": round(ref_luma, 1), "light_step": round(step, 3)}
            diag["adapting"] = now < self._adapt_until
            zone_luma = float((feats[_Y] * z.weight).sum() / max(float(z.weight.sum()), 1e-6))
            diag["zone_luma"] = round(zone_luma, 1)
            if ref_luma >= p.min_ref_luma and zone_luma >= p.min_zone_luma:
                ev = self._evidence(feats, self._short, z)
                if ev is not None and bucket is not None:
                    ev_hour = self._evidence(feats, bucket, z)
                    if ev_hour is not None and ev_hour["index"] < ev["index"]:
                        ev = {**ev_hour, "baseline": "hour"}
                if ev is not None:
                    diag.update(ev)
                    index = float(ev["index"])
                    if index >= p.learn_below:
                        if z.hazy_since is None:
                            z.hazy_since = now
                        if now - z.hazy_since < p.max_hazy_minutes * 60:
                            frozen |= z.weight > 0
                    else:
                        z.hazy_since = None
                    if index >= p.threshold:
                        boxes.append(z.box)
                        scores.append(min(1.0, index))
                        labels.append(DUST)
                        extras.append({"zone": z.name, **{k: v for k, v in ev.items() if k != "index"}})
            act = self._activity(blurred, coarse, now, z, dark)
            if act is not None:
                diag.update(act)
                if act.get("active"):
                    boxes.append(z.box)
                    scores.append(float(act["activity"]))
                    labels.append(ACTIVITY)
                    extras.append({"zone": z.name, "lights": act["lights"], "motion": act["motion"]})
            self.last[z.name] = diag

        self._learn(now, hour, feats, blurred, frozen)
        self._prev, self._prev_ts = coarse, now
        if not labels:
            return Observations()
        return Observations.build(boxes, scores, labels, extras)

    def state(self) -> bytes | None:
        """The short-term reference, the hour-of-day baselines and the reference view."""
        if self._short is None or self._buckets is None or self._view is None or self._shape is None:
            return None
        out = io.BytesIO()
        np.savez_compressed(
            out,
            kind=np.array(_STATE_KIND),
            haze_version=np.int32(_STATE_VERSION),
            zones=np.array(self._zone_key()),
            shape=np.int32(self._shape),
            short=self._short,
            short_ts=np.float64(self._short_ts or 0.0),
            buckets=self._buckets.astype(np.float32),
            counts=self._counts,
            view=self._view.astype(np.float16),
        )
        return out.getvalue()

    def load_state(self, blob: bytes) -> None:
        """Restores `state()`; another analyzer's blob or a mismatched one is ignored."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                if "kind" not in z.files or str(z["kind"]) != _STATE_KIND:
                    return
                if int(z["haze_version"]) != _STATE_VERSION or str(z["zones"]) != self._zone_key():
                    return
                shape = tuple(int(v) for v in z["shape"])
                short, buckets, counts = z["short"], z["buckets"], z["counts"]
                view, short_ts = z["view"].astype(np.float32), float(z["short_ts"])
        except (OSError, EOFError, ValueError, TypeError, KeyError, zipfile.BadZipFile):
            return
        if len(shape) != 2 or shape[1] > self.params.work_width or view.shape != shape:
            return
        self._setup(shape[0], shape[1])
        assert self._grid is not None
        if short.shape != (_NF, *self._grid) or buckets.shape != (24, _NF, *self._grid) or counts.shape != (24,):
            self._shape = None
            return
        self._short, self._short_ts = short.astype(np.float32), short_ts
        self._buckets, self._counts = buckets.astype(np.float32), counts.astype(np.int64)
        self._view = view
        self._prev = self._prev_ts = None

    # ------------------------------------------------------------ internals

    def _zone_key(self) -> str:
        return ";".join(f"{z.name}:{np.round(z.polygon, 4).tolist()}" for z in self._zones)

    def _prepare(self, image: NDArray[np.uint8]) -> F32:
        h, w = image.shape[:2]
        ww = min(self.params.work_width, w)
        wh = max(1, round(h * ww / w))
        small = cv2.resize(image, (ww, wh), interpolation=cv2.INTER_AREA) if (ww, wh) != (w, h) else image
        return small.astype(np.float32)

    def _setup(self, h: int, w: int) -> None:
        """Grids, zone and reference masks for an analysed copy of h x w; drops old baselines."""
        p = self.params
        self._shape = (h, w)
        gh, gw = max(1, round(h / p.block_px)), max(1, round(w / p.block_px))
        self._grid = (gh, gw)
        union = np.zeros((h, w), np.uint8)
        for z in self._zones:
            z.pixels = polygon_mask(z.polygon, (h, w))
            z.weight = cv2.resize(z.pixels.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
            z.weight[z.weight < 0.5] = 0.0
            union |= z.pixels
        r = max(1, round(p.ref_margin * max(h, w)))
        grown = cv2.dilate(union, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1)))
        outside = cv2.resize((1 - grown).astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
        self._ref_blocks = outside >= 0.99
        self._ref_pixels = grown == 0
        self._short = self._short_ts = None
        self._buckets = np.zeros((24, _NF, gh, gw), np.float32)
        self._counts = np.zeros(24, np.int64)
        self._view = self._prev = self._prev_ts = None
        self._shifts = 0
        self._hann = None

    def _features(self, small: F32, grey: F32) -> F32:
        """Per-block luma, relative contrast, relative colour spread, airlight floor, absolute texture."""
        assert self._grid is not None
        gh, gw = self._grid
        b, g, r = cv2.split(small)
        smooth = cv2.GaussianBlur(grey, (3, 3), 0)
        gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
        grad = (np.abs(gx) + np.abs(gy)) * 0.125
        ca = r - g
        cb = 0.5 * (r + g) - b
        dark = cv2.erode(np.minimum(np.minimum(b, g), r), np.ones((5, 5), np.uint8))
        size = (gw, gh)
        y, gm, ma, mb = cv2.split(cv2.resize(cv2.merge([grey, grad, ca, cb]), size, interpolation=cv2.INTER_AREA))
        ma2, mb2, dk = cv2.split(cv2.resize(cv2.merge([ca * ca, cb * cb, dark]), size, interpolation=cv2.INTER_AREA))
        spread = np.sqrt(np.maximum(ma2 - ma * ma, 0) + np.maximum(mb2 - mb * mb, 0))
        den = y + 5.0
        return np.stack([y, gm / den, spread / den, dk / den, gm]).astype(np.float32)

    def _ref_luma(self, feats: F32) -> float:
        assert self._ref_blocks is not None
        if self._ref_blocks.any():
            return float(np.median(feats[_Y][self._ref_blocks]))
        return float(np.median(feats[_Y]))

    def _lighting_change(self, feats: F32) -> float:
        """Median luma ratio of the reference region's blocks now vs the short-term reference."""
        assert self._short is not None and self._ref_blocks is not None
        ok = self._ref_blocks & (self._short[_Y] >= self.params.min_block_luma / 2)
        if int(ok.sum()) < self.params.min_ref_blocks:
            return 1.0
        return float(np.median(feats[_Y][ok] / self._short[_Y][ok]))

    def _evidence(self, feats: F32, base: F32, z: _Zone) -> dict[str, Any] | None:
        """Haze evidence of zone `z` against baseline `base`, normalised by the reference region."""
        p = self.params
        assert z.weight is not None and self._ref_blocks is not None
        valid = (
            (base[_Y] >= p.min_block_luma)
            & (feats[_Y] >= p.min_block_luma)
            & (base[_T] >= p.min_texture)
            & (feats[_Y] < 245)
        )
        ref = valid & self._ref_blocks
        zone = valid & (z.weight > 0)
        if int(ref.sum()) < p.min_ref_blocks or not zone.any():
            return None
        eps = 1e-3
        rc = feats[_C] / np.maximum(base[_C], eps)
        rs = feats[_S] / np.maximum(base[_S], eps)
        da = feats[_A] - base[_A]
        colour_ok = base[_S] >= 0.02  # near-grey blocks carry no colour evidence
        f_c = float(np.median(rc[ref]))
        f_s = float(np.median(rs[ref & colour_ok])) if (ref & colour_ok).sum() >= p.min_ref_blocks else 1.0
        f_a = float(np.median(da[ref]))
        e_c = np.clip((1.0 - rc / max(f_c, eps)) / p.contrast_span, 0.0, 1.0)
        e_s = np.where(colour_ok, np.clip((1.0 - rs / max(f_s, eps)) / p.colour_span, 0.0, 1.0), 0.0)
        e_a = np.clip((da - f_a) / p.airlight_span, 0.0, 1.0)
        wc, ws, wa = p.weights
        # colour and airlight only count where contrast dropped too: shadows and glare change them alone
        e = wc * e_c + (ws * e_s + wa * e_a) * np.minimum(1.0, 3.0 * e_c)
        e /= wc + ws + wa
        wz = z.weight * zone
        total = float(wz.sum())
        index = float((e * wz).sum() / total)
        hazy = (e >= 0.3) & zone
        out: dict[str, Any] = {
            "index": index,
            "haze_index": round(index, 3),
            "contrast_loss": round(float((e_c * wz).sum() / total), 3),
            "colour_loss": round(float((e_s * wz).sum() / total), 3),
            "airlight": round(float((e_a * wz).sum() / total), 3),
            "coverage": round(float((wz * hazy).sum() / total), 3),
            "baseline": "short",
            "lighting": {"contrast": round(f_c, 3), "colour": round(f_s, 3), "airlight": round(f_a, 3)},
        }
        if hazy.any():
            assert self._grid is not None
            gh, gw = self._grid
            ys, xs = np.nonzero(hazy)
            out["plume_xyxy"] = [
                round(float(xs.min()) / gw, 3), round(float(ys.min()) / gh, 3),
                round(float(xs.max() + 1) / gw, 3), round(float(ys.max() + 1) / gh, 3),
            ]  # fmt: skip
        return out

    def _activity(self, blurred: F32, coarse: F32, now: float, z: _Zone, dark: bool) -> dict[str, Any] | None:
        """Lights and motion in zone `z` against the previous analysed frame."""
        p = self.params
        prev = self._prev
        if prev is None or self._prev_ts is None or not 0 < now - self._prev_ts <= p.max_motion_gap_s:
            return None
        assert z.pixels is not None and self._ref_blocks is not None
        m = z.pixels
        n = max(int(m.sum()), 1)
        # a global gain (auto exposure, a cloud) is not motion
        cur_med, prev_med = float(np.median(coarse[::4, ::4])), float(np.median(prev[::4, ::4]))
        gain = cur_med / prev_med if prev_med > 5 and cur_med > 5 else 1.0
        diff = np.abs(coarse - prev * gain)
        moving = diff > p.motion_level + 0.05 * np.maximum(coarse, prev * gain)
        assert self._ref_pixels is not None
        if self._ref_pixels.any():
            glob = float(np.count_nonzero(moving & self._ref_pixels)) / float(np.count_nonzero(self._ref_pixels))
            if glob >= p.global_motion_frac:
                return {"global_motion": round(glob, 3)}
        changed = moving & m
        if dark:
            lights = float(np.count_nonzero((blurred >= p.light_level) & m)) / n
            lit = np.maximum(coarse, prev * gain) >= p.lit_level
            motion = float(np.count_nonzero(changed & lit)) / n
            active = lights >= p.min_light_frac and motion >= p.min_motion_frac
            score = 0.5 * min(1.0, lights / (5 * p.min_light_frac)) + 0.5 * min(1.0, motion / (5 * p.min_motion_frac))
        else:
            lights = 0.0
            motion = float(np.count_nonzero(changed)) / n
            active = motion >= p.day_motion_frac
            score = min(1.0, 0.5 + 0.5 * motion / (3 * p.day_motion_frac))
        return {
            "lights": round(lights, 4),
            "motion": round(motion, 4),
            "dark": dark,
            "active": bool(active),
            "activity": round(float(score), 3),
        }

    def _derived(self, small: F32) -> tuple[F32, F32, F32]:
        """Lightly blurred grey (shift checks), coarse grey (motion) and block features."""
        grey = cv2.transform(small, np.float32([[0.114, 0.587, 0.299]]))
        blurred = cv2.GaussianBlur(grey, (5, 5), 0)
        # motion is measured on a coarser copy: defocus, codec noise and 1-px shake only touch fine detail
        coarse = cv2.GaussianBlur(grey, (0, 0), 2.0)
        return blurred, coarse, self._features(small, grey)

    def _sway(self, blurred: F32) -> tuple[int, int] | None:
        """The whole-pixel shift to undo ((0, 0): none), or None while the view is moved (skip it)."""
        p = self.params
        assert self._view is not None
        h, w = blurred.shape
        if self._hann is None or self._hann.shape != (h, w):
            self._hann = cv2.createHanningWindow((w, h), cv2.CV_32F)
        # copies: OpenCV's phaseCorrelate applies the window to its inputs in place
        (dx, dy), response = cv2.phaseCorrelate(self._view.copy(), blurred.copy(), self._hann)
        shift = math.hypot(dx, dy)
        if shift <= p.max_shift_px or response < 0.05:
            self._shifts = 0
            return 0, 0
        if shift <= p.sway_px:
            self._shifts = 0
            return round(dx), round(dy)
        self._shifts += 1
        if self._shifts >= p.shift_relearn:  # the camera stays where it was knocked: start over
            shape = self._shape
            assert shape is not None
            self._setup(*shape)
        return None

    def _learn(self, now: float, hour: int, feats: F32, blurred: F32, frozen: NDArray[np.bool_]) -> None:
        p = self.params
        assert self._short is not None and self._view is not None
        dt = 0.0 if self._short_ts is None else min(max(now - self._short_ts, 0.0), 3600.0)
        self._short_ts = now
        adapting = now < self._adapt_until
        alpha = 1.0 - math.exp(-dt / (p.tau_fast_s if adapting else p.tau_short_s)) if dt > 0 else 0.0
        if adapting:
            frozen = np.zeros_like(frozen)
        if alpha > 0:
            keep = frozen[None]
            self._short = np.where(keep, self._short, self._short + alpha * (feats - self._short)).astype(np.float32)
            cv2.accumulateWeighted(blurred, self._view, alpha)
        self._learn_bucket(hour, feats, frozen)

    def _learn_bucket(self, hour: int, feats: F32, frozen: NDArray[np.bool_] | None) -> None:
        assert self._buckets is not None
        n = int(self._counts[hour])
        a = max(1.0 / (n + 1), 1.0 / self.params.bucket_samples)
        b = self._buckets[hour]
        upd = b + a * (feats - b)
        if frozen is not None and n > 0:
            upd = np.where(frozen[None], b, upd)
        self._buckets[hour] = upd
        self._counts[hour] = n + 1


def construction_zones(zones: Sequence[Any]) -> dict[str, list[tuple[float, float]]]:
    """{name: polygon} of the `construction_site` zones of a camera's config zones."""
    out: dict[str, list[tuple[float, float]]] = {}
    for z in zones:
        purpose = getattr(getattr(z, "purpose", None), "value", getattr(z, "purpose", None))
        if purpose == "construction_site":
            out[z.name] = [tuple(pt) for pt in z.polygon]  # type: ignore[misc]
    return out
