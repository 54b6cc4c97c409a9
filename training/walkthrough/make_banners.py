"""Builds the walkthrough's sample data: hung banners (违规悬挂横幅) on real facades, as COCO.

The facades are CC0-1.0 photos (../shared/datasets/facades, Urban-Research-Lab's building
facades dataset), so the result may ship with the project; the banners are drawn here (red
cloth, pale glyph strokes, a little sag and perspective). It is a sample to run the trainer's
walkthrough end to end, not data to judge a model by.

    .venv/bin/python -m training.walkthrough.make_banners   # writes training/walkthrough/banners/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
FACADES = HERE.parents[1].parent / "shared" / "datasets" / "facades" / "images" / "train"
CLASS = "hung_banner"


def banner(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A flat banner: red or blue cloth with a row of glyph-like pale strokes."""
    cloth = [(30, 30, 200), (40, 20, 170), (150, 60, 20)][int(rng.integers(3))]
    ink = [(230, 240, 250), (60, 220, 250)][int(rng.integers(2))]
    im = np.full((height, width, 3), cloth, np.uint8)
    n = int(rng.integers(6, 12))
    cell = width / (n + 1)
    for i in range(n):
        x0, y0 = int(cell * (i + 0.6)), int(height * 0.2)
        w, h = int(cell * 0.75), int(height * 0.6)
        for _ in range(int(rng.integers(3, 6))):  # strokes of one glyph
            if rng.random() < 0.5:
                y = y0 + int(rng.integers(0, h))
                cv2.line(im, (x0, y), (x0 + w, y), ink, max(1, height // 12))
            else:
                x = x0 + int(rng.integers(0, w))
                cv2.line(im, (x, y0), (x, y0 + h), ink, max(1, height // 12))
    return im


def paste(rng: np.random.Generator, scene: np.ndarray, top: tuple[float, float]) -> list[float]:
    """Warps a banner onto the scene, its top edge within `top` (fractions of the height);
    returns its COCO box [x, y, w, h]."""
    H, W = scene.shape[:2]
    w = int(W * rng.uniform(0.35, 0.8))
    h = max(12, int(w / rng.uniform(5, 9)))
    flat = banner(rng, w, h)
    x = float(rng.uniform(0.02, 0.98 - w / W) * W)
    y = float(rng.uniform(*top) * H)
    sag, tilt = rng.uniform(0, 0.15) * h, rng.uniform(-0.25, 0.25) * h
    dst = np.float32([[x, y], [x + w, y + tilt], [x + w, y + tilt + h + sag], [x, y + h]])
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    warp = cv2.getPerspectiveTransform(src, dst)
    layer = cv2.warpPerspective(flat, warp, (W, H))
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), warp, (W, H))
    shade = rng.uniform(0.6, 1.0)  # the same light as the wall behind it
    scene[mask > 0] = (layer[mask > 0] * shade).astype(np.uint8)
    x0, y0 = dst[:, 0].min(), dst[:, 1].min()
    x1, y1 = min(dst[:, 0].max(), W - 1), min(dst[:, 1].max(), H - 1)
    return [round(float(x0), 1), round(float(y0), 1), round(float(x1 - x0), 1), round(float(y1 - y0), 1)]


def build(out: Path, count: int, seed: int = 0, width: int = 480) -> dict:
    facades = sorted(FACADES.glob("*.jpg"), key=lambda p: int(p.stem.split("_")[-1]))
    if len(facades) < count:
        raise SystemExit(f"{FACADES}: {len(facades)} facade photos, {count} needed")
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(facades), count, replace=False)
    (out / "img").mkdir(parents=True, exist_ok=True)
    coco: dict = {"images": [], "annotations": [], "categories": [{"id": 1, "name": CLASS}]}
    for i, k in enumerate(sorted(picks), start=1):
        scene = cv2.imread(str(facades[k]))
        scene = cv2.resize(scene, (width, round(scene.shape[0] * width / scene.shape[1])), interpolation=cv2.INTER_AREA)
        bands = [(0.05, 0.25), (0.5, 0.6)][: int(rng.integers(1, 3))]  # a second one never covers the first
        boxes = [paste(rng, scene, band) for band in bands]
        name = f"banner_{i:02d}.jpg"
        cv2.imwrite(str(out / "img" / name), scene, [cv2.IMWRITE_JPEG_QUALITY, 80])
        coco["images"].append({"id": i, "file_name": f"img/{name}", "width": width, "height": scene.shape[0]})
        for box in boxes:
            n = len(coco["annotations"]) + 1
            coco["annotations"].append({"id": n, "image_id": i, "category_id": 1, "bbox": box, "area": box[2] * box[3]})
    (out / "banners.json").write_text(json.dumps(coco, indent=1))
    return coco


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "banners")
    ap.add_argument("--count", type=int, default=24)
    args = ap.parse_args()
    coco = build(args.out, args.count)
    print(f"{args.out}: {len(coco['images'])} images, {len(coco['annotations'])} {CLASS} boxes")


if __name__ == "__main__":
    main()
