"""Public copies of evidence pictures: the problem stays visible, faces and plates do not.

The district publishes closed cases with their evidence pictures. The public
copy keeps the case's boxes (`keep`, slightly dilated) sharp, because they show
the problem, and pixelates everything else hard enough that no face or plate
there can be read: a detector that misses nothing it never has to look at.
Inside the keep boxes, where sharpness must stay, faces (Haar frontal and
profile cascades) and licence plates (the Haar plate cascade plus a colour and
shape detector for Chinese blue, yellow and green plates) are found and
pixelated, and so are the heads of the people a person detector found there
(`people`: the top of each person box), which also covers faces turned away
or too small for a cascade. The input array is never written to; the result is deterministic.

The Haar cascades ship with OpenCV 4 (`cv2.data.haarcascades`); OpenCV 5
dropped them, so this module refuses to run there rather than publish faces.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

Box = tuple[float, float, float, float]  # normalised xyxy
Rect = tuple[int, int, int, int]  # pixel x0, y0, x1, y1 (exclusive)

# Outside the keep boxes the picture keeps BACKGROUND_CELLS cells across its
# longer side (32 px blocks at 1280x720), then a one-cell blur: measured on
# the astronaut face at 60-500 px tall, no Haar cascade finds it afterwards
# (without the blur a 500 px face still is), and plate characters fill far
# less than one cell.
BACKGROUND_CELLS = 40
KEEP_MARGIN = 0.05  # of the box's longer side, each way: the problem's own edges stay sharp
MIN_FACE_PX = 12  # frontal; smaller faces have ~2 px eyes and are not identifiable
MAX_SCAN_PIXELS = 400_000  # caps the upscaled area scanned per keep region (speed)
HIT_MARGIN = 0.2  # of the hit's size, each way: hair, chin, plate frame
FACE_CELLS = 5  # cells across a pixelated face: a skin-coloured blob
HEAD_SHARE = 0.25  # of a standing person's box height, from its top: head and shoulders
PLATE_CELLS = (4, 1)  # a pixelated plate keeps its colour, loses its text

# Chinese plates (GA 36): 440x140 mm, so ~3.14:1; perspective and tilt widen it.
PLATE_ASPECT = (2.0, 5.5)
PLATE_MAX_WIDTH = 0.25  # of the frame: a street camera never sees a plate larger; a blue tarp is
# OpenCV HSV (H 0-180): lower and upper bounds of each plate background colour.
PLATE_COLOURS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "blue": ((100, 90, 60), (125, 255, 255)),
    "yellow": ((15, 90, 90), (34, 255, 255)),
    # New-energy plates fade from white-green (top) to green: the lower ~3/4 passes.
    "green": ((35, 30, 80), (85, 255, 255)),
}


@dataclass(frozen=True, slots=True)
class PrivacyReport:
    """What was pixelated inside the keep boxes (everything outside always is)."""

    faces: int
    plates: int
    heads: int = 0


def public_copy(
    image: NDArray[np.uint8], keep: Sequence[Box] | NDArray[np.floating], people: Sequence[Box] = ()
) -> NDArray[np.uint8]:
    """The publishable copy of a BGR evidence picture; see `redact`."""
    return redact(image, keep, people)[0]


def redact(
    image: NDArray[np.uint8], keep: Sequence[Box] | NDArray[np.floating], people: Sequence[Box] = ()
) -> tuple[NDArray[np.uint8], PrivacyReport]:
    """A new array: sharp only inside `keep` (less faces, plates and heads), pixelated elsewhere.

    `keep` is normalised xyxy boxes, e.g. `Observations.xyxy` of the case's objects;
    `people` normalised person boxes (their heads are pixelated where they are sharp).

    Raises:
        RuntimeError: this OpenCV has no Haar cascades (OpenCV 5 dropped them).
    """
    h, w = image.shape[:2]
    out = _pixelate(image, *_cells(w, h, BACKGROUND_CELLS))
    regions = _merge([_to_rect(b, w, h, KEEP_MARGIN) for b in keep])
    faces: list[Rect] = []
    plates: list[Rect] = []
    for x0, y0, x1, y1 in regions:
        out[y0:y1, x0:x1] = image[y0:y1, x0:x1]
        f, p = _detect(image[y0:y1, x0:x1], w)
        faces += [(a + x0, b + y0, c + x0, d + y0) for a, b, c, d in f]
        plates += [(a + x0, b + y0, c + x0, d + y0) for a, b, c, d in p]
    faces, plates = _dedupe(faces), _dedupe(plates)
    heads = [r for r in (_head(b, w, h) for b in people) if any(_overlap(r, region) for region in regions)]
    for x0, y0, x1, y1 in heads:
        out[y0:y1, x0:x1] = _pixelate(out[y0:y1, x0:x1], FACE_CELLS, FACE_CELLS)
    for r in faces:
        x0, y0, x1, y1 = _grow(r, w, h)
        out[y0:y1, x0:x1] = _pixelate(out[y0:y1, x0:x1], FACE_CELLS, FACE_CELLS)
    for r in plates:
        x0, y0, x1, y1 = _grow(r, w, h)
        out[y0:y1, x0:x1] = _pixelate(out[y0:y1, x0:x1], *PLATE_CELLS)
    return out, PrivacyReport(faces=len(faces), plates=len(plates), heads=len(heads))


def _head(person: Box, w: int, h: int) -> Rect:
    """Pixel rectangle of the head of a normalised person box: its top HEAD_SHARE, grown a little."""
    x0, y0, x1, y1 = person
    return _grow(
        _clip(round(x0 * w), round(y0 * h), round(x1 * w), round((y0 + HEAD_SHARE * (y1 - y0)) * h), w, h), w, h
    )


def _pixelate(img: NDArray[np.uint8], cols: int, rows: int) -> NDArray[np.uint8]:
    """Averages `img` into cols x rows cells, blurs them by one cell, and scales back smoothly."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, cols), max(1, rows)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (3, 3), 0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _cells(w: int, h: int, n: int) -> tuple[int, int]:
    """n cells across the longer side, square cells."""
    block = max(w, h) / n
    return max(1, round(w / block)), max(1, round(h / block))


