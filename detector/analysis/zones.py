"""Zones as rasterised masks: one pure verb per test, cheap for any number of boxes."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.config import Zone, ZonePurpose
from detector.types import Observations

GRID = 256  # zone masks are rasterised on a GRID x GRID normalised canvas


def polygon_mask(polygon: NDArray[np.floating], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """The pixels of an h x w picture inside a normalised polygon. One polygon per fill: given several,
    fillPoly fills by the even-odd rule, and where two zones overlap the mask would have a hole."""
    h, w = shape
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(polygon, np.float32) * (w, h)).astype(np.int32)], 1)
    return mask.astype(bool)


def _raster(polygon: list[tuple[float, float]], w: int, h: int) -> NDArray[np.uint8]:
    mask = np.zeros((h, w), np.uint8)
    pts = np.round(np.asarray(polygon, np.float32) * [w - 1, h - 1]).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1)
    return mask


class ZoneMasks:
    """A camera's zones, with `contains` (anchor points) and `overlap` (box share) tests."""

    def __init__(self, zones: list[Zone]) -> None:
        self.zones = {z.name: z for z in zones}
        self._masks = {z.name: _raster(z.polygon, GRID, GRID) for z in zones}
        # integral images make "share of a box inside the zone" O(1) per box
        self._integrals = {n: cv2.integral(m) for n, m in self._masks.items()}

    def select(self, names_or_purposes: list[str]) -> list[str]:
        """Zone names matching any entry (a zone name or a purpose); ignore-zones never match."""
        wanted = set(names_or_purposes)
        return [
            n
            for n, z in self.zones.items()
            if z.purpose is not ZonePurpose.IGNORE and (n in wanted or z.purpose.value in wanted)
        ]

    @property
    def ignored(self) -> list[str]:
        return [n for n, z in self.zones.items() if z.purpose is ZonePurpose.IGNORE]

    def contains(self, name: str, obs: Observations) -> NDArray[np.bool_]:
        """True where the box's bottom-centre lies in the zone."""
        pts = np.clip(np.round(obs.bottom_center * (GRID - 1)).astype(int), 0, GRID - 1)
        return self._masks[name][pts[:, 1], pts[:, 0]].astype(bool)

    def overlap(self, name: str, obs: Observations) -> NDArray[np.float32]:
        """Share of each box's area inside the zone (0..1)."""
        ii = self._integrals[name]
        b = np.clip(np.round(obs.xyxy * GRID).astype(int), 0, GRID)
        x0, y0 = b[:, 0], b[:, 1]
        x1, y1 = np.maximum(b[:, 2], x0 + 1).clip(max=GRID), np.maximum(b[:, 3], y0 + 1).clip(max=GRID)
        inside = ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]
        area = np.maximum((x1 - x0) * (y1 - y0), 1)
        return (inside / area).astype(np.float32)

    def watched(self, w: int, h: int) -> NDArray[np.bool_] | None:
        """Pixels of a w x h image inside any non-ignore zone, minus ignore zones (None: whole view)."""
        keep = [z for z in self.zones.values() if z.purpose is not ZonePurpose.IGNORE]
        mask = np.zeros((h, w), bool)
        if keep:
            for z in keep:
                mask |= _raster(z.polygon, w, h).astype(bool)
        else:
            mask[:] = True
        for n in self.ignored:
            mask &= ~_raster(self.zones[n].polygon, w, h).astype(bool)
        return mask if mask.any() else None
