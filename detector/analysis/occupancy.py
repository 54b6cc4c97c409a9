"""Occupancy: new stationary objects against a slowly learned empty view.

Fixed cameras are analysed every few seconds, so classic 25 fps background
subtraction does not apply: one analysis may be 10 s after the previous one.
This analyzer keeps two backgrounds of the camera view, in a small blurred copy:

* short-term: the per-pixel median of the last K analysed frames, so a passer
  seen in one or two analyses is not in it while an object that stayed for
  K//2+1 analyses is;
* long-term: an exponential average of the short-term one with time-based rates
  (tau_long), updated *selectively*: pixels that are occupied are not learned,
  so a stall standing for an hour stays detected (until max_static_minutes).

A pixel is static foreground when the frame differs from the long-term
background, agrees with the short-term one, and the short-term one differs from
the long-term one. Frames are first photometrically normalised to the long-term
background's lighting (per-channel global gain times a clamped per-block gain,
estimated on pixels that are not foreground), so cloud and sun changes are not
objects; a change covering most of the frame is treated as a lighting or camera
event; a view shifted by a few pixels (sway, by phase correlation) is shifted
back and analysed, a larger shift (a bumped camera) is skipped, and re-aligned
when it persists. Two cheap checks let the
long-term background escape wrong states:
texture-preserving, chroma-preserving changes (shadows on textured ground) are
illumination, and "ghosts" (an object of the learned view that left, revealing
ground that looks like its surroundings) are absorbed at once.

Vending (`people=True`): a stall or a vendor's cart is a stationary object with
people lingering beside it. Every analysis also lists the person-shaped blobs
of the foreground (taller than wide, moving or standing); a stationary object
with such a blob beside it — about as tall as the object or up to twice as
tall, feet near its foot line, within half a width or a person's height of
it — in at least `people_k` of the last `people_n` analyses is reported a
second time as "occupancy:vending", with the count in its extras. A pile of
goods is too low for a passer to count, and a passer is beside an object in
one analysis, not in several.

With a people detector (`people=` a function giving a frame's person boxes, the
COCO model's), the person cue is learned instead of shaped: only a detected
person counts, so bottles, bollards and bins beside goods are no vendors, and
a stationary object that is mostly one detected person (someone standing
still) is not reported at all. The detector runs only on analyses that hold a
stationary object.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.analysis.base import Analyzer
from detector.analysis.zones import polygon_mask
from detector.types import Frame, Observations

#: a polygon in normalised frame coordinates, [(x, y), ...]
Polygon = Sequence[tuple[float, float]]

LABEL = "occupancy:stationary"
VENDING = "occupancy:vending"
#: the detector class that a person cue comes from
PERSON = "person"
_STATE_VERSION = 1

F32 = NDArray[np.float32]
Mask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class OccupancyParams:
    """Tuning of `OccupancyAnalyzer`; grey levels are on the 0..255 scale of the frame."""

    #: width of the analysed copy; everything below is computed at this size
    work_width: int = 320
    #: Gaussian blur (odd, 0/1 = none) against sensor noise and H.264 blocks
    blur_ksize: int = 5
    #: K, analyses in the short-term median (odd: an object needs K//2+1 of them)
    short_frames: int = 5
    #: time constant of the long-term background, seconds
    tau_long_s: float = 20 * 60.0
    #: time constant while adapting to a global (lighting/camera) change, seconds
    tau_fast_s: float = 30.0
    #: an occupied pixel is absorbed into the long-term background after this long
    max_static_minutes: float = 8 * 60.0
    #: colour difference (max over B, G, R) above which a pixel differs from a background
    diff_threshold: float = 24.0
    #: extra tolerance proportional to the background value (gain errors, bright areas)
    rel_threshold: float = 0.06
    #: a frame pixel "agrees" with the short-term background below this difference
    agree_threshold: float = 24.0
    #: tolerance to camera jitter: compare against the min/max of a (2j+1)² neighbourhood
    jitter_px: int = 1
    #: a global image shift above this (px at work size) is camera motion: the analysis is
    #: skipped, and after K shifted analyses in a row the background is re-aligned; 0 = off
    max_shift_px: float = 1.5
    #: ... unless it is at most this: sway (wind, a vibrating mount), the frame is shifted back onto the
    #: background and analysed; skipping it would leave a biased subset of the frames (only the unswayed
    #: ones), in which a passer seen in each of them looks stationary
    sway_px: float = 4.0
    #: (rows, cols) of the per-block gain grid
    gain_grid: tuple[int, int] = (3, 4)
    #: how far a block's gain may depart from the global one (local sun/shade)
    local_gain_range: float = 0.15
    #: min normalised cross-correlation of texture for a change to count as illumination
    #: (shadow on textured ground); > 1 disables the test
    illum_ncc: float = 0.8
    #: local std (grey levels) both images need for the illumination test to apply
    illum_min_texture: float = 2.5
    #: fraction of non-occupied pixels differing above which the change is global
    global_change_frac: float = 0.4
    #: a global change lasting this long re-initialises the view (camera moved), seconds
    reset_after_s: float = 5 * 60.0
    #: minimum component area as a fraction of the frame
    min_area: float = 0.002
    #: opening kernel (px at work size) removing speckle, 0 = none
    open_px: int = 3
    #: closing kernel (px at work size) filling holes in uniform objects, 0 = none
    close_px: int = 7
    #: a component is a ghost when its boundary contrast in the long-term background
    #: exceeds this factor times that in the short-term one; 0 disables the test
    ghost_ratio: float = 2.0
    #: ... and the edges along its outline in the long-term background exceed this factor times
    #: those in the short-term one (a real object keeps its outline, a ghost loses it)
    ghost_edge_ratio: float = 0.8
    #: longest gap between analyses used for the update rate, seconds
    max_dt_s: float = 3600.0
    #: also report stationary objects with people lingering beside them as VENDING
    people: bool = False
    #: ... seen beside it in at least people_k of the last people_n analyses
    people_k: int = 3
    people_n: int = 8
    #: a person-shaped blob is at least this much taller than wide
    person_aspect: float = 1.4
    #: and (height relative to the object's) within this range
    person_height: tuple[float, float] = (0.45, 2.2)


class OccupancyAnalyzer(Analyzer):
    """Finds new stationary objects ("occupancy:stationary") in one camera view.

    `mask`, if given, is a list of normalised polygons (the union of the zones
    the rules care about): only components overlapping it are reported.
    """

    name = "occupancy"
    gated = False  # its backgrounds learn from every due frame; it is what tells change apart

    def __init__(
        self,
        params: OccupancyParams | None = None,
        mask: Sequence[Polygon] | None = None,
        people: Callable[[Frame], NDArray[np.float32]] | None = None,
    ) -> None:
        self.params = params or OccupancyParams()
        self._find_people = people
        if self.params.short_frames < 3:
            raise ValueError("short_frames must be >= 3")
        self._polygons = None if mask is None else [np.asarray(p, np.float32).reshape(-1, 2) for p in mask]
        self._mask: Mask | None = None  # rasterised polygons at work size
        self._bg: F32 | None = None  # long-term background, in its own lighting
        self._since: NDArray[np.float64] | None = None  # epoch s a pixel became occupied, NaN = empty
        self._buf: deque[NDArray[np.uint8]] = deque(maxlen=self.params.short_frames)
        self._prev_fg: Mask | None = None  # excluded from gain estimation
        self._last_ts: float | None = None
        self._fresh = False  # bg comes from one frame: replace it by the first median
        self._change_since: float | None = None  # start of an ongoing global change
        self._shifts: list[tuple[float, float]] = []  # consecutive camera shifts seen
        self._hann: F32 | None = None
        # person-shaped foreground blobs (normalised xyxy) of the last people_n analyses
        # (epoch s, boxes): only the analyses since an object came count for it
        self._people: deque[tuple[float, NDArray[np.float32]]] = deque(maxlen=self.params.people_n)
        self._wh = 16 / 9  # width / height of the view: normalised boxes to pixel shapes

    # ------------------------------------------------------------------ API

    def analyze(self, frame: Frame) -> Observations:
        p = self.params
        img = self._prepare(frame.image)
        now = frame.ts.timestamp()
        self._wh = img.shape[1] / img.shape[0]
        if self._bg is None or self._bg.shape != img.shape:
            self._reset(img)
            self._last_ts = now
            return Observations()
        dt = 0.0 if self._last_ts is None else min(max(now - self._last_ts, 0.0), p.max_dt_s)
        self._last_ts = now
        assert self._since is not None
        bg = self._bg

        gain, g = self._gain(img, bg)
        if not 0.6 <= g <= 1 / 0.6:  # keep bg near the current lighting: thresholds stay meaningful
            gg = gain.reshape(-1, 3).mean(axis=0)
            bg *= gg
            np.clip(bg, 0, 255, out=bg)
            for i, f in enumerate(self._buf):
                self._buf[i] = np.clip(f * gg, 0, 255).astype(np.uint8)
            gain /= gg
            g = 1.0
        fn = np.clip(img / gain, 0, 255)
        if p.max_shift_px > 0:
            aligned = self._align(fn, bg)
            if aligned is None:
                return Observations()
            fn = aligned
        self._buf.append((fn + 0.5).astype(np.uint8))
        if len(self._buf) < p.short_frames:
            return Observations()
        short = _median(self._buf).astype(np.float32)
        if self._fresh:  # the first frame may hold passers; the median does not
            bg[:] = short
            self._fresh = False

        thr = p.diff_threshold / g  # thresholds are in frame levels; fn is scaled by 1/g
        bg_lo, bg_hi = self._range(bg)
        ex_long = _excess(fn, bg_lo, bg_hi, p.rel_threshold)
        d_long = ex_long > thr
        held = ~np.isnan(self._since)
        if float(np.mean(d_long & ~held)) > p.global_change_frac or self._adapting(d_long & ~held):
            self._global_change(fn, held, dt, now)
            return Observations()
        self._change_since = None

        s_lo, s_hi = self._range(short)
        d_short = _excess(fn, s_lo, s_hi, p.rel_threshold) > p.agree_threshold / g
        ex_sl = _excess(short, bg_lo, bg_hi, p.rel_threshold)
        d_sl = ex_sl > thr
        illum: Mask | None = None
        if p.illum_ncc <= 1.0 and d_sl.any():
            illum = self._illumination(short, bg)
            d_sl &= ~illum
            d_long &= ~illum
        static = self._clean(d_long & d_sl & ~d_short)
        occupied = d_sl | static

        since = self._since
        since[~occupied] = np.nan
        since[occupied & np.isnan(since)] = now

        obs, ghosts = self._components(static, short, bg, ex_long, thr, frame.ts)
        if ghosts is not None:
            bg[ghosts] = short[ghosts]
            since[ghosts] = np.nan
            occupied &= ~ghosts

        if p.people:
            obs = self._with_people(obs, frame, d_long)
        expired = occupied & (now - np.nan_to_num(since, nan=now) >= p.max_static_minutes * 60.0)
        if expired.any():
            bg[expired] = short[expired]
            since[expired] = np.nan
        keep = occupied & ~expired
        if keep.any():  # hysteresis: weakly differing pixels next to an object are not learned either,
            # else an object's low-contrast parts, flickering around the threshold, erode it over an hour
            near = cv2.dilate(keep.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
            weak = ex_sl > thr / 2
            if illum is not None:
                weak &= ~illum
            keep |= near.astype(bool) & weak & ~expired
        alpha = 1.0 - math.exp(-dt / p.tau_long_s)
        if alpha > 0:
            cv2.accumulateWeighted(short, bg, alpha, mask=(~keep).astype(np.uint8))
        self._prev_fg = cv2.dilate((d_long | keep).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        return obs

    def state(self) -> bytes | None:
        """The long-term background and static-since map: a restart keeps knowing the empty view."""
        if self._bg is None or self._since is None:
            return None
        out = io.BytesIO()
        np.savez_compressed(
            out,
            version=np.int32(_STATE_VERSION),
            bg=(self._bg + 0.5).astype(np.uint8),
            since=self._since,
        )
        return out.getvalue()

    def load_state(self, blob: bytes) -> None:
        """Restores `state()`; a corrupt or mismatched blob is ignored (the first frame re-initialises)."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                if int(z["version"]) != _STATE_VERSION:
                    return
                bg, since = z["bg"], z["since"]
        except (OSError, EOFError, ValueError, TypeError, KeyError, zipfile.BadZipFile):
            return
        if bg.ndim != 3 or bg.shape[2] != 3 or since.shape != bg.shape[:2] or bg.shape[1] > self.params.work_width:
            return
        self._bg = bg.astype(np.float32)
        self._since = since.astype(np.float64)
        self._buf.clear()
        self._prev_fg = None
        self._last_ts = None
        self._fresh = False
        self._change_since = None
        self._shifts.clear()

    # ------------------------------------------------------------ internals

    def _prepare(self, image: NDArray[np.uint8]) -> F32:
        """Small blurred float copy: cheap, and blind to noise and codec blocks."""
        h, w = image.shape[:2]
        ww = min(self.params.work_width, w)
        wh = max(1, round(h * ww / w))
        small = cv2.resize(image, (ww, wh), interpolation=cv2.INTER_AREA) if (ww, wh) != (w, h) else image
        k = self.params.blur_ksize
        if k > 1:
            small = cv2.GaussianBlur(small, (k | 1, k | 1), 0)
        return small.astype(np.float32)

    def _reset(self, img: F32) -> None:
        self._bg = img.copy()
        self._since = np.full(img.shape[:2], np.nan)
        self._buf.clear()
        self._buf.append((img + 0.5).astype(np.uint8))
        self._prev_fg = None
        self._fresh = True
        self._change_since = None
        self._shifts.clear()
        self._mask = None

    def _gain(self, img: F32, bg: F32) -> tuple[F32, float]:
        """Per-pixel BGR gain mapping bg's lighting to img's, and its mean global value.

        Median of per-pixel ratios on non-foreground pixels (robust to objects
        covering less than half of the estimate); per-block corrections are
        clamped near the global gain so a large object cannot be explained away
        as local lighting.
        """
        p = self.params
        im, b = img[::2, ::2], bg[::2, ::2]
        valid = (_cmin(b) > 12) & (_cmax(b) < 245) & (_cmax(im) < 245)
        exclude = ~np.isnan(self._since) if self._since is not None else None
        if self._prev_fg is not None and self._prev_fg.shape == img.shape[:2]:
            exclude = self._prev_fg if exclude is None else exclude | self._prev_fg
        if exclude is not None:
            v2 = valid & ~exclude[::2, ::2]
            if v2.mean() >= 0.2:
                valid = v2
        if valid.sum() < 200:
            return np.ones_like(img), 1.0
        ratio = im / np.maximum(b, 1.0)
        glob = np.median(ratio[valid], axis=0).astype(np.float32)
        glob = np.maximum(glob, 0.02)
        rel = _csum(ratio) / float(glob.sum())
        rows, cols = p.gain_grid
        hh, ww = rel.shape
        blocks = np.ones((rows, cols), np.float32)
        for r in range(rows):
            for c in range(cols):
                sl = (slice(r * hh // rows, (r + 1) * hh // rows), slice(c * ww // cols, (c + 1) * ww // cols))
                v = valid[sl]
                if v.mean() >= 0.25:
                    blocks[r, c] = np.median(rel[sl][v])
        np.clip(blocks, 1 - p.local_gain_range, 1 + p.local_gain_range, out=blocks)
        rel_map = cv2.resize(blocks, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        return rel_map[..., None] * glob, float(glob.mean())

    def _align(self, fn: F32, bg: F32) -> F32 | None:
        """`fn` on the background's pixel grid, or None when the view is shifted against it (bumped camera).

        Phase correlation ignores lighting and small objects. Sway (a shift up to
        `sway_px`) is undone by shifting the frame back. A larger shift skips the
        analysis; seen in K analyses in a row it is a moved camera: background and
        static-since map are re-aligned (integer shift; the uncovered border is
        taken from the frame).
        """
        h, w = fn.shape[:2]
        if self._hann is None or self._hann.shape != (h, w):
            self._hann = cv2.createHanningWindow((w, h), cv2.CV_32F)
        (dx, dy), _ = cv2.phaseCorrelate(_csum(bg), _csum(fn), self._hann)
        shift = math.hypot(dx, dy)
        if shift <= self.params.max_shift_px:
            self._shifts.clear()
            return fn
        if shift <= self.params.sway_px:
            self._shifts.clear()
            back = np.float32([[1, 0, -dx], [0, 1, -dy]])
            return cv2.warpAffine(fn, back, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        self._shifts.append((dx, dy))
        if len(self._shifts) >= self.params.short_frames:
            d = np.asarray(self._shifts)
            if np.ptp(d, axis=0).max() <= 1.0:
                assert self._since is not None
                sx, sy = (int(round(v)) for v in d.mean(axis=0))
                self._bg = _shifted(bg, sx, sy, fn)
                self._since = _shifted(self._since, sx, sy, np.full((h, w), np.nan))
                self._buf.clear()
                self._prev_fg = None
                self._shifts.clear()
            else:
                del self._shifts[0]
        return None

    def _range(self, ref: F32) -> tuple[F32, F32]:
        """Neighbourhood min/max of a background: one-pixel jitter is not a change."""
        j = self.params.jitter_px
        if j <= 0:
            return ref, ref
        k = np.ones((2 * j + 1, 2 * j + 1), np.uint8)
        return cv2.erode(ref, k), cv2.dilate(ref, k)

    def _adapting(self, diff: Mask) -> bool:
        """Hysteresis: an ongoing global change ends only when most of it has been learned."""
        return self._change_since is not None and float(np.mean(diff)) > self.params.global_change_frac / 2

    def _global_change(self, fn: F32, held: Mask, dt: float, now: float) -> None:
        """Lighting the gain could not explain, or a moved camera: learn fast, emit nothing."""
        assert self._bg is not None
        if self._change_since is None:
            self._change_since = now
        if now - self._change_since >= self.params.reset_after_s:
            self._reset(fn)  # the view itself changed: start over
            return
        alpha = 1.0 - math.exp(-max(dt, 1.0) / self.params.tau_fast_s)
        cv2.accumulateWeighted(fn, self._bg, alpha, mask=(~held).astype(np.uint8))
        self._prev_fg = None

    def _illumination(self, a: F32, b: F32) -> Mask:
        """Where `a` is `b` under other light: same texture (NCC) and same chromaticity."""
        p = self.params
        ga, gb = _csum(a) / 3, _csum(b) / 3
        k = (7, 7)
        ma, mb = cv2.blur(ga, k), cv2.blur(gb, k)
        va = cv2.blur(ga * ga, k) - ma * ma
        vb = cv2.blur(gb * gb, k) - mb * mb
        cov = cv2.blur(ga * gb, k) - ma * mb
        t2 = p.illum_min_texture**2
        textured = (va > t2) & (vb > t2)
        ncc = cov / np.sqrt(np.maximum(va, t2) * np.maximum(vb, t2))
        ca = a / (3 * ga + 1.0)[..., None]
        cb = b / (3 * gb + 1.0)[..., None]
        chroma_ok = _cmax(np.abs(ca - cb)) < 0.05
        return textured & (ncc > p.illum_ncc) & chroma_ok

    def _clean(self, m: Mask) -> Mask:
        u8 = m.astype(np.uint8)
        p = self.params
        if p.open_px > 1:
            u8 = cv2.morphologyEx(u8, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.open_px,) * 2))
        if p.close_px > 1:
            u8 = cv2.morphologyEx(u8, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.close_px,) * 2))
        return u8.astype(bool)

    def _person_boxes(self, fg: Mask) -> NDArray[np.float32]:
        """Normalised boxes of the person-shaped blobs (taller than wide) of the foreground."""
        h, w = fg.shape
        _, _, stats, _ = cv2.connectedComponentsWithStats(self._clean(fg).astype(np.uint8), connectivity=8)
        min_px = self.params.min_area * h * w / 4  # a person is narrower than the smallest object
        keep = [
            (x / w, y / h, (x + bw) / w, (y + bh) / h)
            for x, y, bw, bh, area in stats[1:].tolist()
            if area >= min_px and bh >= self.params.person_aspect * bw
        ]
        return np.asarray(keep, np.float32).reshape(-1, 4)

    def _with_people(self, obs: Observations, frame: Frame, fg: Mask) -> Observations:
        """Records this analysis' people and adds the VENDING copies of `obs` (see the module doc)."""
        now = frame.ts.timestamp()
        if self._find_people is None:
            self._people.append((now, self._person_boxes(fg)))
            return self._vending(obs, detected=False) if len(obs) else obs
        people = self._find_people(frame) if len(obs) else np.zeros((0, 4), np.float32)
        self._people.append((now, people))
        if not len(obs):
            return obs
        obs = obs[~_mostly_person(obs.xyxy, people)]
        return self._vending(obs, detected=True) if len(obs) else obs

    def _vending(self, obs: Observations, *, detected: bool) -> Observations:
        """`obs` plus a VENDING copy of every object with people beside it in enough recent analyses."""
        p = self.params
        boxes, scores, extras = [], [], []
        for box, score, extra in zip(obs.xyxy, obs.scores, obs.extras, strict=True):
            if not detected and box[3] - box[1] >= p.person_aspect * (box[2] - box[0]) * self._wh:
                extra["people"] = 0  # a person standing still is no stall, whoever stands beside them
                continue
            # people around the spot before the object came (an earlier stall's buyers) do not count
            since = datetime.fromisoformat(extra["static_since"]).timestamp()
            seen = sum(bool(_beside(box, people, p.person_height).any()) for t, people in self._people if t >= since)
            extra["people"] = seen
            if seen >= p.people_k:
                boxes.append(box)
                scores.append(score)
                extras.append({**extra, "people_of": len(self._people)})
        if not boxes:
            return obs
        return Observations.merge([obs, Observations.build(boxes, scores, [VENDING] * len(boxes), extras)])

    def _roi_mask(self, shape: tuple[int, int]) -> Mask | None:
        if self._polygons is None:
            return None
        if self._mask is None or self._mask.shape != shape:
            self._mask = np.zeros(shape, bool)
            for poly in self._polygons:
                if len(poly) >= 3:
                    self._mask |= polygon_mask(poly, shape)  # the union: overlapping zones never cancel out
        return self._mask

    def _is_ghost(self, comp: Mask, short: F32, bg: F32) -> bool:
        """An object of the learned view that left: the revealed ground blends with its surroundings.

        Compares the mean colour of an inner and an outer ring around the
        component in both backgrounds: a real object contrasts with its ring in
        the short-term background, a ghost contrasts in the long-term one. The
        same must hold for the edges along its outline: a colourful object (a
        striped canopy over crates) can average out to the colour of its
        surroundings, but not lose its outline.
        """
        k = np.ones((7, 7), np.uint8)
        u8 = comp.astype(np.uint8)
        inner = comp & ~cv2.erode(u8, k).astype(bool)
        outer = cv2.dilate(u8, k).astype(bool) & ~comp
        if inner.sum() < 4 or outer.sum() < 4:
            return False
        c_short = np.abs(short[inner].mean(axis=0) - short[outer].mean(axis=0)).max()
        c_bg = np.abs(bg[inner].mean(axis=0) - bg[outer].mean(axis=0)).max()
        ratio = self.params.ghost_ratio
        if not (c_bg > ratio * c_short and c_bg > self.params.diff_threshold / 2):
            return False
        k3 = np.ones((3, 3), np.uint8)
        line = cv2.dilate(u8, k3).astype(bool) & ~cv2.erode(u8, k3).astype(bool)
        return bool(_edges(bg)[line].mean() > self.params.ghost_edge_ratio * _edges(short)[line].mean())

    def _components(
        self, static: Mask, short: F32, bg: F32, ex_long: F32, thr: float, ts: datetime
    ) -> tuple[Observations, Mask | None]:
        """Observations for static components, and the ghost pixels to absorb (None: none)."""
        p = self.params
        assert self._since is not None
        h, w = static.shape
        n, labels, stats, _ = cv2.connectedComponentsWithStats(static.astype(np.uint8), connectivity=8)
        roi = self._roi_mask((h, w))
        min_px = p.min_area * h * w
        boxes: list[tuple[float, float, float, float]] = []
        scores: list[float] = []
        extras: list[dict[str, Any]] = []
        ghosts: Mask | None = None
        pad = 5
        for i in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            if area < min_px:
                continue
            ys = slice(max(y - pad, 0), min(y + bh + pad, h))
            xs = slice(max(x - pad, 0), min(x + bw + pad, w))
            comp = labels[ys, xs] == i
            if roi is not None and not roi[ys, xs][comp].any():
                continue
            if p.ghost_ratio > 0 and self._is_ghost(comp, short[ys, xs], bg[ys, xs]):
                if ghosts is None:
                    ghosts = np.zeros((h, w), bool)
                ghosts[ys, xs] |= comp
                continue
            contrast = min(1.0, float(ex_long[ys, xs][comp].mean()) / (2 * thr))
            since = float(np.nanmedian(self._since[ys, xs][comp]))
            boxes.append((x / w, y / h, (x + bw) / w, (y + bh) / h))
            scores.append(float(np.clip(area / (bw * bh) * contrast, 0.0, 1.0)))
            extras.append(
                {
                    "area": area / (h * w),
                    "static_since": datetime.fromtimestamp(since, tz=ts.tzinfo).isoformat(),
                }
            )
        if not boxes:
            return Observations(), ghosts
        return Observations.build(boxes, scores, [LABEL] * len(boxes), extras), ghosts


