"""Export trained ultralytics weights into runtime model folders: ONNX FP32 and static INT8.

A model folder is what `detector.analysis.onnx_detector.OnnxModel` loads: `model.onnx` and
`manifest.yaml`. Export goes in three steps:

1. `export_fp32`: ultralytics' ONNX exporter with a fixed, possibly rectangular input
   (width × height, multiples of 32; e.g. 640×384 for 16:9 cameras wastes less of the input
   on letterbox borders than 640×640), batch 1, no onnxslim (it would try to install itself),
   opset 17; the manifest takes the class names from the weights.
2. `quantize_int8`: ONNX Runtime static quantization, QDQ format, per-channel weights,
   calibrated on training images that went through the runtime's own letterbox and
   normalisation (OnnxModel's preprocessing), so the calibrated ranges are those of real
   inputs, borders included. The head's decode tail (DFL softmax, box decode, class sigmoid,
   concatenation of box pixels with class scores) stays in float: one INT8 scale for box
   coordinates in pixels and scores in 0..1 would round the scores away.
3. `export`: both, then evaluates both on the validation split through the runtime
   (`training.evaluate`) and records the results in the manifests' `metrics`.

Why these choices (yolo11n, one thread, this project's 2-core Xeon with VNNI): everything
but the head tail in INT8 ran 1.44× faster than FP32 at 320×192 and 1.57× at 640×384 with
AP50 unchanged within 0.002; with the head tail quantized too, AP fell to 0; quantizing
only the convolutions (ultralytics' own ONNX INT8 choice) gained only 1.08×, and keeping
SiLU in float 1.1× (the Q/DQ around it cost more than the int8 Sigmoid and Mul);
int8 activations (S8S8) were 3× slower than uint8 (U8S8). Per-tensor weights, calibration
by percentile and skipping `quant_pre_process` changed neither speed nor AP measurably.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from numpy.typing import NDArray

from detector.analysis.onnx_detector import MODEL_FILENAME, OnnxModel
from detector.models.manifest import MANIFEST_FILENAME, ModelManifest, load_manifest
from training.datasets import DatasetError
from training.evaluate import ModelEvaluation, evaluate_split, load_split, read_image

#: ONNX Runtime's static quantizer rejects opset >= 21; 17 is what ultralytics uses for torch 2.x
DEFAULT_OPSET = 17
DEFAULT_YOLO_CONFIG = Path("var/yolo-config")
_STRIDE = 32

Calibration = Literal["minmax", "entropy", "percentile"]


class ExportError(ValueError):
    """The weights, the requested input size or the calibration data cannot be used."""


def build_manifest(
    classes: Sequence[str],
    *,
    name: str,
    version: str,
    width: int,
    height: int,
    conf: float = 0.25,
    iou: float = 0.45,
    training_command: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of an ultralytics ONNX export, validated by `ModelManifest`.

    Raises:
        ExportError: a field is invalid (e.g. a size that is not a multiple of 32).
    """
    data: dict[str, Any] = {
        "name": name,
        "version": str(version),
        "task": "detect",
        "format": "yolov8",
        "classes": list(classes),
        "input": {
            "width": width,
            "height": height,
            "channel_order": "rgb",
            "scale": 1 / 255,
            "pad_value": 114,
        },
        "thresholds": {"conf": conf, "iou": iou},
        "max_detections": 100,
        "metrics": metrics or {},
        "data_licences": [],
        "training_command": training_command,
    }
    try:
        ModelManifest.model_validate(data)
    except ValueError as e:
        raise ExportError(f"invalid manifest: {e}") from e
    return data


