"""Scene gate: skip the models when the watched part of the view has not changed."""

from __future__ import annotations

from datetime import datetime, timedelta

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.analysis.zones import ZoneMasks
from detector.types import Frame

GATE_WIDTH = 96  # a thumbnail is enough to tell "something changed"


def grey_thumb(image: NDArray[np.uint8], width: int, blur: int) -> NDArray[np.float32]:
    """A `width`-pixel grey copy of a BGR image, blurred by a `blur`-pixel Gaussian (noise is no change)."""
    h, w = image.shape[:2]
    size = (width, max(1, round(width * h / w)))
    step = max(1, w // (width * 4))  # subsample first: area-averaging a full 1080p frame costs ~3 ms
    grey = cv2.cvtColor(cv2.resize(image[::step, ::step], size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return cv2.GaussianBlur(grey, (blur, blur), 0).astype(np.float32)


class SceneGate:
    """Compares a small, blurred, zone-masked grey copy with the last analysed one.

    Unchanged scenes reuse the previous observations (the problems are static,
    so their persistence keeps counting), but the models still run at least
    every `max_skip` so slow changes are never missed.
    """

    def __init__(self, threshold: float, max_skip: timedelta, masks: ZoneMasks | None = None) -> None:
        self.threshold = threshold
        self.max_skip = max_skip
        self._masks = masks
        self._mask: NDArray[np.bool_] | None = None
        self._ref: NDArray[np.float32] | None = None
        self._ref_ts: datetime | None = None
        self.skipped = 0

    def should_analyze(self, frame: Frame) -> bool:
        thumb = grey_thumb(frame.image, GATE_WIDTH, 3)
        if self._mask is None or self._mask.shape != thumb.shape:
            self._mask = self._masks.watched(thumb.shape[1], thumb.shape[0]) if self._masks else None
        if self._ref is None or self._ref_ts is None or self._ref.shape != thumb.shape:
            changed = True
        elif frame.ts - self._ref_ts >= self.max_skip or frame.ts < self._ref_ts:
            changed = True
        else:
            diff = np.abs(thumb - self._ref)
            changed = float(diff[self._mask].mean() if self._mask is not None else diff.mean()) > self.threshold
        if changed:
            self._ref, self._ref_ts = thumb, frame.ts
        else:
            self.skipped += 1
        return changed