def _mostly_person(objs: NDArray[np.float32], people: NDArray[np.float32]) -> Mask:
    """Which object boxes are mostly one person: a person box covers ≥ 60 % of the object
    box, which is at most 1.5 times the person's size (a person beside a stall: not so)."""
    if not len(people) or not len(objs):
        return np.zeros(len(objs), bool)
    ix = np.clip(
        np.minimum(objs[:, None, 2], people[None, :, 2]) - np.maximum(objs[:, None, 0], people[None, :, 0]), 0, None
    )
    iy = np.clip(
        np.minimum(objs[:, None, 3], people[None, :, 3]) - np.maximum(objs[:, None, 1], people[None, :, 1]), 0, None
    )
    area_o = ((objs[:, 2] - objs[:, 0]) * (objs[:, 3] - objs[:, 1]))[:, None]
    area_p = ((people[:, 2] - people[:, 0]) * (people[:, 3] - people[:, 1]))[None, :]
    return ((ix * iy >= 0.6 * area_o) & (area_o <= 1.5 * area_p)).any(axis=1)


def _beside(obj: NDArray[np.float32], people: NDArray[np.float32], height: tuple[float, float]) -> Mask:
    """Which person boxes stand beside the object box: their size, foot line and distance fit a person at it."""
    if not len(people):
        return np.zeros(0, bool)
    ox0, oy0, ox1, oy1 = (float(v) for v in obj)
    ow, oh = ox1 - ox0, oy1 - oy0
    px0, py0, px1, py1 = people.T
    ph = py1 - py0
    inter = np.clip(np.minimum(px1, ox1) - np.maximum(px0, ox0), 0, None) * np.clip(
        np.minimum(py1, oy1) - np.maximum(py0, oy0), 0, None
    )
    gap = np.maximum(np.maximum(px0 - ox1, ox0 - px1), 0.0)
    return (
        (ph >= height[0] * oh)
        & (ph <= height[1] * oh)
        & (py1 >= oy1 - 0.6 * oh)  # feet (or what is seen of them) near the object's foot line: same depth
        & (py1 <= oy1 + 0.3 * oh)
        & (gap <= np.maximum(0.5 * ow, ph))  # within reach
        & (inter < 0.6 * (px1 - px0) * ph)  # not the object itself (nor a trolley's pusher, merged with it)
    )