def _to_rect(b: Sequence[float], w: int, h: int, margin: float) -> Rect:
    x0, y0, x1, y1 = (float(v) for v in b)
    m = margin * max((x1 - x0) * w, (y1 - y0) * h)
    return _clip(round(x0 * w - m), round(y0 * h - m), round(x1 * w + m), round(y1 * h + m), w, h)


def _grow(r: Rect, w: int, h: int) -> Rect:
    x0, y0, x1, y1 = r
    mx, my = round(HIT_MARGIN * (x1 - x0)) + 1, round(HIT_MARGIN * (y1 - y0)) + 1
    return _clip(x0 - mx, y0 - my, x1 + mx, y1 + my, w, h)


def _clip(x0: int, y0: int, x1: int, y1: int, w: int, h: int) -> Rect:
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _merge(rects: list[Rect]) -> list[Rect]:
    """Unions overlapping rectangles, so a face in two keep boxes is scanned (and counted) once."""
    rects = [r for r in rects if r[2] > r[0] and r[3] > r[1]]
    i = 0
    while i < len(rects):
        a = rects[i]
        j = next((j for j in range(i + 1, len(rects)) if _overlap(a, rects[j])), None)
        if j is None:
            i += 1
            continue
        b = rects.pop(j)
        rects[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        i = 0  # the union may now reach an earlier one
    return sorted(rects)


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _dedupe(rects: list[Rect]) -> list[Rect]:
    """Drops hits whose centre lies in a bigger hit (frontal + profile, cascade + colour)."""
    kept: list[Rect] = []
    for r in sorted(set(rects), key=lambda r: (-(r[2] - r[0]) * (r[3] - r[1]), r)):
        cx, cy = (r[0] + r[2]) / 2, (r[1] + r[3]) / 2
        if not any(k[0] <= cx <= k[2] and k[1] <= cy <= k[3] for k in kept):
            kept.append(r)
    return kept


@dataclass(frozen=True, slots=True)
class _Cascades:
    frontal: cv2.CascadeClassifier
    profile: cv2.CascadeClassifier
    plate: cv2.CascadeClassifier


_local = threading.local()  # a CascadeClassifier is not safe to share between threads


def _cascades() -> _Cascades:
    c: _Cascades | None = getattr(_local, "cascades", None)
    if c is None:
        root = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or ".")
        names = ("frontalface_alt2", "profileface", "russian_plate_number")
        files = [root / f"haarcascade_{n}.xml" for n in names]
        if not hasattr(cv2, "CascadeClassifier") or not all(f.is_file() for f in files):
            raise RuntimeError(
                f"OpenCV {cv2.__version__} has no bundled Haar cascades (OpenCV 5 dropped them); "
                "install opencv-python-headless<5 so faces and plates can be found"
            )
        c = _Cascades(*(cv2.CascadeClassifier(str(f)) for f in files))
        _local.cascades = c
    return c


