"""Training images that look like the city's cameras, not like the photos they came from.

The labelled sets are phone photos: sharp, well lit, stored once as a good JPEG. A street
camera sends a small, soft, H.264-coded picture, half of the day in low light or in
infrared (grey), sometimes through rain. `add_cctv_copies` writes one degraded copy of
every training image beside it (same boxes: every change here is photometric or a loss of
resolution, so boxes stay where they were); validation is left alone, so the in-domain
numbers stay comparable with earlier models. A copy keeps its source's name prefix
(`garbage__x.jpg` → `garbage__x.cctv.jpg`), so `cross-source` still sees one source.

Scale (small piles seen from high up) is not done here: ultralytics' own `scale`
augmentation shrinks training images every epoch.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import yaml
from numpy.typing import NDArray

from training.datasets import IMAGE_SUFFIXES

COPY_TAG = ".cctv"
LIGHTS = ("day", "low_light", "infrared", "rain")


def _low_res(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    """A 704x576-class sensor seeing what a phone saw at 4x the pixels, then upscaled."""
    h, w = image.shape[:2]
    f = rng.uniform(0.3, 0.6)
    small = cv2.resize(image, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _low_light(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    """Dusk: dark, flat, noisy (sensor gain), slightly warm street lights."""
    x = (image.astype(np.float32) / 255.0) ** rng.uniform(1.6, 2.6) * rng.uniform(0.5, 0.8)
    x *= np.array([0.85, 0.95, 1.1], np.float32)  # BGR: sodium lamps push red
    x += rng.normal(0.0, rng.uniform(0.01, 0.04), x.shape).astype(np.float32)
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def _infrared(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    """Night with the IR lamp on: grey, bright centre, dark edges, noisy."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    grey = grey * (1.1 - rng.uniform(0.3, 0.6) * r2 / 2) + rng.normal(0.0, 0.03, grey.shape)
    out = (np.clip(grey, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)


def _rain(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    """Streaks of rain in front of the lens and a greyer, lower-contrast scene."""
    h, w = image.shape[:2]
    drops = np.zeros((h, w), np.float32)
    n = int(h * w / rng.uniform(150, 400))
    drops[rng.integers(0, h, n), rng.integers(0, w, n)] = 1.0
    length = int(rng.integers(9, 21))
    kernel = np.zeros((length, length), np.float32)
    kernel[:, length // 2] = 1.0 / length
    angle = rng.uniform(-20, 20)
    kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D((length / 2, length / 2), angle, 1.0), (length, length))
    streaks = cv2.filter2D(drops, -1, kernel) * rng.uniform(2.0, 4.0)
    x = image.astype(np.float32) / 255.0
    x = 0.75 * x + 0.25 * x.mean() + streaks[..., None] * 0.6
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def _h264(image: NDArray[np.uint8], crf: int) -> NDArray[np.uint8]:
    """The picture after one trip through x264 at a camera's bitrate (an I-frame at `crf`)."""
    h, w = image.shape[:2]
    w2, h2 = w - w % 2, h - h % 2  # yuv420p needs even sizes
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = w2, h2, "yuv420p"
    codec.time_base = Fraction(1, 25)
    codec.thread_count = 1  # same bytes on every machine
    codec.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h2, :w2]), format="bgr24")
    packets = list(codec.encode(frame)) + list(codec.encode(None))
    decoder = av.CodecContext.create("h264", "r")
    decoded = [f for p in packets for f in decoder.decode(p)] + list(decoder.decode(None))
    out = decoded[-1].to_ndarray(format="bgr24")
    return cv2.copyMakeBorder(out, 0, h - h2, 0, w - w2, cv2.BORDER_REPLICATE)


_LIGHT_FUNCS = {"low_light": _low_light, "infrared": _infrared, "rain": _rain}


def cctv_look(image: NDArray[np.uint8], rng: np.random.Generator) -> tuple[NDArray[np.uint8], str]:
    """`image` as a street camera would deliver it, and the light it drew (one of LIGHTS)."""
    out = _low_res(image, rng) if rng.random() < 0.7 else image
    light = LIGHTS[int(rng.integers(len(LIGHTS)))]
    if light != "day":
        out = _LIGHT_FUNCS[light](out, rng)
    return _h264(out, int(rng.integers(28, 42))), light


def add_cctv_copies(data_yaml: Path, seed: int = 0) -> Counter:
    """Writes a camera-look copy of each training image of the dataset at `data_yaml` (once:
    images already copied are skipped); returns how many copies of each light were written."""
    root = Path(data_yaml).parent
    meta = yaml.safe_load(Path(data_yaml).read_text(encoding="utf-8")) or {}
    images = root / meta.get("train", "images/train")
    labels = root / str(meta.get("train", "images/train")).replace("images", "labels", 1)
    counts: Counter = Counter()
    for path in sorted(images.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.stem.endswith(COPY_TAG):
            continue
        target = path.with_name(f"{path.stem}{COPY_TAG}.jpg")
        if target.exists():
            continue
        image = cv2.imread(str(path))
        if image is None:
            continue
        # One generator per image: a rerun (or a resumed copy) writes the same pixels.
        rng = np.random.default_rng([seed, *path.name.encode()])
        out, light = cctv_look(image, rng)
        label = labels / f"{path.stem}.txt"
        (labels / f"{target.stem}.txt").write_text(label.read_text() if label.exists() else "")
        cv2.imwrite(str(target), out, [cv2.IMWRITE_JPEG_QUALITY, 95])
        counts[light] += 1
    return counts
