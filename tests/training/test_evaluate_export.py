"""training.evaluate and training.export.

The scoring is checked exactly on hand-built predictions (no ONNX, no torch). The export
chain is checked end to end on a model trained for two epochs on a few dozen synthetic
images (red squares and blue discs on noise): it finds some of them, and its FP32 and INT8
exports must be valid runtime models with a well-formed evaluation.
Those tests need `requirements-train.txt` (.venv-train) and are marked `training`.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from tests.support.shapes import CLASSES, make_shapes_dataset
from training.evaluate import (
    ClassMetrics,
    ImageBoxes,
    ModelEvaluation,
    average_precision,
    box_iou,
    evaluate,
    load_split,
    render,
    score_detections,
)

# -- builders ------------------------------------------------------------------------------


def relabelled(data: Path, root: Path, names: list[str]) -> Path:
    """The same val images with the class list `names`: ids rewritten by name (classes
    missing from `names` are dropped)."""
    old = yaml.safe_load(data.read_text())["names"]
    src = data.parent
    (root / "labels" / "val").mkdir(parents=True)
    shutil.copytree(src / "images" / "val", root / "images" / "val")
    for label in (src / "labels" / "val").glob("*.txt"):
        out = []
        for line in label.read_text().splitlines():
            cid, rest = line.split(" ", 1)
            if old[int(cid)] in names:
                out.append(f"{names.index(old[int(cid)])} {rest}\n")
        (root / "labels" / "val" / label.name).write_text("".join(out))
    new = root / "data.yaml"
    new.write_text(yaml.safe_dump({"path": str(root), "val": "images/val", "names": names}))
    return new


def boxes(*rows: tuple[float, float, float, float, int, float]) -> ImageBoxes:
    """(x1, y1, x2, y2, class, score) rows."""
    if not rows:
        return ImageBoxes.build(np.zeros((0, 4)), [])
    a = np.asarray(rows, np.float64)
    return ImageBoxes.build(a[:, :4], a[:, 4].astype(int), a[:, 5])


A1 = (0, 0, 10, 10, 0, 1.0)
A2 = (50, 50, 70, 70, 0, 1.0)
B1 = (20, 20, 30, 30, 1, 1.0)
TRUTH = [boxes(A1, B1), boxes(A2)]


def by_name(metrics: list[ClassMetrics]) -> dict[str, ClassMetrics]:
    return {m.name: m for m in metrics}


# -- scoring, checked exactly ---------------------------------------------------------------


def test_box_iou() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10], [0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1 / 3, 0], [1 / 3, 0]])


def test_perfect_predictions_score_one() -> None:
    per_class, overall, confusion = score_detections(CLASSES, TRUTH, TRUTH)
    for m in [*per_class, overall]:
        assert (m.precision, m.recall, m.ap50, m.ap50_95) == (1.0, 1.0, 1.0, 1.0), m
    assert (overall.images, overall.instances) == (2, 3)
    assert by_name(per_class)["square"].images == 2 and by_name(per_class)["disc"].images == 1
    assert confusion.correct == {"square": 2, "disc": 1}
    assert not confusion.missed and not confusion.confused and not confusion.false_positives


HALF = 51 / 101  # AP of a class whose precision is 1 up to recall 0.5, then nothing


@pytest.mark.parametrize(
    ("ranked", "square"),
    [
        # one square of two never found: recall 0.5, precision 1 up to recall 0.5 = 51 of 101 points
        pytest.param([boxes(A1, B1), boxes()], (1.0, 0.5, HALF, HALF), id="missed"),
        # a background box scored above the true ones: precision 1/2 then 2/3 → envelope 2/3 everywhere
        pytest.param(
            [boxes((0, 0, 10, 10, 0, 0.8), B1, (80, 80, 90, 90, 0, 0.9)), boxes((50, 50, 70, 70, 0, 0.7))],
            (2 / 3, 1.0, 2 / 3, 2 / 3),
            id="false-positive-first",
        ),
        # a background box scored below every true one costs precision at the operating point only
        pytest.param([boxes(A1, B1, (80, 80, 90, 90, 0, 0.1)), boxes(A2)], (2 / 3, 1.0, 1.0, 1.0), id="fp-last"),
        # a duplicate of a found square is a false positive, not a second hit
        pytest.param([boxes(A1, (0, 0, 10, 10, 0, 0.5), B1), boxes(A2)], (2 / 3, 1.0, 1.0, 1.0), id="duplicate"),
        # one square found with IoU 0.72: a hit at IoU 0.50..0.70 (5 of 10 thresholds); above, a
        # false positive scored below the other square's hit (AP HALF)
        pytest.param(
            [boxes((0, 0, 10, 7.2, 0, 0.9), B1), boxes(A2)], (1.0, 1.0, 1.0, (5 + 5 * HALF) / 10), id="loose-box"
        ),
    ],
)
def test_square_metrics(ranked: list[ImageBoxes], square: tuple[float, float, float, float]) -> None:
    per_class, _, _ = score_detections(CLASSES, TRUTH, ranked)
    m = by_name(per_class)["square"]
    assert (m.precision, m.recall, m.ap50, m.ap50_95) == pytest.approx(square)
    assert by_name(per_class)["disc"].ap50_95 == 1.0


def test_operating_point_and_ranked_are_separate() -> None:
    # The ranked run finds everything; the shipped run (higher threshold) misses a square
    shipped = [boxes(A1, B1), boxes()]
    per_class, overall, confusion = score_detections(CLASSES, TRUTH, TRUTH, shipped)
    square = by_name(per_class)["square"]
    assert (square.ap50, square.recall, square.precision) == (1.0, 0.5, 1.0)
    assert overall.recall == pytest.approx((0.5 + 1.0) / 2)
    assert confusion.missed == {"square": 1}


def test_confusion_between_classes() -> None:
    # the disc is predicted as a square; a square of image 2 is missed; one box on background
    shipped = [boxes(A1, (20, 20, 30, 30, 0, 0.9)), boxes((100, 100, 110, 110, 1, 0.8))]
    per_class, _, confusion = score_detections(CLASSES, TRUTH, shipped)
    assert confusion.correct == {"square": 1}
    assert confusion.confused == {"disc": {"square": 1}}
    assert confusion.missed == {"square": 1}
    assert confusion.false_positives == {"disc": 1}
    disc = by_name(per_class)["disc"]
    assert (disc.recall, disc.ap50, disc.precision) == (0.0, 0.0, 0.0)


def test_class_without_instances_is_not_averaged() -> None:
    truth = [boxes(A1)]
    per_class, overall, _ = score_detections(CLASSES, truth, [boxes(A1, (0, 0, 5, 5, 1, 0.3))])
    disc = by_name(per_class)["disc"]
    assert disc.instances == 0 and math.isnan(disc.ap50) and math.isnan(disc.recall)
    assert overall.ap50 == 1.0  # the mean over classes that have instances


def test_average_precision_edge_cases() -> None:
    assert math.isnan(average_precision(np.zeros(0, bool), np.zeros(0), 0))
    assert average_precision(np.zeros(0, bool), np.zeros(0), 3) == 0.0
    # hits found in score order: [hit, miss, hit] of 2 → precision envelope 1 to r=.5, 2/3 to r=1
    ap = average_precision(np.array([True, False, True]), np.array([0.9, 0.8, 0.7]), 2)
    assert ap == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)


def test_mismatched_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="one entry per image"):
        score_detections(CLASSES, TRUTH, TRUTH[:1])
    with pytest.raises(ValueError, match="class index"):
        score_detections(CLASSES, [boxes((0, 0, 1, 1, 2, 1.0))], [boxes()])


def test_load_split(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "ds", 3, 4)
    split = load_split(data, "val")
    assert split.names == tuple(CLASSES) and len(split.images) == 4
    label = (tmp_path / "ds" / "labels" / "val" / split.images[0].path.with_suffix(".txt").name).read_text()
    assert len(split.images[0].classes) == len(label.splitlines())
    assert set(split.images[0].classes) <= set(CLASSES)


# -- export and evaluation end to end (needs .venv-train) -----------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("ultralytics")
    pytest.importorskip("onnx")
    from training.export import export
    from training.train import TrainSpec, train

    root = tmp_path_factory.mktemp("export")
    data = make_shapes_dataset(root / "shapes", 96, 16)
    config = root / "yolo-config"
    # ~1 min on two busy cores; 20 epochs is about where the shapes start being found
    spec = TrainSpec(
        data=data, run_dir=root / "run", imgsz=96, epochs=20, batch=8, workers=0, close_mosaic=2, cache=False
    )
    weights = train(spec, config_dir=config, command=["test"])
    result = export(
        weights, root / "out", data=data, width=160, height=96, version="0.1", calibration=16, timing_frames=10,
        config_dir=config,
    )  # fmt: skip
    return {"data": data, "fp32": result.fp32, "int8": result.int8, "result": result}


@pytest.fixture(scope="module")
def evaluations(exported: dict[str, Any]) -> list[ModelEvaluation]:
    return exported["result"].evaluations


@pytest.mark.training
def test_exports_are_runtime_models(exported: dict[str, Any]) -> None:
    import onnx

    from detector.analysis.onnx_detector import OnnxModel
    from detector.models.manifest import load_manifest
    from detector.types import Observations

    frame = cv2.imread(str(next((exported["data"].parent / "images" / "val").glob("*.png"))))
    for kind in ("fp32", "int8"):
        manifest = load_manifest(exported[kind])
        assert manifest.classes == CLASSES
        assert (manifest.input.width, manifest.input.height) == (160, 96)
        assert manifest.training_command == "test"
        model = OnnxModel(exported[kind])
        (inp,) = model._session.get_inputs()
        assert inp.shape == [1, 3, 96, 160]
        out = model.predict([frame, frame[:50]])
        assert len(out) == 2 and all(isinstance(o, Observations) for o in out)
    ops = {n.op_type for n in onnx.load(str(exported["int8"] / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert load_manifest(exported["int8"]).version == "0.1-int8"


@pytest.mark.training
def test_head_tail_stays_float(exported: dict[str, Any]) -> None:
    import onnx

    from training.export import head_tail_nodes

    tail = head_tail_nodes(exported["fp32"] / "model.onnx")
    graph = onnx.load(str(exported["fp32"] / "model.onnx")).graph
    ops = {n.name: n.op_type for n in graph.node}
    assert {"Sigmoid", "Softmax", "Concat"} <= {ops[n] for n in tail}
    producer = next(n for n in graph.node if "output0" in n.output)
    assert producer.name in tail
    assert not any(".cv2." in n or ".cv3." in n for n in tail)  # the head's convolutions are quantized
    # in the INT8 graph the output comes straight from a float node, not from a DequantizeLinear
    q = onnx.load(str(exported["int8"] / "model.onnx")).graph
    assert next(n for n in q.node if "output0" in n.output).op_type != "DequantizeLinear"


@pytest.mark.training
def test_calibration_uses_the_runtime_letterbox(exported: dict[str, Any]) -> None:
    from detector.analysis.onnx_detector import OnnxModel

    model = OnnxModel(exported["fp32"])
    image = np.full((96, 80, 3), 255, np.uint8)  # half as wide as the input: borders left and right
    x = model.preprocess(image)
    assert x.shape == (1, 3, 96, 160) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, :, :40], 114 / 255, rtol=1e-6)
    np.testing.assert_allclose(x[0, :, :, 40:120], 1.0, rtol=1e-6)


@pytest.mark.training
def test_evaluation_of_both_exports(exported: dict[str, Any], evaluations: list[ModelEvaluation]) -> None:
    from detector.models.manifest import load_manifest

    assert [e.name for e in evaluations] == ["fp32", "int8"]
    for e in evaluations:
        assert [m.name for m in e.classes] == CLASSES
        assert e.all.images == 16 and e.all.instances == sum(m.instances for m in e.classes) > 0
        for m in [*e.classes, e.all]:
            for v in (m.precision, m.recall, m.ap50, m.ap50_95):
                assert 0.0 <= v <= 1.0, m
            assert m.ap50_95 <= m.ap50 + 1e-9
        c = e.confusion
        for m in e.classes:  # every true box is exactly one of found / confused / missed
            found = c.correct.get(m.name, 0) + sum(c.confused.get(m.name, {}).values()) + c.missed.get(m.name, 0)
            assert found == m.instances
        assert e.ms_per_frame is not None and e.ms_per_frame > 0
        assert not e.model_only and not e.data_only
    fp32, int8 = evaluations
    assert fp32.all.ap50 > 0  # the model found shapes: real hits went through the matching
    assert abs(fp32.all.ap50 - int8.all.ap50) < 0.2  # INT8 kept the scores (an INT8 head loses them all)
    for e in evaluations:  # recorded in the manifests
        metrics = load_manifest(e.model_dir).metrics
        assert metrics["mAP50"] == pytest.approx(e.all.ap50, abs=1e-4)
        assert set(metrics["per_class"]) == set(CLASSES)
    text = render(evaluations)
    assert "fp32" in text and "int8" in text and "square" in text and "ms/frame" in text
    print("\n" + text)


@pytest.mark.training
def test_classes_are_matched_by_name(exported: dict[str, Any], evaluations: list, tmp_path: Path) -> None:
    # the same images with the class ids swapped: identical numbers per class name
    swapped = relabelled(exported["data"], tmp_path / "swapped", ["disc", "square"])
    (e,) = evaluate({"fp32": exported["fp32"]}, swapped, timing_frames=0)
    ref = by_name(evaluations[0].classes)
    assert [m.name for m in e.classes] == ["disc", "square"]
    for m in e.classes:
        assert m == ref[m.name]
    # a dataset with a class the model lacks, and without one the model knows
    other = relabelled(exported["data"], tmp_path / "other", ["cone", "square"])
    (e,) = evaluate([exported["fp32"]], other, timing_frames=0)
    assert [m.name for m in e.classes] == ["square"] and e.classes[0] == ref["square"]
    assert e.data_only == ["cone"] and e.model_only == ["disc"]
    assert "not evaluated" in render([e])


@pytest.mark.parametrize(("width", "height"), [(100, 96), (160, 0)])
def test_export_rejects_sizes_off_the_stride(tmp_path: Path, width: int, height: int) -> None:
    from training.export import ExportError, export_fp32

    weights = tmp_path / "best.pt"
    weights.write_bytes(b"")
    with pytest.raises(ExportError, match="multiple of 32"):
        export_fp32(weights, tmp_path / "out", width=width, height=height)


def test_manifest_of_an_export_validates() -> None:
    from detector.models.manifest import ModelManifest
    from training.export import ExportError, build_manifest

    data = build_manifest(CLASSES, name="shapes", version="2", width=640, height=384)
    m = ModelManifest.model_validate(data)
    assert (m.input.width, m.input.height, m.input.channel_order, m.input.pad_value) == (640, 384, "rgb", 114)
    assert m.input.scale == pytest.approx(1 / 255) and m.format == "yolov8" and m.classes == CLASSES
    with pytest.raises(ExportError, match="classes"):
        build_manifest(["a", "a"], name="x", version="1", width=640, height=384)
