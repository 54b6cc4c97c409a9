"""OnnxModel / ObjectDetector against tiny hand-built ONNX graphs.

The graphs emit a known yolov8-layout output (boxes in input pixels), so the
tests pin down the parts that silently go wrong with real models: the
letterbox inverse, thresholds, class-aware NMS, batching, manifest checks and
the pixel normalisation actually fed to the model.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from detector.analysis.onnx_detector import ObjectDetector, OnnxModel, OnnxModelError
from detector.models.manifest import ModelManifestError, load_manifest
from detector.types import Frame

# -- builders ----------------------------------------------------------------

Candidate = tuple[float, ...]  # cx, cy, w, h (input pixels), then one score per class


def _save(path: Path, nodes: list[Any], inits: list[Any], in_shape: list[Any], out_shape: list[Any]) -> None:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def _const(name: str, value: Any) -> Any:
    return numpy_helper.from_array(np.asarray(value, np.float32 if isinstance(value, float) else None), name)


def build_constant_model(
    path: Path,
    candidates: list[Candidate],
    *,
    size: tuple[int, int] = (640, 640),
    batch: int | str = "batch",
    rows: int | str | None = None,
) -> None:
    """Output = the fixed `candidates` + 0 * mean(input), shape (batch, 4 + nc, N).

    `size` is the input (width, height); `rows` overrides the declared
    output dim 1 (a str makes it dynamic).
    """
    cand = np.asarray(candidates, np.float32)  # (N, 4 + nc)
    w, h = size
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["zeroed"]),
        helper.make_node("Reshape", ["zeroed", "shape"], ["z"]),
        helper.make_node("Add", ["z", "cand"], ["output0"]),  # (B,1,1) + (1,K,N): broadcasts the batch
    ]
    inits = [
        _const("zero", 0.0),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape"),
        numpy_helper.from_array(np.ascontiguousarray(cand.T[None]), "cand"),
    ]
    if isinstance(rows, str):  # reshape by a data-dependent shape so that not even ORT can infer dim 1
        nodes[-1:] = [
            helper.make_node("ReduceMax", ["zeroed"], ["zmax"], keepdims=0),
            helper.make_node("Add", ["zmax", "cand_shape"], ["fshape"]),
            helper.make_node("Cast", ["fshape"], ["ishape"], to=TensorProto.INT64),
            helper.make_node("Reshape", ["cand", "ishape"], ["cand_dyn"]),
            helper.make_node("Add", ["z", "cand_dyn"], ["output0"]),
        ]
        inits.append(numpy_helper.from_array(np.array(cand.T[None].shape, np.float32), "cand_shape"))
    k = cand.shape[1] if rows is None else rows
    _save(path, nodes, inits, [batch, 3, h, w], [batch, k, cand.shape[0]])


def build_brightness_model(path: Path, *, size: tuple[int, int], channel: int | None = None) -> None:
    """One class; one fixed box whose score is the mean of the input (or of one input channel)."""
    w, h = size
    nodes = []
    if channel is None:
        nodes.append(helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0))
    else:
        nodes += [
            helper.make_node("Gather", ["images", "ch"], ["plane"], axis=1),
            helper.make_node("ReduceMean", ["plane"], ["mean"], axes=[1, 2], keepdims=0),
        ]
    nodes += [
        helper.make_node("Reshape", ["mean", "shape"], ["score"]),  # (B, 1, 1)
        helper.make_node("Mul", ["score", "zero"], ["zeroed"]),
        helper.make_node("Add", ["zeroed", "box"], ["boxes"]),  # (B, 4, 1)
        helper.make_node("Concat", ["boxes", "score"], ["output0"], axis=1),  # (B, 5, 1)
    ]
    inits = [
        _const("zero", 0.0),
        numpy_helper.from_array(np.array(channel or 0, np.int64), "ch"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape"),
        numpy_helper.from_array(np.array([w / 2, h / 2, w / 2, h / 2], np.float32).reshape(1, 4, 1), "box"),
    ]
    _save(path, nodes, inits, ["batch", 3, h, w], ["batch", 5, 1])


def write_manifest(model_dir: Path, **overrides: Any) -> Path:
    """A valid manifest with top-level keys replaced by `overrides`."""
    data: dict[str, Any] = {
        "name": "test-model",
        "version": "1.0",
        "task": "detect",
        "format": "yolov8",
        "classes": ["car", "litter"],
        "input": {"width": 640, "height": 640, "channel_order": "rgb"},
        "thresholds": {"conf": 0.25, "iou": 0.45},
        "max_detections": 100,
        "metrics": {"mAP50": 0.5},
        "data_licences": [
            {"dataset": "synthetic", "licence": "CC0-1.0", "source": "tests", "attribution": None},
        ],
        "training_command": "yolo detect train data=x.yaml",
    }
    data.update(overrides)
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return model_dir


def make_model(
    tmp_path: Path,
    candidates: list[Candidate],
    *,
    size: tuple[int, int] = (640, 640),
    batch: int | str = "batch",
    **manifest: Any,
) -> OnnxModel:
    d = tmp_path / "model"
    manifest.setdefault("input", {"width": size[0], "height": size[1]})
    write_manifest(d, **manifest)
    build_constant_model(d / "model.onnx", candidates, size=size, batch=batch)
    return OnnxModel(d)


def frame_image(w: int, h: int, value: int | tuple[int, int, int] = 0) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def by_label(obs: Any) -> list[tuple[str, float]]:
    return sorted((lbl, round(float(s), 3)) for lbl, s in zip(obs.labels, obs.scores, strict=True))


# -- letterbox geometry --------------------------------------------------------


@pytest.mark.parametrize(
    ("frame_wh", "input_wh", "input_box", "expected"),
    [
        # 1280x720 → 640x384: scale 0.5, 640x360 drawn 12 px from the top
        ((1280, 720), (640, 384), (128, 120, 128, 144), (0.1, 0.1, 0.3, 0.5)),
        ((1280, 720), (640, 384), (480, 192, 320, 360), (0.5, 0.0, 1.0, 1.0)),
        # 704x576 → 640x640: scale 10/11, 640x524 drawn 58 px from the top
        ((704, 576), (640, 640), (320, 451, 320, 262), (0.25, 0.5, 0.75, 1.0)),
        # portrait 720x1280 → 640x640: scale 0.5, 360x640 drawn 140 px from the left
        ((720, 1280), (640, 640), (275, 160, 180, 320), (0.125, 0.0, 0.625, 0.5)),
    ],
)
def test_boxes_map_back_through_the_letterbox(
    tmp_path: Path,
    frame_wh: tuple[int, int],
    input_wh: tuple[int, int],
    input_box: tuple[float, float, float, float],
    expected: tuple[float, float, float, float],
) -> None:
    model = make_model(tmp_path, [(*input_box, 0.9, 0.0)], size=input_wh)
    (obs,) = model.predict([frame_image(*frame_wh)])
    assert obs.labels == ("detector:car",)
    np.testing.assert_allclose(obs.xyxy[0], expected, atol=2e-3)
    assert obs.xyxy.dtype == np.float32 and obs.scores.dtype == np.float32
    assert obs.extras == ({"class_id": 0},)


def test_boxes_in_the_padding_are_clipped_to_the_frame(tmp_path: Path) -> None:
    # spans the whole 384-high input; the frame only covers rows 12..372
    model = make_model(tmp_path, [(320, 192, 640, 384, 0.9, 0.0)], size=(640, 384))
    (obs,) = model.predict([frame_image(1280, 720)])
    np.testing.assert_allclose(obs.xyxy[0], (0, 0, 1, 1), atol=1e-6)


# -- thresholds and NMS ----------------------------------------------------------


def test_per_class_thresholds(tmp_path: Path) -> None:
    model = make_model(
        tmp_path,
        [
            (100, 100, 50, 50, 0.30, 0.0),  # car above conf 0.25: kept
            (200, 100, 50, 50, 0.20, 0.0),  # car below: dropped
            (300, 100, 50, 50, 0.0, 0.50),  # litter below its own 0.6: dropped
            (400, 100, 50, 50, 0.0, 0.70),  # litter above: kept
        ],
        thresholds={"conf": 0.25, "iou": 0.45, "per_class_conf": {"litter": 0.6}},
    )
    (obs,) = model.predict([frame_image(640, 640)])
    assert by_label(obs) == [("detector:car", 0.3), ("detector:litter", 0.7)]


def test_nms_is_class_aware(tmp_path: Path) -> None:
    model = make_model(
        tmp_path,
        [
            (100, 100, 100, 100, 0.9, 0.0),
            (104, 102, 100, 100, 0.8, 0.0),  # same class, IoU ~0.9: suppressed
            (100, 100, 100, 100, 0.0, 0.7),  # other class on top: kept
            (400, 400, 100, 100, 0.6, 0.0),  # same class elsewhere: kept
        ],
    )
    (obs,) = model.predict([frame_image(640, 640)])
    assert by_label(obs) == [("detector:car", 0.6), ("detector:car", 0.9), ("detector:litter", 0.7)]


def test_max_detections_keeps_the_best(tmp_path: Path) -> None:
    cands = [(60 + 100 * i, 100, 50, 50, 0.3 + 0.1 * i, 0.0) for i in range(5)]
    model = make_model(tmp_path, cands, max_detections=2)
    (obs,) = model.predict([frame_image(640, 640)])
    assert sorted(round(float(s), 3) for s in obs.scores) == [0.6, 0.7]


def test_overlapping_candidates_do_not_crowd_out_other_objects(tmp_path: Path) -> None:
    crowd = [(100 + i, 100, 50, 50, 0.9 - 0.01 * i, 0.0) for i in range(10)]  # one object, ten candidates
    model = make_model(tmp_path, [*crowd, (400, 400, 50, 50, 0.0, 0.5)], max_detections=2)
    (obs,) = model.predict([frame_image(640, 640)])
    assert by_label(obs) == [("detector:car", 0.9), ("detector:litter", 0.5)]


def test_no_candidates_gives_empty_observations(tmp_path: Path) -> None:
    model = make_model(tmp_path, [(100, 100, 50, 50, 0.1, 0.1)])
    (obs,) = model.predict([frame_image(640, 480)])
    assert len(obs) == 0 and obs.xyxy.shape == (0, 4)
    assert model.predict([]) == []


# -- batching ------------------------------------------------------------------


@pytest.mark.parametrize("batch", ["batch", 1, 2])
def test_batch_of_three(tmp_path: Path, batch: int | str) -> None:
    model = make_model(tmp_path, [(320, 320, 320, 320, 0.9, 0.0)], batch=batch)
    assert model.batch_size == (None if batch == "batch" else batch)
    frames = [frame_image(640, 640), frame_image(1280, 640), frame_image(640, 1280)]
    results = model.predict(frames)
    assert len(results) == 3
    np.testing.assert_allclose(results[0].xyxy[0], (0.25, 0.25, 0.75, 0.75), atol=1e-6)
    np.testing.assert_allclose(results[1].xyxy[0], (0.25, 0.0, 0.75, 1.0), atol=1e-6)  # 160 px pad top/bottom
    np.testing.assert_allclose(results[2].xyxy[0], (0.0, 0.25, 1.0, 0.75), atol=1e-6)  # 160 px pad left/right


def test_concurrent_predicts_do_not_share_buffers(tmp_path: Path) -> None:
    model = make_model(tmp_path, [(320, 320, 320, 320, 0.9, 0.0)])
    sizes = [(640, 640), (1280, 640), (640, 1280), (300, 200)]
    expected = [model.predict([frame_image(*s)])[0].xyxy for s in sizes]
    errors: list[str] = []

    def work(i: int) -> None:
        for _ in range(20):
            got = model.predict([frame_image(*sizes[i])])[0].xyxy
            if not np.allclose(got, expected[i]):
                errors.append(f"{sizes[i]}: {got}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(sizes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# -- the pixels the model actually sees ------------------------------------------


def _brightness_model(tmp_path: Path, size: tuple[int, int], channel: int | None = None, **input_: Any) -> OnnxModel:
    d = tmp_path / "bright"
    write_manifest(d, classes=["blob"], input={"width": size[0], "height": size[1], **input_})
    build_brightness_model(d / "model.onnx", size=size, channel=channel)
    return OnnxModel(d)


def test_computing_model_sees_the_frame(tmp_path: Path) -> None:
    model = _brightness_model(tmp_path, (64, 64))
    black, white = model.predict([frame_image(128, 128, 0), frame_image(128, 128, 255)])
    assert len(black) == 0
    assert white.labels == ("detector:blob",)
    assert white.scores[0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(white.xyxy[0], (0.25, 0.25, 0.75, 0.75), atol=1e-6)


def test_letterbox_border_and_scale(tmp_path: Path) -> None:
    # white 1280x720 into 128x128: 72 rows of 1.0 and 56 rows of 114/255
    model = _brightness_model(tmp_path, (128, 128))
    (obs,) = model.predict([frame_image(1280, 720, 255)])
    assert obs.scores[0] == pytest.approx((72 + 56 * 114 / 255) / 128, abs=1e-4)


@pytest.mark.parametrize(("order", "red_score", "blue_score"), [("rgb", 1.0, None), ("bgr", None, 1.0)])
def test_channel_order(tmp_path: Path, order: str, red_score: float | None, blue_score: float | None) -> None:
    model = _brightness_model(tmp_path, (64, 64), channel=0, channel_order=order)  # score = model channel 0
    red, blue = model.predict([frame_image(64, 64, (0, 0, 255)), frame_image(64, 64, (255, 0, 0))])
    assert (red.scores[0] if len(red) else None) == red_score
    assert (blue.scores[0] if len(blue) else None) == blue_score


def test_mean_and_std(tmp_path: Path) -> None:
    model = _brightness_model(tmp_path, (64, 64), mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    white, black = model.predict([frame_image(64, 64, 255), frame_image(64, 64, 0)])
    assert white.scores[0] == pytest.approx(2.0, abs=1e-5)  # (1 - 0.5) / 0.25
    assert len(black) == 0  # -2


# -- ObjectDetector ----------------------------------------------------------------


def test_object_detector_filters_classes(tmp_path: Path) -> None:
    model = make_model(tmp_path, [(100, 100, 50, 50, 0.9, 0.0), (300, 300, 50, 50, 0.0, 0.8)])
    frame = Frame("cam-1", 0, datetime(2025, 1, 1, tzinfo=UTC), frame_image(640, 640))
    assert ObjectDetector(model).analyze(frame).labels == ("detector:car", "detector:litter")
    only = ObjectDetector(model, classes={"litter"}).analyze(frame)
    assert only.labels == ("detector:litter",) and only.extras == ({"class_id": 1},)
    assert ObjectDetector(model).name == "detector"
    with pytest.raises(ValueError, match="bus"):
        ObjectDetector(model, classes={"bus"})


def test_rejects_non_bgr_images(tmp_path: Path) -> None:
    model = make_model(tmp_path, [(100, 100, 50, 50, 0.9, 0.0)])
    with pytest.raises(ValueError, match="HxWx3"):
        model.predict([np.zeros((64, 64), np.uint8)])


# -- manifest and model/manifest agreement -------------------------------------------


def test_manifest_round_trip(tmp_path: Path) -> None:
    m = load_manifest(write_manifest(tmp_path, thresholds={"per_class_conf": {"litter": 0.5}}))
    assert m.classes == ["car", "litter"]
    assert (m.input.channel_order, m.input.pad_value, m.input.scale) == ("rgb", 114, pytest.approx(1 / 255))
    assert (m.thresholds.conf, m.thresholds.iou) == (0.25, 0.45)
    assert m.conf_thresholds() == [0.25, 0.5]
    assert m.data_licences[0].licence == "CC0-1.0"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"classes": []}, "classes"),
        ({"classes": ["car", "car"]}, "classes"),
        ({"thresholds": {"per_class_conf": {"bus": 0.5}}}, "per_class_conf"),
        ({"input": {"width": 650, "height": 640}}, "input.width"),
        ({"input": {"width": 640, "height": 360}}, "input.height"),
        ({"input": {"width": 640, "height": 640, "colour": "rgb"}}, "input.colour"),
        ({"format": "yolov5"}, "format"),
        ({"data_licences": [{"dataset": "x"}]}, "data_licences.0.licence"),
    ],
)
def test_bad_manifest_names_the_field(tmp_path: Path, overrides: dict[str, Any], field: str) -> None:
    write_manifest(tmp_path, **overrides)
    with pytest.raises(ModelManifestError) as exc:
        load_manifest(tmp_path)
    assert field in str(exc.value)
    assert "manifest.yaml" in str(exc.value)


def test_missing_or_broken_manifest(tmp_path: Path) -> None:
    with pytest.raises(ModelManifestError, match=r"manifest\.yaml"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ModelManifestError, match="YAML"):
        load_manifest(tmp_path)


def test_class_count_mismatch(tmp_path: Path) -> None:
    d = write_manifest(tmp_path / "m")  # 2 classes
    build_constant_model(d / "model.onnx", [(100, 100, 50, 50, 0.9, 0.0, 0.0)])  # 3 classes
    with pytest.raises(OnnxModelError, match="manifest lists 2 classes"):
        OnnxModel(d)


def test_class_count_mismatch_with_dynamic_output(tmp_path: Path) -> None:
    d = write_manifest(tmp_path / "m")
    build_constant_model(d / "model.onnx", [(100, 100, 50, 50, 0.9, 0.0, 0.0)], rows="k")
    model = OnnxModel(d)  # undeclared: can only be caught on the first run
    with pytest.raises(OnnxModelError, match="manifest lists 2 classes"):
        model.predict([frame_image(640, 640)])


def test_input_size_mismatch(tmp_path: Path) -> None:
    d = write_manifest(tmp_path / "m", input={"width": 640, "height": 384})
    build_constant_model(d / "model.onnx", [(100, 100, 50, 50, 0.9, 0.0)], size=(640, 640))
    with pytest.raises(OnnxModelError, match="height is 640 but manifest input says 384"):
        OnnxModel(d)


def test_missing_or_corrupt_model(tmp_path: Path) -> None:
    d = write_manifest(tmp_path / "m")
    with pytest.raises(OnnxModelError, match="not found"):
        OnnxModel(d)
    (d / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(OnnxModelError, match="cannot load"):
        OnnxModel(d)