def _write_manifest(model_dir: Path, data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    (model_dir / MANIFEST_FILENAME).write_text(text, encoding="utf-8")


def _check_size(width: int, height: int) -> None:
    for what, v in (("width", width), ("height", height)):
        if v <= 0 or v % _STRIDE:
            raise ExportError(f"{what} must be a positive multiple of {_STRIDE} (got {v})")


def export_fp32(
    weights: Path,
    model_dir: Path,
    *,
    width: int = 640,
    height: int = 384,
    name: str | None = None,
    version: str = "1",
    conf: float = 0.25,
    iou: float = 0.45,
    opset: int = DEFAULT_OPSET,
    config_dir: Path = DEFAULT_YOLO_CONFIG,
) -> Path:
    """Exports ultralytics `weights` (.pt) to the model folder `model_dir`; returns it.

    The input is fixed at (1, 3, height, width). The weights are copied to a temporary folder
    first: ultralytics writes its export beside them, and a run folder is left untouched.
    `name` defaults to the run folder's name (`<run>/weights/best.pt`).

    Raises:
        ExportError: the weights do not exist or the size is not a multiple of 32.
    """
    from training.train import offline_env, train_record

    weights = Path(weights)
    if not weights.is_file():
        raise ExportError(f"weights: {weights} does not exist")
    _check_size(width, height)
    offline_env(config_dir)
    from ultralytics import YOLO

    in_run = weights.parent.name == "weights"  # <run>/weights/best.pt, as training.train writes it
    run_dir = weights.parent.parent
    name = name or (run_dir.name if in_run else weights.stem)
    with tempfile.TemporaryDirectory(prefix="gridsight-export-") as tmp:
        local = Path(tmp) / weights.name
        shutil.copyfile(weights, local)
        model = YOLO(str(local))
        classes = [model.names[k] for k in sorted(model.names)]
        manifest = build_manifest(
            classes,
            name=name,
            version=version,
            width=width,
            height=height,
            conf=conf,
            iou=iou,
            training_command=train_record(run_dir).get("command") if in_run else None,
        )
        onnx_file = model.export(
            format="onnx",
            imgsz=(height, width),
            batch=1,
            dynamic=False,
            simplify=False,
            opset=opset,
            device="cpu",
            verbose=False,
        )
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(onnx_file, model_dir / MODEL_FILENAME)
    _write_manifest(model_dir, manifest)
    OnnxModel(model_dir)  # fails here, not on a camera, if the export disagrees with its manifest
    return model_dir


# -- INT8 ----------------------------------------------------------------------------------


def calibration_images(data: Path, n: int, *, split: str = "train", seed: int = 0) -> list[Path]:
    """`n` images of `split` of the dataset `data` (data.yaml), drawn reproducibly.

    Raises:
        DatasetError: the dataset or split is unreadable or empty.
    """
    images = [i.path for i in load_split(Path(data), split).images]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(images), size=min(n, len(images)), replace=False)
    return [images[i] for i in sorted(pick)]


def head_tail_nodes(onnx_path: Path) -> list[str]:
    """Names of the nodes of an ultralytics detection head that come after its convolutions.

    That is every node of the last module (`/model.<N>/...`) outside its convolution branches
    (`cv2.*`, `cv3.*`, ...): DFL softmax and convolution, anchor decode, strides, sigmoid and
    the concatenations that mix box pixels with class scores. For graphs without ultralytics
    node names: the nodes from which no Conv is reachable.
    """
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    modules = [int(m.group(1)) for n in graph.node if (m := re.match(r"/model\.(\d+)/", n.name))]
    if modules:
        head = f"/model.{max(modules)}/"
        branch = re.compile(re.escape(head) + r"(one2one_)?cv\d+\.")
        return [n.name for n in graph.node if n.name.startswith(head) and not branch.match(n.name)]
    # generic: walk back from the outputs through nodes that feed no Conv
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    feeds_conv: dict[str, bool] = {}

    def reaches_conv(node: Any) -> bool:
        if node.name not in feeds_conv:
            feeds_conv[node.name] = False  # cycles are impossible in ONNX; this guards recursion only
            feeds_conv[node.name] = any(
                c.op_type == "Conv" or reaches_conv(c) for o in node.output for c in consumers.get(o, [])
            )
        return feeds_conv[node.name]

    return [n.name for n in graph.node if n.op_type != "Conv" and not reaches_conv(n)]


