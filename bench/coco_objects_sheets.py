"""Count sheets and AP50 for the people-and-vehicles model on frames labelled by hand.

No labelled street data for people and vehicles is at hand, so the boxes were drawn by hand on
a fixed set of frames: the 10 street photos of the garbage set's valid split (drawn at random,
seed 14, among those where the FP32 build finds at least 3 such boxes), 2 frames of the corridor
clip, 1 of the car park, and the ultralytics wheel's bus.jpg and zidane.jpg when that wheel is
installed. This draws the model's person and vehicle boxes, numbered, on those frames and prints
them per frame. The results are in the model's manifest (`metrics.hand_labelled`) and the README.

It then scores the model against hand-drawn boxes of the same frames (`coco_objects_truth.json`:
{frame: [{"cls", "box": [x0, y0, x1, y1] in frame pixels, "ignore"}]}) and prints a markdown
table: per group (person, car, and vehicle = the five vehicle classes, one class among them) the
true boxes, AP50 (detections at score >= 0.05 ranked by score, COCO's greedy matching and
101-point interpolation) and precision/recall at the manifest's threshold and at 0.3. Boxes
marked `ignore` (tiny, mostly hidden, blurred crowds) count neither as found nor as missed, and a
detection lying mostly (>= half its area) inside one of its group's ignored boxes is no false
positive.

    .venv/bin/python bench/coco_objects_sheets.py [--out var/coco-sheets] [--model DIR ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import cv2
import numpy as np

from detector.analysis.onnx_detector import OnnxModel
from detector.models.deployments import ModelStore
from training.evaluate import average_precision, box_iou, greedy_match, ranked_model

WATCHED = ["person", "bicycle", "car", "motorcycle", "bus", "truck"]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
TRUTH = Path(__file__).with_name("coco_objects_truth.json")
VEHICLES = {"bicycle", "car", "motorcycle", "bus", "truck"}
GROUPS = {"person": {"person"}, "car": {"car"}, "vehicle": VEHICLES}
AP_FLOOR = 0.05


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


def match(truth: list[dict], cls: np.ndarray, xyxy: np.ndarray, scores: np.ndarray, group: set[str]):
    """One frame, one group: (scores, TP flags) of its detections that are not ignored, and
    its number of true boxes. `xyxy` in frame pixels; COCO's greedy matching at IoU 0.5."""
    gt = [t for t in truth if t["cls"] in group]
    g = np.array([t["box"] for t in gt if not t["ignore"]], float).reshape(-1, 4)
    ign = np.array([t["box"] for t in gt if t["ignore"]], float).reshape(-1, 4)
    d = np.flatnonzero(np.isin(cls, list(group)))
    d = d[np.argsort(-scores[d], kind="stable")]
    hit = greedy_match(box_iou(xyxy[d], g), 0.5, np.zeros(len(g), bool)) >= 0
    # a miss lying mostly inside an ignored box is neither TP nor FP
    b = xyxy[d]
    inter = np.prod(np.clip(np.minimum(ign[None, :, 2:], b[:, None, 2:]) - np.maximum(ign[None, :, :2], b[:, None, :2]),
                            0, None), axis=2)  # fmt: skip
    ignored = ~hit & (inter >= 0.5 * np.prod(b[:, 2:] - b[:, :2], axis=1)[:, None]).any(axis=1)
    kept, tp = d[~ignored], hit[~ignored]
    return scores[kept], tp, len(g)


def ap_table(model_dirs: list[Path], shots: list[tuple[str, np.ndarray]]) -> str:
    """Markdown table of AP50 and P/R per group and model against `TRUTH`."""
    truth = json.loads(TRUTH.read_text())
    if unlabelled := {t for t, _ in shots} - set(truth):
        raise SystemExit(f"{TRUTH.name} has no boxes for {sorted(unlabelled)}")
    rows = ["| model | class | true boxes (+ ignored) | AP50 | P / R @ shipped conf | P / R @ 0.3 |", "|" + "---|" * 6]
    for model_dir in model_dirs:
        conf = OnnxModel(model_dir).manifest.thresholds.conf
        runs: dict[str, list] = {g: [[], [], 0] for g in GROUPS}
        with ranked_model(model_dir) as low:
            for tag, img in shots:
                obs = low.predict([img], classes=WATCHED)[0]
                ok = obs.scores >= AP_FLOOR
                cls = np.array([lbl.split(":")[1] for lbl in obs.labels])[ok]
                xyxy = obs.xyxy[ok].astype(np.float64) * np.tile(img.shape[1::-1], 2)
                for g, members in GROUPS.items():
                    s, tp, n = match(truth[tag], cls, xyxy, obs.scores[ok], members)
                    runs[g][0].append(s)
                    runs[g][1].append(tp)
                    runs[g][2] += n
        for g, (s_parts, tp_parts, n) in runs.items():
            s, tp = np.concatenate(s_parts), np.concatenate(tp_parts)
            ignored = sum(t["ignore"] and t["cls"] in GROUPS[g] for boxes in truth.values() for t in boxes)
            pr = []
            for thr in (conf, 0.3):
                found, drawn = int(tp[s >= thr].sum()), int((s >= thr).sum())
                pr.append(f"{found / max(drawn, 1):.2f} / {found / n:.2f} ({found} of {drawn} drawn, {n} true)")
            pr[0] = f"{conf:g}: {pr[0]}"
            rows.append(
                f"| {model_dir} | {g} | {n} (+{ignored}) | {average_precision(tp, s, n):.3f} | {' | '.join(pr)} |"
            )
    if skipped := set(truth) - {t for t, _ in shots}:
        rows.append(f"\n(not scored, frames not at hand: {', '.join(sorted(skipped))})")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("var/coco-sheets"))
    p.add_argument("--model", type=Path, nargs="+", help="model folders, sheets from the first "
                   "(default: the bundled coco-objects)")  # fmt: skip
    a = p.parse_args()
    store = ModelStore(Path("models"))
    model_dirs = a.model or [store.path("coco-objects", store.default_version("coco-objects"))]
    model = OnnxModel(model_dirs[0])
    a.out.mkdir(parents=True, exist_ok=True)
    shots = frames()
    totals: dict[str, int] = {}
    for tag, img in shots:
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
    print(ap_table(model_dirs, shots))


if __name__ == "__main__":
    main()