def _edges(img: F32) -> F32:
    """Gradient magnitude of the grey image."""
    grey = _csum(img) / 3
    return cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))


def _median(frames: Sequence[NDArray[np.uint8]]) -> NDArray[np.uint8]:
    """Per-pixel median by an odd-even transposition network: ~15x faster than np.median."""
    v = list(frames)
    n = len(v)
    for r in range(n):
        for i in range(r % 2, n - 1, 2):
            lo = np.minimum(v[i], v[i + 1])
            v[i + 1] = np.maximum(v[i], v[i + 1])
            v[i] = lo
    return v[n // 2]


def _shifted(a: NDArray[Any], dx: int, dy: int, fill: NDArray[Any]) -> NDArray[Any]:
    """`a` moved by (dx, dy) pixels; what is uncovered comes from `fill`."""
    h, w = a.shape[:2]
    out = fill.astype(a.dtype, copy=True)
    if abs(dx) < w and abs(dy) < h:
        out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
            max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
        ]
    return out


def _excess(a: F32, lo: F32, hi: F32, rel: float) -> F32:
    """How far `a` lies outside [lo, hi] beyond a tolerance relative to hi; max over channels."""
    d = np.maximum(a - hi, lo - a)
    if rel:
        d -= rel * hi
    return _cmax(d)


# Reductions over the 3 channels by slicing: numpy's axis=-1 reduce of size 3 is ~10x slower.


def _cmax(a: F32) -> F32:
    return np.maximum(np.maximum(a[..., 0], a[..., 1]), a[..., 2])


def _cmin(a: F32) -> F32:
    return np.minimum(np.minimum(a[..., 0], a[..., 1]), a[..., 2])


def _csum(a: F32) -> F32:
    return a[..., 0] + a[..., 1] + a[..., 2]