def _calibration_reader(model: OnnxModel, images: Sequence[Path], input_name: str) -> Any:
    """An onnxruntime CalibrationDataReader over `images` preprocessed by the runtime."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[Path] = iter(images)

        def get_next(self) -> dict[str, NDArray[np.floating]] | None:
            path = next(self._it, None)
            return None if path is None else {input_name: model.preprocess(read_image(path))}

        def rewind(self) -> None:
            self._it = iter(images)

    return Reader()


def quantize_int8(
    fp32_dir: Path,
    model_dir: Path,
    images: Sequence[Path],
    *,
    per_channel: bool = True,
    exclude_head: bool = True,
    method: Calibration = "minmax",
    activations: Literal["uint8", "int8"] = "uint8",
    preprocess: bool = True,
    op_types: Sequence[str] | None = None,
    version_suffix: str = "-int8",
) -> Path:
    """Static INT8 (QDQ) quantization of the model folder `fp32_dir` into `model_dir`.

    `images` calibrate the activation ranges (a few hundred are plenty; they go through the
    runtime's preprocessing). `exclude_head` keeps `head_tail_nodes` in float. `preprocess`
    runs onnxruntime's `quant_pre_process` (shape inference and graph fusions) first.
    `op_types` limits quantization to those operators (None: every one ONNX Runtime can).
    Activations are uint8 and weights int8 (U8S8), ONNX Runtime's fast path on x86.

    Raises:
        ExportError: no calibration image was given.
        ModelManifestError, OnnxModelError: `fp32_dir` is not a valid model folder.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not images:
        raise ExportError("no calibration images")
    fp32_dir, model_dir = Path(fp32_dir), Path(model_dir)
    runtime = OnnxModel(fp32_dir)
    source = fp32_dir / MODEL_FILENAME
    model_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gridsight-quant-") as tmp:
        if preprocess:
            prepared = Path(tmp) / "prepared.onnx"
            quant_pre_process(str(source), str(prepared))
            source = prepared
        exclude = head_tail_nodes(source) if exclude_head else []
        input_name = onnx.load(str(source), load_external_data=False).graph.input[0].name
        ort_quantize_static(
            str(source),
            str(model_dir / MODEL_FILENAME),
            _calibration_reader(runtime, list(images), input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            op_types_to_quantize=list(op_types) if op_types else None,
            calibrate_method={
                "minmax": CalibrationMethod.MinMax,
                "entropy": CalibrationMethod.Entropy,
                "percentile": CalibrationMethod.Percentile,
            }[method],
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    manifest = load_manifest(fp32_dir).model_dump(mode="json")
    manifest["version"] = f"{manifest['version']}{version_suffix}"
    manifest["metrics"] = {}
    _write_manifest(model_dir, manifest)
    OnnxModel(model_dir)
    return model_dir


# -- both, evaluated -----------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    fp32: Path  # model folder
    int8: Path | None  # model folder; None when quantization was skipped
    evaluations: list[ModelEvaluation]  # FP32 then INT8 on the validation split (empty: not evaluated)

    def ap50_drop(self) -> float | None:
        """FP32 mAP50 minus INT8 mAP50."""
        if len(self.evaluations) < 2:
            return None
        return self.evaluations[0].all.ap50 - self.evaluations[1].all.ap50

    def speedup(self) -> float | None:
        """FP32 ms/frame over INT8 ms/frame (one thread)."""
        if len(self.evaluations) < 2:
            return None
        fp32, int8 = self.evaluations[0].ms_per_frame, self.evaluations[1].ms_per_frame
        return fp32 / int8 if fp32 and int8 else None


def export(
    weights: Path,
    out: Path,
    *,
    data: Path,
    width: int = 640,
    height: int = 384,
    name: str | None = None,
    version: str = "1",
    calibration: int = 200,
    int8: bool = True,
    per_channel: bool = True,
    exclude_head: bool = True,
    evaluate: bool = True,
    timing_frames: int = 50,
    config_dir: Path = DEFAULT_YOLO_CONFIG,
) -> ExportResult:
    """FP32 export into `out/fp32`, INT8 into `out/int8` (calibrated on `calibration` images
    of the training split of `data`), both evaluated on its validation split with the
    results written into each manifest's `metrics`.

    Raises:
        ExportError: bad weights, size or calibration data.
        DatasetError: the dataset cannot be read.
    """
    out = Path(out)
    fp32 = export_fp32(
        weights, out / "fp32", width=width, height=height, name=name, version=version, config_dir=config_dir
    )
    q = None
    if int8:
        try:
            images = calibration_images(data, calibration, split="train")
        except DatasetError as e:
            raise ExportError(f"calibration: {e}") from e
        q = quantize_int8(fp32, out / "int8", images, per_channel=per_channel, exclude_head=exclude_head)
    evaluations: list[ModelEvaluation] = []
    if evaluate:
        models = {"fp32": fp32} | ({"int8": q} if q else {})
        evaluations = evaluate_split(models, load_split(Path(data), "val"), timing_frames=timing_frames)
        for e in evaluations:
            manifest = load_manifest(e.model_dir).model_dump(mode="json")
            manifest["metrics"] = e.metrics()
            _write_manifest(e.model_dir, manifest)
    return ExportResult(fp32, q, evaluations)
