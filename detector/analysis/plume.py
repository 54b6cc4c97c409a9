"""Smoke and fire move: a detection of either whose box did not change since the previous analysis is the scene.

The trained detector calls some plain grey surfaces smoke on real cameras (a car park's asphalt, a
bare wall behind a conveyor belt; README "Real cameras"). A plume drifts and a flame flickers, so
between two analyses seconds apart much of a real one's box changes, while a surface stays put. The
check compares the box in a small blurred grey copy of the frame with the same box of the camera's
previous analysed frame, after removing the frame-wide gain (cameras re-expose when a white car drives
in: the whole picture halves in brightness), and keeps the detection when at least `MIN_MOVING_SHARE`
of the box changed by more than `max(MIN_STEP, REL_STEP × level)`.

Measured (bench/plume_motion.py, cadence 10 s): of the labelled smoke boxes of the shared smoke set,
82 % moved by a share of 0.25 or more within one second (median 0.47); of the bundled detector's
smoke boxes on the real clips without smoke, 10 % did (median 0.04: car parks 0.01-0.03, the wall
behind the belt 0.11, where bottles and hands pass). Persistence then wants several analyses in a
row. A detection on the first analysis has nothing to compare with and waits for the second.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from detector.analysis.gate import grey_thumb
from detector.types import Observations

PLUME_CLASSES = frozenset({"smoke", "fire"})
MIN_MOVING_SHARE = 0.25
MIN_STEP = 8.0  # grey levels: above sensor noise and compression after the blur
REL_STEP = 0.08  # of the level: a bright region's noise is larger
WIDTH = 192  # the copy compared: a share of a box needs no detail, and blur removes noise


def small_grey(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    return grey_thumb(image, WIDTH, 5)


def moving_share(before: NDArray[np.float32], now: NDArray[np.float32], box: NDArray[np.float32]) -> float:
    """The share of normalised `box` that changed from `before` to `now` (two `small_grey` copies)."""
    gain = float(np.median(now)) / max(float(np.median(before)), 1.0)
    h, w = now.shape
    x0, x1 = (int(np.clip(round(v * w), 0, w)) for v in (box[0], box[2]))
    y0, y1 = (int(np.clip(round(v * h), 0, h)) for v in (box[1], box[3]))
    a, b = before[y0:y1, x0:x1] * gain, now[y0:y1, x0:x1]
    if a.size == 0:
        return 0.0
    return float((np.abs(b - a) > np.maximum(MIN_STEP, REL_STEP * b)).mean())


class PlumeCheck:
    """One camera's check: remembers the previous analysed frame."""

    def __init__(self) -> None:
        self._before: NDArray[np.float32] | None = None

    def keep_moving(self, image: NDArray[np.uint8], obs: Observations) -> Observations:
        """`obs` without the smoke and fire boxes that did not move since the previous call."""
        now = small_grey(image)
        before, self._before = self._before, now
        plumes = [i for i, label in enumerate(obs.labels) if label.removeprefix("detector:") in PLUME_CLASSES]
        if not plumes:
            return obs
        keep = np.ones(len(obs), bool)
        for i in plumes:
            keep[i] = (before is not None and before.shape == now.shape
                       and moving_share(before, now, obs.xyxy[i]) >= MIN_MOVING_SHARE)  # fmt: skip
        return obs if keep.all() else obs[keep]
