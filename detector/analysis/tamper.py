"""Camera tamper: a view that moved, a covered or sprayed lens, a defocused lens.

A city camera that was knocked, turned off its PTZ preset, covered or sprayed
silently stops finding problems; its zones no longer match what it sees. This
check compares each analysed frame with a **reference view** learned over the
first minutes (`learn_s`): the per-pixel median of a few frames spread over that
time, so people and cars passing are not part of it.

* **moved** — phase correlation between the reference and the frame finds a
  shift above `moved_px`; when the correlation is too weak to tell (rotation,
  zoom, another preset), ORB keypoints matched to the reference and a RANSAC
  homography measure how far the frame corners moved, and as the last resort
  the share of the reference's strong edges still found in place tells a
  different view from the same one.
* **covered** — most blocks of the view lost their edges *and* became
  uniform (a hand, a bag, paint: low relative standard deviation), with no
  bright light source left; a dark night still has lamps and lit windows, so it
  is not "covered".
* **blurred** — the share of fine detail (differences to a slightly blurred
  copy, divided by differences to a strongly blurred copy) dropped below
  `blurred_ratio` of the reference's while the coarse layout still matches.
  The ratio does not depend on lighting or on overall contrast.

All measures are ratios (gradients ÷ mean luma, fine ÷ coarse detail), so a
cloud, the sun or auto-exposure do not change them much; a raw state must be
seen `confirm` times in a row before it is reported (a person walking right in
front of the lens is not a cover). A shift of a few pixels (`sway_px`) is sway
until it lasts `sway_confirm` checks: those frames are analysed, not paused.
After an operator checked the camera, `acknowledge()` re-learns the reference
from the next frames.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.types import Frame

TamperKind = Literal["ok", "moved", "covered", "blurred"]
#: a frame's own verdict may also be "garbled": rows smeared down by a decoder that lost data
RawKind = Literal["ok", "moved", "covered", "blurred", "garbled"]
_STATE_KIND = "tamper"
_STATE_VERSION = 1
F32 = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class TamperState:
    """What the check concluded: `kind` with a confidence `score` (0..1).

    `since` is when the reported kind was first seen (pipeline time); `learning` is
    True while the reference view is still being learned (kind is then "ok").
    `details` holds the measures behind the verdict; `raw` is this frame's own
    verdict before debouncing (a frame that looks covered is no frame to analyse,
    even before it is reported).
    """

    kind: TamperKind = "ok"
    score: float = 0.0
    since: datetime | None = None
    learning: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    raw: RawKind = "ok"

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


@dataclass(frozen=True, slots=True)
class TamperParams:
    """Tuning of `TamperDetector` (pixels are pixels of the analysed copy)."""

    #: width of the analysed copy
    work_width: int = 320
    #: the reference view is learned over this long, seconds
    learn_s: float = 120.0
    #: from this many frames (odd; their per-pixel median)
    learn_frames: int = 7
    #: a shift of the view above this is "moved"
    moved_px: float = 1.5
    #: weakest phase-correlation peak trusted for a shift
    min_response: float = 0.06
    #: (rows, cols) of blocks for the cover test
    grid: tuple[int, int] = (6, 8)
    #: a block is blind when its edge energy fell below this share of the reference's ...
    blind_edges: float = 0.3
    #: ... and its relative standard deviation below `blind_std` of the reference's (or 0.05)
    blind_std: float = 0.4
    #: share of blind blocks that makes the view "covered"
    covered_frac: float = 0.6
    #: pixels at or above this luma are light sources: a view that still shows some is not covered
    light_level: float = 235.0
    #: "blurred" when the fine-detail ratio fell below this share of the reference's ...
    blurred_ratio: float = 0.6
    #: ... and the coarse layout still correlates with the reference at least this much
    coarse_ncc: float = 0.5
    #: when the phase correlation is weak: fewer ORB inliers than this cannot place the view
    min_inliers: int = 12
    #: share of the reference's strong edges found in place below which the view is another one
    view_match: float = 0.3
    #: edge energy (vs the reference) needed before an unplaceable view counts as moved
    min_edges_for_view: float = 0.5
    #: a raw verdict must repeat this many times in a row to be reported
    confirm: int = 2
    #: a shift up to this (px) is sway (a pole in the wind, a vibrating mount) until it lasts `sway_confirm`
    #: checks in a row: such a frame is still analysed (occupancy re-aligns or skips it itself; detectors do
    #: not mind a few pixels), else a swaying camera pauses its rules for a biased subset of its frames
    sway_px: float = 4.0
    sway_confirm: int = 6
    #: a frame is "garbled" (never reported, only not analysed) when this share of its rows lost their
    #: vertical detail (below `smear_ratio` of the reference's) but kept their horizontal detail: what an
    #: H.264 decoder's concealment of lost data looks like, and no lens, light or passer does
    garbled_rows: float = 0.15
    smear_ratio: float = 0.2


@dataclass(slots=True)
class _Reference:
    grey: F32  # blurred grey, work size
    energy: float  # mean gradient / (mean luma + 10)
    sharp: float  # fine / coarse detail
    block_energy: F32
    block_std: F32
    edges: NDArray[np.bool_]  # strong edges (dilated)
    rows: tuple[F32, F32]  # per row: vertical and horizontal detail


class TamperDetector:
    """Checks one camera view for tampering: `check(frame) -> TamperState`."""

    name = "tamper"  # key of its state among the camera's analyzers' (`pack_states`)

    def __init__(self, params: TamperParams | None = None) -> None:
        self.params = params or TamperParams()
        if self.params.learn_frames < 1:
            raise ValueError("learn_frames must be >= 1")
        self._ref: _Reference | None = None
        self._samples: list[F32] = []
        self._learn_start: float | None = None
        self._last_sample: float | None = None
        self._hann: F32 | None = None
        self._orb = cv2.ORB_create(nfeatures=500)
        self._ref_kp: tuple[Any, Any] | None = None
        self._reported: TamperState = TamperState(learning=True)
        self._candidate: TamperKind = "ok"
        self._candidate_since: datetime | None = None
        self._streak = 0
        self._candidate_shift: list[float] | None = None  # the view's shift when the candidate is "moved"

    # ------------------------------------------------------------------ API

    def check(self, frame: Frame) -> TamperState:
        grey = self._prepare(frame.image)
        now = frame.ts.timestamp()
        if self._ref is None or self._ref.grey.shape != grey.shape:
            self._ref = None
            self._learn(grey, now)
            if self._ref is None:
                self._reported = TamperState(learning=True)
                return self._reported
        smeared = self._smeared(grey)
        if smeared >= self.params.garbled_rows:  # says nothing about the view: the reported state stands
            return replace(self._reported, raw="garbled", details={"smeared_rows": round(smeared, 3)})
        kind, score, details = self._classify(grey)
        return self._debounce(kind, score, details, frame.ts)

    @property
    def state_now(self) -> TamperState:
        """The last reported state."""
        return self._reported

    def acknowledge(self, frame: Frame | None = None) -> None:
        """An operator checked the camera: forget the reference and learn the current view anew.

        With `frame`, learning starts from it; otherwise from the next checked frame.
        """
        self._ref = None
        self._ref_kp = None
        self._samples.clear()
        self._learn_start = self._last_sample = None
        self._candidate, self._streak = "ok", 0
        self._reported = TamperState(learning=True)
        if frame is not None:
            self._learn(self._prepare(frame.image), frame.ts.timestamp())

    def state(self) -> bytes | None:
        """The learned reference view (None while learning)."""
        if self._ref is None:
            return None
        out = io.BytesIO()
        np.savez_compressed(
            out,
            kind=np.array(_STATE_KIND),
            tamper_version=np.int32(_STATE_VERSION),
            grey=np.clip(self._ref.grey + 0.5, 0, 255).astype(np.uint8),
        )
        return out.getvalue()

    def load_state(self, blob: bytes) -> None:
        """Restores `state()`; another component's blob or a mismatched one is ignored."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                if "kind" not in z.files or str(z["kind"]) != _STATE_KIND:
                    return
                if int(z["tamper_version"]) != _STATE_VERSION:
                    return
                grey = z["grey"]
        except (OSError, EOFError, ValueError, TypeError, KeyError, zipfile.BadZipFile):
            return
        if grey.ndim != 2 or grey.shape[1] > self.params.work_width or min(grey.shape) < 16:
            return
        self.acknowledge()
        self._ref = self._build(grey.astype(np.float32))
        self._reported = TamperState()

    # ------------------------------------------------------------ internals

    def _prepare(self, image: NDArray[np.uint8]) -> F32:
        h, w = image.shape[:2]
        ww = min(self.params.work_width, w)
        wh = max(1, round(h * ww / w))
        small = cv2.resize(image, (ww, wh), interpolation=cv2.INTER_AREA) if (ww, wh) != (w, h) else image
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return cv2.GaussianBlur(grey.astype(np.float32), (3, 3), 0)

    def _learn(self, grey: F32, now: float) -> None:
        p = self.params
        if self._samples and self._samples[0].shape != grey.shape:
            self._samples.clear()
            self._learn_start = None
        if self._learn_start is None:
            self._learn_start = now
        every = p.learn_s / max(p.learn_frames - 1, 1)
        if self._last_sample is None or now - self._last_sample >= every - 1e-6:
            self._samples.append(grey)
            self._last_sample = now
        if now - self._learn_start >= p.learn_s and len(self._samples) >= min(3, p.learn_frames):
            stack = np.stack(self._samples[-p.learn_frames :])
            self._ref = self._build(np.median(stack, axis=0).astype(np.float32))
            self._samples.clear()
            self._learn_start = self._last_sample = None

    def _build(self, grey: F32) -> _Reference:
        energy, sharp, grad = _measures(grey)
        be, bs = self._blocks(grey, grad)
        strong = grad >= max(float(np.percentile(grad, 90)), 1.0)
        edges = cv2.dilate(strong.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        self._ref_kp = None
        return _Reference(grey, energy, sharp, be, bs, strong & edges, _row_detail(grey))

    def _smeared(self, grey: F32) -> float:
        """Share of the rows (with vertical detail in the reference) whose vertical detail is gone, horizontal kept."""
        assert self._ref is not None
        rv, rh = self._ref.rows
        v, h = _row_detail(grey)
        informative = rv > 0.5
        if not informative.any():
            return 0.0
        # copied rows are flat in absolute terms too: a shifted or changed view still has some vertical detail
        smeared = informative & (v < np.minimum(self.params.smear_ratio * rv, 0.3)) & (h > 0.4 * rh)
        return float(smeared.sum()) / float(informative.sum())

    def _blocks(self, grey: F32, grad: F32) -> tuple[F32, F32]:
        rows, cols = self.params.grid
        size = (cols, rows)
        m = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        m2 = cv2.resize(grey * grey, size, interpolation=cv2.INTER_AREA)
        g = cv2.resize(grad, size, interpolation=cv2.INTER_AREA)
        std = np.sqrt(np.maximum(m2 - m * m, 0.0))
        return (g / (m + 10.0)).astype(np.float32), (std / (m + 10.0)).astype(np.float32)

    def _classify(self, grey: F32) -> tuple[TamperKind, float, dict[str, Any]]:
        p = self.params
        ref = self._ref
        assert ref is not None
        energy, sharp, grad = _measures(grey)
        be, bs = self._blocks(grey, grad)
        edge_ratio = energy / max(ref.energy, 1e-6)
        blind = (be < p.blind_edges * np.maximum(ref.block_energy, 1e-6)) & (
            bs < np.maximum(p.blind_std * ref.block_std, 0.05)
        )
        blind_frac = float(blind.mean())
        lights = float(np.count_nonzero(grey >= p.light_level)) / grey.size
        d: dict[str, Any] = {
            "edge_ratio": round(edge_ratio, 3),
            "blind_frac": round(blind_frac, 3),
            "sharpness_ratio": round(sharp / max(ref.sharp, 1e-6), 3),
        }
        if blind_frac >= p.covered_frac and lights < 2e-4:
            return "covered", min(1.0, blind_frac), d

        shift, response = self._shift(ref.grey, grey)
        d["shift_px"] = [round(shift[0], 2), round(shift[1], 2)]
        d["response"] = round(response, 3)
        moved_by = math.hypot(*shift) if response >= p.min_response else None

        sharp_ratio = sharp / max(ref.sharp, 1e-6)
        if sharp_ratio < p.blurred_ratio and edge_ratio < 0.85 and (moved_by is None or moved_by <= p.moved_px):
            ncc = _ncc(_coarse(grey), _coarse(ref.grey))
            d["coarse_ncc"] = round(ncc, 3)
            if ncc >= p.coarse_ncc:
                return "blurred", float(np.clip((p.blurred_ratio - sharp_ratio) / p.blurred_ratio * 2, 0.3, 1.0)), d

        if moved_by is not None:
            if moved_by > p.moved_px:
                return "moved", float(min(1.0, moved_by / (4 * p.moved_px))), d
            return "ok", 0.0, d
        # too weak to place by correlation: rotation, zoom, another preset — or just a dark, flat view
        if edge_ratio < p.min_edges_for_view:
            return "ok", 0.0, d
        corner = self._homography_shift(ref.grey, grey)
        if corner is not None:
            d["corner_shift_px"] = round(corner, 2)
            if corner > p.moved_px:
                return "moved", float(min(1.0, corner / (4 * p.moved_px))), d
            return "ok", 0.0, d
        strong = grad >= max(float(np.percentile(grad, 90)), 1.0)
        near = cv2.dilate(strong.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        overlap = float(np.count_nonzero(ref.edges & near)) / max(int(ref.edges.sum()), 1)
        d["edge_overlap"] = round(overlap, 3)
        if overlap < p.view_match:
            return "moved", float(min(1.0, 1.0 - overlap)), d
        return "ok", 0.0, d

    def _shift(self, ref: F32, grey: F32) -> tuple[tuple[float, float], float]:
        h, w = grey.shape
        if self._hann is None or self._hann.shape != (h, w):
            self._hann = cv2.createHanningWindow((w, h), cv2.CV_32F)
        # copies: OpenCV's phaseCorrelate applies the window to its inputs in place
        a = ref - float(ref.mean())
        b = grey - float(grey.mean())
        (dx, dy), response = cv2.phaseCorrelate(a, b, self._hann)
        return (float(dx), float(dy)), float(response)

    def _homography_shift(self, ref: F32, grey: F32) -> float | None:
        """Mean displacement of the frame corners under the ORB + RANSAC homography (None: no fit)."""
        if self._ref_kp is None:
            self._ref_kp = self._orb.detectAndCompute(ref.astype(np.uint8), None)
        kr, dr = self._ref_kp
        kc, dc = self._orb.detectAndCompute(grey.astype(np.uint8), None)
        if dr is None or dc is None or len(kr) < self.params.min_inliers or len(kc) < self.params.min_inliers:
            return None
        pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(dr, dc, k=2)
        good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.75 * m[1].distance]
        if len(good) < self.params.min_inliers:
            return None
        src = np.float32([kr[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
        dst = np.float32([kc[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
        hom, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 3.0)
        if hom is None or inliers is None or int(inliers.sum()) < self.params.min_inliers:
            return None
        h, w = ref.shape
        corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]]).reshape(-1, 1, 2)
        moved = cv2.perspectiveTransform(corners, hom)
        return float(np.linalg.norm((moved - corners).reshape(-1, 2), axis=1).mean())

    def _debounce(self, kind: TamperKind, score: float, details: dict[str, Any], ts: datetime) -> TamperState:
        shift = details.get("shift_px") if kind == "moved" else None
        if kind == self._candidate and _same_shift(shift, self._candidate_shift):
            self._streak += 1
        else:  # a knocked camera stays shifted by the same amount; a big vehicle passing shifts the peak anew
            self._candidate, self._candidate_since, self._streak = kind, ts, 1
            self._candidate_shift = shift
        sway = shift is not None and math.hypot(*shift) <= self.params.sway_px
        raw: RawKind = "ok" if sway else kind  # a swaying frame is still analysed
        confirm = self.params.sway_confirm if sway else self.params.confirm
        cur = self._reported
        if kind == cur.kind and not cur.learning:
            self._reported = TamperState(kind, score, cur.since, False, details, raw)
        elif self._streak >= confirm or (cur.learning and kind == "ok"):
            since = self._candidate_since if kind != "ok" else None  # when it was first seen, not confirmed
            self._reported = TamperState(kind, score, since, False, details, raw)
        else:  # not confirmed yet: the reported state stands, with fresh measures
            self._reported = TamperState(cur.kind, cur.score, cur.since, False, details, raw)
        return self._reported


def _measures(grey: F32) -> tuple[float, float, F32]:
    """Edge energy (mean gradient ÷ mean luma), fine-to-coarse detail ratio, gradient magnitude."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    grad = cv2.magnitude(gx, gy) * 0.125
    energy = float(grad.mean()) / (float(grey.mean()) + 10.0)
    fine = float(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.0)).mean())
    coarse = float(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 4.0)).mean())
    return energy, fine / (coarse + 0.5), grad


def _same_shift(a: list[float] | None, b: list[float] | None) -> bool:
    """Both unknown (no shift measured), or within a pixel of each other."""
    if a is None or b is None:
        return a is None and b is None
    return max(abs(a[0] - b[0]), abs(a[1] - b[1])) <= 1.0


def _row_detail(grey: F32) -> tuple[F32, F32]:
    """Per row: mean absolute difference to the next row, and between neighbours along the row."""
    v = np.abs(np.diff(grey, axis=0)).mean(axis=1)
    h = np.abs(np.diff(grey, axis=1)).mean(axis=1)[:-1]
    return v.astype(np.float32), h.astype(np.float32)


def _coarse(grey: F32) -> F32:
    return cv2.GaussianBlur(cv2.resize(grey, (40, max(4, round(40 * grey.shape[0] / grey.shape[1])))), (0, 0), 1.5)


def _ncc(a: F32, b: F32) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / den if den > 1e-6 else 0.0
