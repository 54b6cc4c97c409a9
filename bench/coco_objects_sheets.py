"""Count sheets for the people-and-vehicles model: annotated frames that a person counts by hand.

A COCO model cannot be scored on labelled street data here (none is at hand), so its
precision and recall are counted by eye: this draws the bundled model's person and vehicle
boxes, numbered, on the same frames every run — the 10 street photos of the garbage set's valid
split that were counted (drawn at random, seed 14, among those where the FP32 build finds at
least 3 such boxes), 2 frames of the corridor clip, 1 of the car park, and the ultralytics
wheel's bus.jpg and zidane.jpg when that wheel is installed — and prints the boxes per frame. The counts are in the
model's manifest (`metrics.hand_count`) and the README.

    .venv/bin/python bench/coco_objects_sheets.py [--out var/coco-sheets] [--model DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np

from detector.analysis.onnx_detector import OnnxModel
from detector.models.deployments import ModelStore

WATCHED = ["person", "bicycle", "car", "motorcycle", "bus", "truck"]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


PHOTOS = ("000445", "003107", "003203", "003292", "003145", "002507", "001268", "001332", "003264", "001276")


def frames() -> list[tuple[str, np.ndarray]]:
    valid = SHARED / "garbage" / "images" / "valid"
    out = [(n, cv2.imread(str(next(valid.glob(f"{n}_*.jpg"))))) for n in PHOTOS]
    corridor = "one-by-one-person-detection"
    for clip, t in (("car-detection", 20.0), (corridor, 30.0), (corridor, 8.0)):
        with av.open(str(SHARED / "videos" / f"{clip}.mp4")) as c:
            frame = next(f for f in c.decode(video=0) if f.time >= t)
            out.append((f"{clip[:6]}{int(t)}", frame.to_ndarray(format="bgr24")))
    try:
        import ultralytics

        assets = Path(ultralytics.__file__).parent / "assets"
        out += [(p.stem, cv2.imread(str(p))) for p in sorted(assets.glob("*.jpg"))]
    except ImportError:
        pass
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("var/coco-sheets"))
    p.add_argument("--model", type=Path, help="model folder (default: the bundled coco-objects)")
    a = p.parse_args()
    store = ModelStore(Path("models"))
    model = OnnxModel(a.model or store.path("coco-objects", store.default_version("coco-objects")))
    a.out.mkdir(parents=True, exist_ok=True)
    totals: dict[str, int] = {}
    for tag, img in frames():
        obs = model.predict([img], classes=WATCHED)[0]
        h, w = img.shape[:2]
        s = 720 / max(h, w)
        vis = cv2.resize(img, (round(w * s), round(h * s)))
        for i, (label, box) in enumerate(zip(obs.labels, obs.xyxy, strict=True)):
            x0, y0, x1, y1 = (box * np.array([vis.shape[1], vis.shape[0]] * 2)).astype(int)
            colour = (0, 0, 255) if label.endswith(":person") else (255, 128, 0)
            cv2.rectangle(vis, (x0, y0), (x1, y1), colour, 2)
            cv2.putText(vis, f"{i}{label.split(':')[1][:3]}", (x0 + 2, y0 + 14), 0, 0.45, (0, 255, 255), 1)
            totals[label] = totals.get(label, 0) + 1
        cv2.imwrite(str(a.out / f"{tag}.png"), vis)
        print(f"| {tag} | " + ", ".join(f"{i}:{lbl.split(':')[1]} {sc:.2f}" for i, (lbl, sc) in
                                       enumerate(zip(obs.labels, obs.scores, strict=True))) + " |")  # fmt: skip
    print(f"boxes drawn: {totals}; sheets in {a.out}")


if __name__ == "__main__":
    main()
