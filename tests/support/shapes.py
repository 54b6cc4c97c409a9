"""Synthetic detection data: red squares and blue discs on noise, in YOLO layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

CLASSES = ["square", "disc"]


def _shapes_image(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, list[str]]:
    """Noise with 1-3 non-overlapping squares (class 0) and discs (class 1); YOLO label lines."""
    img = cv2.resize(rng.integers(40, 200, (h // 8, w // 8, 3), dtype=np.uint8), (w, h))
    img = cv2.add(img, rng.integers(0, 30, (h, w, 3), dtype=np.uint8))
    lines: list[str] = []
    placed: list[tuple[int, int, int]] = []
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(0, 2))
        s = int(rng.uniform(0.25, 0.45) * min(w, h))
        x0, y0 = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        if any(x0 < a + b and a < x0 + s and y0 < c + b and c < y0 + s for a, c, b in placed):
            continue
        placed.append((x0, y0, s))
        if cls == 0:
            cv2.rectangle(img, (x0, y0), (x0 + s - 1, y0 + s - 1), (30, 30, 230), -1)
        else:
            cv2.circle(img, (x0 + s // 2, y0 + s // 2), s // 2, (230, 200, 30), -1)
        lines.append(f"{cls} {(x0 + s / 2) / w:.6f} {(y0 + s / 2) / h:.6f} {s / w:.6f} {s / h:.6f}")
    return img, lines


def make_shapes_dataset(
    root: Path, n_train: int, n_val: int, *, size: tuple[int, int] = (160, 96), seed: int = 0
) -> Path:
    """A YOLO-layout dataset of synthetic shapes; returns its data.yaml."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, lines = _shapes_image(rng, *size)
            cv2.imwrite(str(root / "images" / split / f"s{i:03d}.png"), img)
            (root / "labels" / split / f"s{i:03d}.txt").write_text("".join(f"{x}\n" for x in lines))
    data = root / "data.yaml"
    meta = {"path": str(root), "train": "images/train", "val": "images/val", "names": CLASSES}
    data.write_text(yaml.safe_dump(meta, sort_keys=False))
    return data