def _detect(crop: NDArray[np.uint8], frame_w: int) -> tuple[list[Rect], list[Rect]]:
    """Faces and plates in one keep region, in the region's pixel coordinates."""
    cas = _cascades()
    h, w = crop.shape[:2]
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)  # no equalizeHist: it cost small faces in tests
    # Upscale so a MIN_FACE_PX face fills the face cascades' 20 px window, within the scan budget.
    scale = max(1.0, min(20 / MIN_FACE_PX, (MAX_SCAN_PIXELS / (w * h)) ** 0.5))
    big = cv2.resize(gray, (round(w * scale), round(h * scale))) if scale > 1.0 else gray

    def scan(
        c: cv2.CascadeClassifier, g: NDArray[np.uint8], step: float, flip: bool = False, face: bool = True
    ) -> list[Rect]:
        k = g.shape[1] / w
        found, votes = c.detectMultiScale2(g[:, ::-1] if flip else g, scaleFactor=step, minNeighbors=2)
        rects = []
        for (x, y, bw, bh), n in zip(found, votes, strict=True):
            # A real face collects more votes the larger it is (~30 at 60 px, 3 at 20 px), while
            # texture that fools the cascade (fruit, awning stripes) stays at 3-4 whatever its size.
            # Plates (at the finer step) got 11-55 votes, a car's bumper and wheels 3-4.
            if n < (max(3, min(8, bw // 8)) if face else 6):
                continue
            x = g.shape[1] - x - bw if flip else x
            rects.append(_clip(int(x / k), int(y / k), ceil((x + bw) / k), ceil((y + bh) / k), w, h))
        return rects

    # Profiles cost twice what frontals do per orientation, and a 12 px profile identifies
    # no one: both orientations at 1x (>= 20 px) and a coarser step.
    faces = scan(cas.frontal, big, 1.1) + scan(cas.profile, gray, 1.2) + scan(cas.profile, gray, 1.2, flip=True)
    # Chinese plates are found by colour from 24 px wide; the cascade (>= 60x20 px, 1x to save
    # time, a fine step: at 1.1 it lost plates between scales) is there for white plates.
    plates = scan(cas.plate, gray, 1.05, face=False) + _colour_plates(crop, round(PLATE_MAX_WIDTH * frame_w))
    return faces, plates


def _colour_plates(crop: NDArray[np.uint8], max_w: int) -> list[Rect]:
    """Chinese plates: a plate-coloured patch of ~3:1 shape with character texture inside."""
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    found: list[Rect] = []
    for colour, (lo, hi) in PLATE_COLOURS.items():
        mask = cv2.inRange(hsv, np.array(lo, np.uint8), np.array(hi, np.uint8))
        # Components of the closed mask bound the plate; the raw mask keeps the strokes.
        closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        _, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
        for x, y, bw, bh, _ in stats[1:]:
            if bh < 8 or not 24 <= bw <= max_w or not PLATE_ASPECT[0] <= bw / bh <= PLATE_ASPECT[1]:
                continue
            if _has_characters(mask[y : y + bh, x : x + bw] > 0):
                top = max(0, y - bh // 3) if colour == "green" else y  # the faded top
                found.append((int(x), int(top), int(x + bw), int(y + bh)))
    return found


def _has_characters(plate: NDArray[np.bool_]) -> bool:
    """Rows through the middle of a plate cross 7 characters: many background/ink switches.

    Solid patches (a tarp, a sign board) have few; the plate colour still covers
    most of the box (fill), unlike a patchwork of coloured goods.
    """
    h = plate.shape[0]
    band = plate[int(h * 0.3) : max(int(h * 0.7), int(h * 0.3) + 1)]
    switches = np.count_nonzero(band[:, 1:] != band[:, :-1], axis=1)
    ink = 1.0 - band.mean()
    return bool(np.median(switches) >= 8 and 0.1 <= ink <= 0.7 and plate.mean() >= 0.45)
